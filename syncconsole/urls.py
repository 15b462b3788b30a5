"""SyncConsole URLs: the support console at /admin/."""

from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

admin.site.site_header = "SyncConsole"
admin.site.site_title = "SyncConsole"
admin.site.index_title = "Integration sync health"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
]
