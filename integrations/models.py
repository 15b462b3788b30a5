"""Tenants, integrations, sync sessions, synced records and the timeline.

Fields, constraints and small helpers only: what changes state lives in
services (`integrations/services.py`, `integrations/sync/`), the status rules
in `integrations/status.py`.
"""

import hashlib
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

from integrations import crypto

USER_MODEL = settings.AUTH_USER_MODEL


def default_sync_interval():
    return settings.DEFAULT_SYNC_INTERVAL


class Tenant(models.Model):
    class Environment(models.TextChoices):
        PRODUCTION = "production", "Production"
        DEVELOPMENT = "development", "Development"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    environment = models.CharField(
        max_length=20, choices=Environment.choices, default=Environment.PRODUCTION, db_index=True
    )
    alert_emails = models.TextField(
        blank=True, help_text="Addresses that receive alerts, one per line or comma-separated."
    )
    last_api_request_at = models.DateTimeField(null=True, blank=True)
    alert_after_unsuccessful = models.PositiveIntegerField(
        null=True, blank=True, help_text="Overrides ALERT_AFTER_UNSUCCESSFUL for this tenant."
    )
    stale_after_intervals = models.FloatField(
        null=True, blank=True, help_text="Overrides STALE_AFTER_INTERVALS for this tenant."
    )

    class NewVendorAccounts(models.TextChoices):
        MAP = "map", "Map them automatically"
        ASK = "ask", "Ask us to map them"

    new_vendor_accounts = models.CharField(
        max_length=10,
        choices=NewVendorAccounts.choices,
        default=NewVendorAccounts.MAP,
        help_text="What happens when a full sync finds a vendor account (an address book, a customer) "
        "that appeared after setup. Integrations mapped by hand always ask.",
    )
    # The sync intervals the tenant's admins may choose in the portal (integrations/schedule_controls.py).
    # Staff may still set any interval on an integration's page.
    min_sync_interval_minutes = models.PositiveIntegerField(
        default=15, help_text="The shortest sync interval the tenant's admins may choose, in minutes."
    )
    max_sync_interval_minutes = models.PositiveIntegerField(
        default=24 * 60, help_text="The longest sync interval the tenant's admins may choose, in minutes."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(min_sync_interval_minutes__gte=1)
                & Q(min_sync_interval_minutes__lte=F("max_sync_interval_minutes")),
                name="tenant_sync_interval_bounds",
                violation_error_message="The shortest sync interval must be at least 1 minute and "
                "no longer than the longest.",
            ),
        ]

    def __str__(self):
        return self.name

    def clean(self):
        super().clean()
        low, high = self.min_sync_interval_minutes, self.max_sync_interval_minutes
        if low is not None and high is not None and low > high:
            raise ValidationError(
                {"max_sync_interval_minutes": f"The longest interval ({high} minutes) is shorter than the shortest ({low})."}
            )

    def alert_threshold(self):
        return self.alert_after_unsuccessful or settings.ALERT_AFTER_UNSUCCESSFUL

    def alert_email_list(self):
        raw = self.alert_emails.replace(",", "\n").splitlines()
        return [address.strip() for address in raw if address.strip()]


