"""Alerts (one per integration, rule and streak), vendor-wide incidents, webhooks."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class Alert(models.Model):
    class Rule(models.TextChoices):
        REPEATED_FAILURES = "repeated_failures", "Repeated failures"
        AUTH_FAILING = "auth_failing", "Authentication failing"
        CREDENTIALS_INVALID = "credentials_invalid", "Credentials invalid"
        CREDENTIALS_EXPIRING = "credentials_expiring", "Credentials expiring"
        STALE = "stale", "No successful sync for a while"
        QUALITY_ASSURANCE = "quality_assurance", "Quality assurance entered"
        RECOVERED = "recovered", "Recovered"
        INCIDENT = "incident", "Vendor-wide incident"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        DIGEST = "digest", "Waiting for the tenant's digest"
        SENT = "sent", "Sent"
        HELD = "held", "Held back (incident)"
        FAILED = "failed", "Failed"

    class Failure(models.TextChoices):
        """Why an alert was given up; the integration page says how to fix each."""

        NO_RECIPIENTS = "no_recipients", "No recipients"

    integration = models.ForeignKey("integrations.Integration", on_delete=models.CASCADE, related_name="alerts")
    tenant = models.ForeignKey("integrations.Tenant", on_delete=models.CASCADE, related_name="alerts")
    rule = models.CharField(max_length=30, choices=Rule.choices)
    # What identifies the streak (its start time, the incident...): one alert per streak.
    streak = models.CharField(max_length=100)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING, db_index=True)
    recipients = models.JSONField(default=list)
    subject = models.CharField(max_length=300)
    context = models.JSONField(default=dict, help_text="What the email says, frozen when the alert was raised.")
    incident = models.ForeignKey("Incident", null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")
    created_at = models.DateTimeField(db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # Alerts that can wait are grouped per tenant: every alert raised before the
    # window that the first one opened ends goes in one email, sent at its end.
    digest_window_ends_at = models.DateTimeField(
        null=True, blank=True, help_text="The end of the tenant's digest window this alert waits for."
    )
    failure = models.CharField(max_length=20, choices=Failure.choices, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["integration", "rule", "streak"], name="one_alert_per_streak"),
            # Each tenant hears of an incident once, whatever number of its integrations it hits.
            models.UniqueConstraint(
                fields=["tenant", "incident"], condition=Q(rule="incident"), name="one_incident_notice_per_tenant"
            ),
        ]

    def __str__(self):
        return f"{self.get_rule_display()}: {self.integration_id} ({self.state})"


class Incident(models.Model):
    """Many tenants' integrations of one connector failing with one code: the vendor is down."""

    connector = models.CharField(max_length=50)
    error_code = models.ForeignKey("issues.ErrorCode", on_delete=models.PROTECT, related_name="+")
    opened_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.TextField(blank=True, help_text="What staff know; shown on the dashboard.")
    tenants_affected = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["connector", "error_code"], condition=Q(resolved_at=None), name="one_open_incident_per_code"
            ),
        ]

    def __str__(self):
        return f"{self.connector} {self.error_code_id} since {self.opened_at:%Y-%m-%d %H:%M}"

    @property
    def is_open(self):
        return self.resolved_at is None


class WebhookEndpoint(models.Model):
    class Event(models.TextChoices):
        STATUS_CHANGED = "integration.status_changed", "Integration status changed"
        SESSION_FINISHED = "session.finished", "Session finished"
        ISSUE_OPENED = "issue.opened", "Issues opened"
        ISSUE_RESOLVED = "issue.resolved", "Issues resolved"
        ALERT_RAISED = "alert.raised", "Alert raised"

    tenant = models.ForeignKey("integrations.Tenant", on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=500)
    secret_ciphertext = models.TextField(editable=False)
    events = models.JSONField(default=list, help_text="Event names; empty means all.")
    active = models.BooleanField(default=True)
    failing_since = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.url

    def __repr__(self):
        return f"<WebhookEndpoint {self.pk} {self.url}>"

    def wants(self, event):
        return self.active and (not self.events or event in self.events)


class WebhookDelivery(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Delivered"
        FAILED = "failed", "Gave up"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=50)
    payload = models.JSONField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    response_code = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self):
        return f"{self.event} -> {self.endpoint_id} ({self.state})"


class EventReceipt(models.Model):
    """That a consumer handled an integration event, and what it did: at least once, recorded once."""

    class Consumer(models.TextChoices):
        ALERTS = "alerts", "Alerts and incidents"
        WEBHOOKS = "webhooks", "Webhooks"

    event = models.ForeignKey("integrations.IntegrationEvent", on_delete=models.CASCADE, related_name="+")
    consumer = models.CharField(max_length=20, choices=Consumer.choices)
    outcome = models.CharField(max_length=300, blank=True)
    handled_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["consumer", "event"], name="one_receipt_per_event_and_consumer")]

    def __str__(self):
        return f"{self.consumer} handled event {self.event_id}: {self.outcome}"


class EventConsumer(models.Model):
    """Where a consumer starts: events before `since_event_id` were there before it existed."""

    name = models.CharField(max_length=20, primary_key=True, choices=EventReceipt.Consumer.choices)
    since_event_id = models.BigIntegerField(default=0)

    def __str__(self):
        return f"{self.name} from event {self.since_event_id}"
