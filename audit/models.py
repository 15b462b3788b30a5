"""The audit trail: who did what, to which tenant's data, from where, and when."""

from django.conf import settings
from django.db import models


class AuditRecord(models.Model):
    class Action(models.TextChoices):
        LOGIN = "login", "Signed in"
        LOGIN_FAILED = "login_failed", "Sign-in failed"
        API_KEY_CREATED = "api_key_created", "API key created"
        API_KEY_REVOKED = "api_key_revoked", "API key revoked"
        WEBHOOK_CREATED = "webhook_created", "Webhook endpoint created"
        WEBHOOK_DELETED = "webhook_deleted", "Webhook endpoint deleted"
        WEBHOOK_DISABLED = "webhook_disabled", "Webhook endpoint disabled"
        CREDENTIALS_CHANGED = "credentials_changed", "Credentials changed"
        STAFF_ACTION = "staff_action", "Staff action"
        CUSTOMER_ACTION = "customer_action", "Customer action"

    created_at = models.DateTimeField(db_index=True)
    action = models.CharField(max_length=30, choices=Action.choices, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=200, blank=True, help_text="Who, as it was at the time (user name, API key, system).")
    tenant = models.ForeignKey(
        "integrations.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="audit_records"
    )
    address = models.GenericIPAddressField(null=True, blank=True)
    target = models.CharField(max_length=300, blank=True, help_text="What it was done to.")
    changes = models.JSONField(default=dict, blank=True, help_text="What changed (never a secret).")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-created_at", "-id"], name="audit_tenant_recent")]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_label or 'system'}: {self.get_action_display()} {self.target}"
