from django.apps import AppConfig


class PortalConfig(AppConfig):
    """The customer portal and the JSON API: pages that show several apps' data at once, above the apps."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "portal"
    verbose_name = "Customer portal and API"