class ApiKey(models.Model):
    """A tenant's key for the JSON API; only its SHA-256 is stored."""

    PREFIX = "sck_"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    key_prefix = models.CharField(max_length=16, help_text="The first characters, to recognise a key.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self):
        return f"{self.name} ({self.key_prefix}…)"

    @staticmethod
    def hash_key(raw_key):
        return hashlib.sha256(raw_key.encode()).hexdigest()

    @classmethod
    def generate(cls):
        """A new raw key: shown once, never stored."""
        return cls.PREFIX + secrets.token_urlsafe(32)


class Membership(models.Model):
    class Role(models.TextChoices):
        VIEWER = "viewer", "Viewer"
        ADMIN = "admin", "Admin"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    receives_alerts = models.BooleanField(default=False)

    def __str__(self):
        return f"{self.user} @ {self.tenant} ({self.role})"


class Integration(models.Model):
    class Kind(models.TextChoices):
        VENDOR = "vendor", "Vendor"
        PSA = "psa", "PSA"

    class Status(models.TextChoices):
        SETUP = "setup", "Setup"
        ACTIVE = "active", "Active"
        WARNINGS = "warnings", "Warnings"
        FAILING = "failing", "Failing"
        UNKNOWN = "unknown", "Unknown"
        AUTH_FAILING = "auth_failing", "Authentication failing"
        CREDENTIALS_INVALID = "credentials_invalid", "Credentials invalid"
        QUALITY_ASSURANCE = "quality_assurance", "Quality assurance"
        INACTIVE = "inactive", "Inactive"
        DELETED = "deleted", "Deleted"

    NEEDS_ATTENTION = (
        Status.FAILING,
        Status.UNKNOWN,
        Status.AUTH_FAILING,
        Status.CREDENTIALS_INVALID,
        Status.QUALITY_ASSURANCE,
    )
    # Statuses the scheduler never queues (QA may still be run by staff).
    NOT_SCHEDULED = (
        Status.SETUP,
        Status.CREDENTIALS_INVALID,
        Status.QUALITY_ASSURANCE,
        Status.INACTIVE,
        Status.DELETED,
    )

    class Outcome(models.TextChoices):
        """The last finished session, as the status machine sees it."""

        NONE = "", "None yet"
        SUCCEEDED = "succeeded", "Succeeded"
        WARNINGS = "warnings", "Succeeded with warnings"
        FAILED = "failed", "Failed"
        AUTH_FAILED = "auth_failed", "Failed on authentication"
        UNKNOWN = "unknown", "Unknown"

    SUCCESSFUL_OUTCOMES = (Outcome.SUCCEEDED, Outcome.WARNINGS)
    UNSUCCESSFUL_OUTCOMES = (Outcome.FAILED, Outcome.AUTH_FAILED, Outcome.UNKNOWN)

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="integrations")
    connector = models.CharField(max_length=50, db_index=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.VENDOR)
    name = models.CharField("display name", max_length=200)
    settings = models.JSONField(default=dict, blank=True, help_text="Connector settings (never secrets).")

    credentials_ciphertext = models.TextField(blank=True, default="", editable=False)
    credentials_set_at = models.DateTimeField(null=True, blank=True)
    credentials_expire_at = models.DateTimeField(null=True, blank=True)
    credentials_revoked_at = models.DateTimeField(null=True, blank=True)

    status = models.CharField(max_length=30, choices=Status.choices, default=Status.SETUP, db_index=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    status_reason = models.CharField(max_length=500, blank=True)

    # Facts the status machine reads (see integrations/status.py).
    mapping_complete = models.BooleanField(default=False)
    first_sync_finished_at = models.DateTimeField(null=True, blank=True)
    last_outcome = models.CharField(max_length=20, choices=Outcome.choices, blank=True, default="")
    last_outcome_at = models.DateTimeField(null=True, blank=True)
    last_error_code = models.CharField(max_length=50, blank=True)
    consecutive_unsuccessful = models.PositiveIntegerField(default=0)
    unsuccessful_since = models.DateTimeField(null=True, blank=True)
    auth_failing_since = models.DateTimeField(null=True, blank=True)
    quality_assurance_since = models.DateTimeField(null=True, blank=True)
    quality_assurance_owner = models.ForeignKey(
        USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    quality_assurance_reason = models.CharField(max_length=500, blank=True)
    quality_assurance_due = models.DateField(null=True, blank=True)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    deactivated_for_inactivity = models.BooleanField(
        default=False, help_text="Switched off because its development tenant stopped using the API."
    )
    deleted_at = models.DateTimeField(null=True, blank=True, db_index=True)

    last_session = models.ForeignKey(
        "SyncSession", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_success_at = models.DateTimeField(null=True, blank=True)
    next_sync_at = models.DateTimeField(null=True, blank=True, db_index=True)
    sync_interval = models.DurationField(default=default_sync_interval)
    sync_cursor = models.CharField(max_length=200, blank=True, help_text="Where the next quick sync resumes.")

    paused = models.BooleanField(default=False)
    paused_reason = models.CharField(max_length=500, blank=True)
    # A tenant admin paused it in the portal and may resume it there; support's pauses only support lifts.
    paused_by_customer = models.BooleanField(default=False, editable=False)

    # Kept by whoever opens or closes issues, in the same transaction, with
    # F() updates (issues/counts.py); the lists read it instead of counting.
    # The hourly reconciliation (integrations/counters.py) repairs any drift.
    open_issue_count = models.PositiveIntegerField(default=0, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)

    # Never written by a whole-row save(): see save().
    COUNTERS = ("open_issue_count",)

    class Meta:
        ordering = ["tenant__name", "name"]
        indexes = [
            models.Index(fields=["tenant", "status"], name="integration_tenant_status"),
            models.Index(fields=["connector", "status"], name="integration_connector_status"),
            # The scheduler's due query (integrations/sync/scheduler.py), whose WHERE is this
            # condition: the statuses are NOT_SCHEDULED's, written out (Meta cannot read the class).
            models.Index(
                fields=["next_sync_at"],
                name="integration_due",
                condition=Q(next_sync_at__isnull=False, paused=False, mapping_complete=True)
                & ~Q(status__in=["setup", "credentials_invalid", "quality_assurance", "inactive", "deleted"]),
            ),
            # The changelist sorted by open issues (id breaks the ties, as the admin orders).
            models.Index(fields=["open_issue_count", "id"], name="integration_open_issues"),
        ]
        permissions = [
            ("sync_integration", "Can start a sync"),
            ("send_reauth_link", "Can send a re-authentication link"),
            ("manage_quality_assurance", "Can move into and out of quality assurance"),
            ("pause_integration", "Can pause and resume syncs"),
            ("deactivate_integration", "Can deactivate and reactivate"),
            ("delete_restore_integration", "Can delete and restore"),
            ("revoke_credentials", "Can revoke credentials"),
        ]

    def __str__(self):
        return f"{self.tenant.name} / {self.name}" if self.tenant_id else self.name

    def __repr__(self):
        # Never the credentials, not even encrypted.
        return f"<Integration {self.pk} {self.connector} {self.status}>"

    def save(self, *args, **kwargs):
        """Save the row without its counters, unless `update_fields` names them.

        A copy read before a page of issues was written (a status transition,
        the admin's form) would otherwise put its stale count back.
        """
        if not self._state.adding and kwargs.get("update_fields") is None and not kwargs.get("force_insert"):
            skipped = {*self.COUNTERS, *self.get_deferred_fields()}
            kwargs["update_fields"] = [
                f.name for f in self._meta.concrete_fields if not f.primary_key and f.attname not in skipped
            ]
        super().save(*args, **kwargs)

    def get_credentials(self):
        """The decrypted credentials as a dict ({} when none are stored)."""
        return crypto.decrypt_json(self.credentials_ciphertext) if self.credentials_ciphertext else {}

    def set_credentials(self, values, *, set_at, expire_at=None):
        self.credentials_ciphertext = crypto.encrypt_json(values) if values else ""
        self.credentials_set_at = set_at if values else None
        self.credentials_expire_at = expire_at if values else None

    @property
    def has_credentials(self):
        return bool(self.credentials_ciphertext)


class AccountMapping(models.Model):
    """A vendor-side account and where its items go (or that they are ignored)."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="account_mappings")
    vendor_account_id = models.CharField(max_length=200)
    vendor_account_name = models.CharField(max_length=200, blank=True)
    tenant_account = models.CharField(max_length=200, blank=True)
    ignored = models.BooleanField(default=False)
    discovered_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "vendor_account_id"], name="one_mapping_per_vendor_account"
            ),
        ]
        indexes = [models.Index(fields=["vendor_account_id"], name="mapping_vendor_account")]

    def __str__(self):
        target = "ignored" if self.ignored else (self.tenant_account or "unmapped")
        return f"{self.vendor_account_id} -> {target}"

    @property
    def is_mapped(self):
        return self.ignored or bool(self.tenant_account)


class SyncSession(models.Model):
    class Kind(models.TextChoices):
        QUICK = "quick", "Quick"
        FULL = "full", "Full"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        STAFF = "staff", "Staff"
        CUSTOMER = "customer", "Customer"
        API = "api", "API"
        REAUTH = "reauth", "Re-authentication"
        RETRY = "retry", "Retry"

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        WARNINGS = "warnings", "Succeeded with warnings"
        FAILED = "failed", "Failed"
        UNKNOWN = "unknown", "Unknown"
        CANCELLED = "cancelled", "Cancelled"

    OPEN_STATES = (State.QUEUED, State.RUNNING)
    FINISHED_STATES = (State.SUCCEEDED, State.WARNINGS, State.FAILED, State.UNKNOWN, State.CANCELLED)
    PERSON_TRIGGERS = (Trigger.STAFF, Trigger.CUSTOMER, Trigger.API, Trigger.REAUTH, Trigger.RETRY)

    COUNTERS = (
        "items_seen",
        "items_created",
        "items_updated",
        "items_unchanged",
        "items_deleted",
        "items_failed",
        "items_warnings",
        "http_requests",
        "retries",
        "rate_limited_waits",
        "pages",
    )

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="sessions")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.QUICK)
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.SCHEDULE)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED, db_index=True)
    error_code = models.ForeignKey(
        "issues.ErrorCode", null=True, blank=True, on_delete=models.PROTECT, related_name="sessions"
    )
    error_message = models.TextField(blank=True)

    queued_at = models.DateTimeField(db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True, db_index=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    # A person's sync sent to the default cluster because no urgent worker was alive
    # (URGENT_FALLBACK_SECONDS): its queue is the default one (sync/starting.py, sync/fallback.py).
    fell_back = models.BooleanField(default=False)

    items_seen = models.PositiveIntegerField(default=0)
    items_created = models.PositiveIntegerField(default=0)
    items_updated = models.PositiveIntegerField(default=0)
    items_unchanged = models.PositiveIntegerField(default=0)
    items_deleted = models.PositiveIntegerField(default=0)
    items_failed = models.PositiveIntegerField(default=0)
    items_warnings = models.PositiveIntegerField(default=0)
    http_requests = models.PositiveIntegerField(default=0)
    retries = models.PositiveIntegerField(default=0)
    rate_limited_waits = models.PositiveIntegerField(default=0)
    pages = models.PositiveIntegerField(default=0)
    items_total = models.PositiveIntegerField(null=True, blank=True, help_text="What the vendor announced.")

    log = models.JSONField(default=list, blank=True, help_text="Bounded structured log.")

    class Meta:
        ordering = ["-queued_at"]
        constraints = [
            # The one-sync-at-a-time rule, held by the database rather than by
            # hope: a second queued-or-running session raises IntegrityError.
            models.UniqueConstraint(
                fields=["integration"],
                condition=Q(state__in=["queued", "running"]),
                name="one_open_session_per_integration",
            ),
        ]
        indexes = [
            models.Index(fields=["integration", "-queued_at"], name="session_integration_recent"),
            models.Index(fields=["state", "lease_expires_at"], name="session_state_lease"),
        ]

    def __str__(self):
        return f"Session {self.pk} ({self.kind}, {self.state})"

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

    @property
    def is_open(self):
        return self.state in self.OPEN_STATES


class SyncedRecord(models.Model):
    """Our copy of one vendor item."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="records")
    item_type = models.CharField(max_length=50)
    external_id = models.CharField(max_length=200)
    content_hash = models.CharField(max_length=64)
    data = models.JSONField(default=dict)
    first_synced_at = models.DateTimeField()
    last_synced_at = models.DateTimeField()
    # The last full sync that saw the item; a full sync marks the others deleted.
    seen_session_id = models.BigIntegerField(null=True, blank=True)
    deleted = models.BooleanField(default=False)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "item_type", "external_id"], name="one_record_per_item"
            ),
        ]

    def __str__(self):
        return f"{self.item_type} {self.external_id}"


