from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "integrations"
    verbose_name = "Integrations"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from syncconsole.middleware import note_login

        user_logged_in.connect(note_login, dispatch_uid="syncconsole-idle-clock")
