from django.apps import AppConfig


class AuditConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self):
        from django.contrib.admin.models import LogEntry
        from django.contrib.auth.signals import user_logged_in, user_login_failed
        from django.db.models.signals import post_save

        from audit import taps

        user_logged_in.connect(taps.logged_in, dispatch_uid="audit-logged-in")
        user_login_failed.connect(taps.login_failed, dispatch_uid="audit-login-failed")
        post_save.connect(taps.admin_log_entry, sender=LogEntry, dispatch_uid="audit-admin-log-entry")
