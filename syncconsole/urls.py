"""SyncConsole URLs: the console at /admin/, the portal at /portal/, the API at /api/v1/, re-auth links."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from portal.urls import api_urls, portal_patterns
from portal.views_reauth import reauth_page

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("reauth/<str:token>/", reauth_page, name="reauth"),
    path("portal/", include((portal_patterns, "portal"))),
    path("api/v1/", api_urls),
]
