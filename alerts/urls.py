"""Public alert URLs (included from syncconsole/urls.py under /alerts/)."""

from django.urls import path

from alerts.views import unsubscribe_page

app_name = "alerts"
urlpatterns = [
    path("unsubscribe/<str:token>/", unsubscribe_page, name="unsubscribe"),
]
