"""The error-code catalog, per-item sync issues and customers' help requests."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"
    CRITICAL = "critical", "Critical"


class ErrorCode(models.Model):
    class Category(models.TextChoices):
        AUTH = "auth", "Authentication"
        VENDOR = "vendor", "Vendor"
        MAPPING = "mapping", "Mapping"
        DATA = "data", "Data"
        ENGINE = "engine", "Engine"
        CONFIGURATION = "configuration", "Configuration"

    code = models.CharField(max_length=50, primary_key=True)
    title = models.CharField(max_length=200)
    category = models.CharField(max_length=20, choices=Category.choices, db_index=True)
    default_severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.ERROR)
    customer_advice = models.TextField(help_text="What the customer can do, in plain words.")
    support_notes = models.TextField(blank=True, help_text="For support staff: what to check.")
    retryable = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]
        verbose_name = "error code"

    def __str__(self):
        return f"{self.code}: {self.title}"

    @property
    def is_auth(self):
        return self.category == self.Category.AUTH


class SyncIssue(models.Model):
    class Source(models.TextChoices):
        VENDOR = "vendor", "Vendor"
        PLATFORM = "platform", "Platform"
        MAPPING = "mapping", "Mapping"
        ENGINE = "engine", "Engine"

    class State(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"
        IGNORED = "ignored", "Ignored"

    tenant = models.ForeignKey("integrations.Tenant", on_delete=models.CASCADE, related_name="issues")
    integration = models.ForeignKey("integrations.Integration", on_delete=models.CASCADE, related_name="issues")
    first_session = models.ForeignKey(
        "integrations.SyncSession", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_session = models.ForeignKey(
        "integrations.SyncSession", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    error_code = models.ForeignKey(ErrorCode, on_delete=models.PROTECT, related_name="issues")
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.ERROR)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.VENDOR)
    # Empty item type and external id: a problem of the whole session.
    item_type = models.CharField(max_length=50, blank=True)
    external_id = models.CharField(max_length=200, blank=True)
    item_label = models.CharField(max_length=300, blank=True)
    vendor_url = models.URLField(max_length=500, blank=True)
    record = models.ForeignKey(
        "integrations.SyncedRecord", null=True, blank=True, on_delete=models.SET_NULL, related_name="issues"
    )
    message = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    occurrences = models.PositiveIntegerField(default=1)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField(db_index=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN, db_index=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-last_seen_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "item_type", "external_id", "error_code"],
                condition=Q(state="open"),
                name="one_open_issue_per_item_and_code",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "state", "-last_seen_at"], name="issue_tenant_state_seen"),
            models.Index(fields=["integration", "state", "-last_seen_at"], name="issue_integration_state"),
            models.Index(fields=["error_code", "last_seen_at"], name="issue_code_seen"),
            # The console's list in its order (deep pages read ids from the index alone), and
            # filtered by state and severity (the capped count reads the index alone).
            models.Index(fields=["-last_seen_at", "-id"], name="issue_seen_id"),
            models.Index(fields=["state", "severity", "-last_seen_at", "-id"], name="issue_state_severity_seen"),
            models.Index(fields=["external_id"], name="issue_external_id"),
        ]
        permissions = [("resolve_syncissue", "Can resolve and ignore issues")]

    def __str__(self):
        target = self.item_label or self.external_id or "session"
        return f"{self.error_code_id} on {target}"

    @property
    def vendor_link(self):
        """The vendor URL if it is http(s): vendor data never becomes a script link."""
        url = (self.vendor_url or "").strip()
        return url if url.lower().startswith(("http://", "https://")) else ""


class SupportRequest(models.Model):
    """A customer's request for help about an integration (often one of its issues), and its conversation.

    The customer's first words are `message`; everything after is a
    SupportMessage: replies (support's or the customer's, both shown in the
    portal) and support's internal notes (never shown or emailed to the
    customer). issues/support/ holds the transitions, emails and reads.
    """

    class State(models.TextChoices):
        NEW = "new", "New"
        IN_PROGRESS = "in_progress", "In progress"
        WAITING_ON_CUSTOMER = "waiting_on_customer", "Waiting on customer"
        RESOLVED = "resolved", "Resolved"

    OPEN_STATES = (State.NEW, State.IN_PROGRESS, State.WAITING_ON_CUSTOMER)
    # What the customer reads for each state, in the portal.
    CUSTOMER_WORDS = {
        State.NEW: "Sent to support",
        State.IN_PROGRESS: "Support is on it",
        State.WAITING_ON_CUSTOMER: "Support answered",
        State.RESOLVED: "Resolved",
    }

    integration = models.ForeignKey(
        "integrations.Integration", on_delete=models.CASCADE, related_name="support_requests"
    )
    issue = models.ForeignKey(
        SyncIssue,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="support_requests",
        help_text="Empty when the customer asked from the General tab, about the integration as a whole.",
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="support_requests")
    message = models.TextField()
    history = models.JSONField(default=list, blank=True, help_text="The integration's recent sessions when asked.")
    facts = models.JSONField(
        default=list,
        blank=True,
        help_text="What support asks first, as [label, value] pairs: when the problem began, "
        "re-authentication and forced syncs tried, the account mapping.",
    )
    state = models.CharField(max_length=20, choices=State.choices, default=State.NEW, db_index=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_support_requests",
        limit_choices_to={"is_staff": True, "is_active": True},
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "help request"

    def __str__(self):
        about = self.issue.error_code_id if self.issue_id else "the integration"
        return f"Request {self.pk}: help with {about}"

    @property
    def is_open(self):
        return self.state != self.State.RESOLVED

    @property
    def customer_words(self):
        return self.CUSTOMER_WORDS[self.state]


class SupportMessage(models.Model):
    """One message of a help request's conversation after the customer's first words."""

    class Kind(models.TextChoices):
        REPLY = "reply", "Reply"
        NOTE = "note", "Internal note"

    request = models.ForeignKey(SupportRequest, on_delete=models.CASCADE, related_name="messages")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.REPLY)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept as written: the customer reads "SyncConsole support", whatever becomes of the account.
    from_support = models.BooleanField()
    body = models.TextField()
    created_at = models.DateTimeField()
    # The email this message sends (a reply to the customer, a customer's answer to support).
    emailed_at = models.DateTimeField(null=True, blank=True)
    email_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["request", "created_at"], name="support_message_thread")]
        constraints = [
            models.CheckConstraint(condition=Q(kind="reply") | Q(from_support=True), name="notes_are_support_only"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} on request {self.request_id} at {self.created_at:%Y-%m-%d %H:%M}"