class IntegrationEvent(models.Model):
    class Kind(models.TextChoices):
        CREATED = "created", "Created"
        STATUS_CHANGED = "status_changed", "Status changed"
        SYNC_REQUESTED = "sync_requested", "Sync requested"
        LINK_SENT = "link_sent", "Re-authentication link sent"
        LINK_USED = "link_used", "Re-authentication link used"
        CREDENTIALS_UPDATED = "credentials_updated", "Credentials updated"
        CREDENTIALS_REVOKED = "credentials_revoked", "Credentials revoked"
        QA_ENTERED = "qa_entered", "Moved to quality assurance"
        QA_RELEASED = "qa_released", "Released from quality assurance"
        PAUSED = "paused", "Paused"
        RESUMED = "resumed", "Resumed"
        DEACTIVATED = "deactivated", "Deactivated"
        REACTIVATED = "reactivated", "Reactivated"
        DELETED = "deleted", "Deleted"
        RESTORED = "restored", "Restored"
        MAPPING_CHANGED = "mapping_changed", "Account mapping changed"
        ALERT_SENT = "alert_sent", "Alert sent"
        SESSION_FINISHED = "session_finished", "Sync finished"
        CONNECTION_TESTED = "connection_tested", "Connection tested"
        INTERVAL_CHANGED = "interval_changed", "Sync interval changed"
        VIEWED_AS_CUSTOMER = "viewed_as_customer", "Viewed as the customer sees it"

    # What other apps react to (integrations.events): written here, consumed there.
    ANNOUNCED_KINDS = (Kind.STATUS_CHANGED, Kind.SESSION_FINISHED)

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Empty when the system acted.",
    )
    from_status = models.CharField(max_length=30, blank=True)
    to_status = models.CharField(max_length=30, blank=True)
    note = models.TextField(blank=True)
    session = models.ForeignKey(SyncSession, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(db_index=True)
    data = models.JSONField(
        default=dict, blank=True, help_text="What those who react need: the facts before and after, issues changed."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["integration", "-created_at"], name="event_integration_recent")]

    def __str__(self):
        return f"{self.get_kind_display()} at {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def actor_label(self):
        return str(self.actor) if self.actor_id else "system"


class ReauthLink(models.Model):
    """A one-time re-authentication link; the token itself is never stored."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="reauth_links")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    recipient = models.EmailField()
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    opened_at = models.DateTimeField(null=True, blank=True)
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Link for {self.integration_id} to {self.recipient}"

    @staticmethod
    def hash_token(token):
        return hashlib.sha256(token.encode()).hexdigest()


# The engine's bookkeeping (seen items and ranges, page fingerprints, worker
# heartbeats) and the counters behind /metrics, in modules of their own.
from integrations.bookkeeping import PageFingerprint, SeenItem, SeenRange, WorkerHeartbeat  # noqa: E402, F401
from integrations.tallies import MetricTally  # noqa: E402, F401
