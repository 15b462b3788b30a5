"""SyncConsole URLs: the support console at /admin/, public re-authentication pages."""

from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from integrations.views_reauth import reauth_page


urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("reauth/<str:token>/", reauth_page, name="reauth"),
]
