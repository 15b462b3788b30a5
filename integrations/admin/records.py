"""Admins for what the engine writes: sessions, records, events, links, mappings, keys."""

import json

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from integrations import mapping
from integrations.admin.common import CappedCountPaginator, ReadOnlyAdmin, session_badge
from integrations.words import items_with_issues, natural_duration, relative
from integrations.models import (
    AccountMapping,
    ApiKey,
    IntegrationEvent,
    MetricTally,
    PageFingerprint,
    ReauthLink,
    SeenItem,
    SeenRange,
    SyncedRecord,
    SyncSession,
    WorkerHeartbeat,
)
from integrations.reauth import link_state
from syncconsole.admin_cells import two_lines


@admin.register(SyncSession)
class SyncSessionAdmin(ReadOnlyAdmin):
    # Fits 1280 px beside the filters: kind and trigger share a column, the error code goes under the
    # state, the integration is cut to its column (whole in the title).
    list_display = ("session", "integration_column", "run", "state_badge", "queued", "duration", "items")
    list_display_links = ("session",)
    list_filter = ("state", "error_code", "trigger", "kind")
    list_select_related = ("integration", "integration__tenant", "error_code")
    search_fields = ("=id", "integration__name", "integration__tenant__name")
    paginator = CappedCountPaginator
    raw_id_fields = ("integration", "requested_by")
    fieldsets = (
        (None, {"fields": ("integration", "kind", "trigger", "requested_by", "state", "error_code", "error_message")}),
        ("Times", {"fields": ("queued_at", "started_at", "finished_at", "heartbeat_at", "lease_expires_at", "worker", "task_id")}),
        (
            "Counters",
            {"fields": (*SyncSession.COUNTERS, "items_total")},
        ),
        ("Issues and log", {"fields": ("issues_link", "log_table")}),
    )
    readonly_fields = ("issues_link", "log_table")

    @admin.display(description="session", ordering="id")
    def session(self, obj):
        return f"#{obj.pk}"

    @admin.display(description="integration")
    def integration_column(self, obj):
        return two_lines(obj.integration.name, obj.integration.tenant.name)

    @admin.display(description="run")
    def run(self, obj):
        return two_lines(obj.get_kind_display(), obj.get_trigger_display())

    @admin.display(description="state", ordering="state")
    def state_badge(self, obj):
        if obj.error_code_id:
            return format_html('{}<span class="sc-sub">{}</span>', session_badge(obj.state), obj.error_code_id)
        return session_badge(obj.state)

    @admin.display(description="queued", ordering="queued_at")
    def queued(self, obj):
        return relative(obj.queued_at)

    @admin.display(description="duration")
    def duration(self, obj):
        return natural_duration(obj.duration) if obj.finished_at else "-"

    @admin.display(description="items", ordering="items_seen")
    def items(self, obj):
        troubled = items_with_issues(obj)
        return two_lines(f"{obj.items_seen:,}", f"{troubled:,} with issues" if troubled else "")

    @admin.display(description="issues")
    def issues_link(self, obj):
        url = reverse("admin:issues_syncissue_changelist") + f"?last_session__id__exact={obj.pk}"
        return format_html('<a href="{}">Issues last seen in this session</a>', url)

    @admin.display(description="log")
    def log_table(self, obj):
        rows = obj.log or []
        if not rows:
            return "Empty."
        return format_html(
            '<table><thead><tr><th>at</th><th>level</th><th>message</th></tr></thead><tbody>{}</tbody></table>',
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}{}</td></tr>",
                (
                    (
                        r.get("at", ""),
                        r.get("level", ""),
                        r.get("message", ""),
                        f" {json.dumps(r['data'])}" if r.get("data") else "",
                    )
                    for r in rows
                ),
            ),
        )


@admin.register(SyncedRecord)
class SyncedRecordAdmin(ReadOnlyAdmin):
    list_display = ("external_id", "item_type", "integration", "deleted", "last_synced_at")
    list_filter = ("item_type", "deleted")
    list_select_related = ("integration", "integration__tenant")
    search_fields = ("^external_id",)
    paginator = CappedCountPaginator
    raw_id_fields = ("integration",)

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if request.resolver_match.url_name.endswith("_change") else qs.defer("data")


@admin.register(IntegrationEvent)
class IntegrationEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "integration", "kind", "from_status", "to_status", "actor_label", "note")
    list_filter = ("kind",)
    list_select_related = ("integration", "integration__tenant", "actor")
    search_fields = ("integration__name",)
    paginator = CappedCountPaginator
    raw_id_fields = ("integration", "session", "actor")


@admin.register(ReauthLink)
class ReauthLinkAdmin(ReadOnlyAdmin):
    list_display = ("integration", "recipient", "state", "created_at", "expires_at", "opened_at", "used_at")
    list_select_related = ("integration", "integration__tenant")
    exclude = ("token_hash",)

    @admin.display(description="state")
    def state(self, obj):
        return link_state(obj)


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    list_display = ("name", "tenant", "key_prefix", "created_at", "last_used_at", "revoked_at")
    list_select_related = ("tenant",)
    exclude = ("key_hash",)


@admin.register(AccountMapping)
class AccountMappingAdmin(admin.ModelAdmin):
    list_display = ("vendor_account_id", "vendor_account_name", "integration", "tenant_account", "ignored")
    list_select_related = ("integration", "integration__tenant")
    search_fields = ("^vendor_account_id", "vendor_account_name")
    raw_id_fields = ("integration",)

    def get_readonly_fields(self, request, obj=None):
        # A row belongs to the integration whose vendor listed the account.
        return ("integration", "vendor_account_id") if obj is not None else ()

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        self.message_user(request, mapping.apply_completeness(obj.integration, actor=request.user), messages.INFO)

    def delete_model(self, request, obj):
        integration = obj.integration
        super().delete_model(request, obj)
        self.message_user(request, mapping.apply_completeness(integration, actor=request.user), messages.INFO)

    def delete_queryset(self, request, queryset):
        integrations = list({m.integration for m in queryset.select_related("integration")})
        super().delete_queryset(request, queryset)
        for integration in integrations:
            mapping.apply_completeness(integration, actor=request.user)


@admin.register(SeenItem)
class SeenItemAdmin(ReadOnlyAdmin):
    """Bookkeeping of running full syncs; empty between syncs."""

    list_display = ("session_id", "external_id")
    paginator = CappedCountPaginator


@admin.register(SeenRange)
class SeenRangeAdmin(ReadOnlyAdmin):
    """Pages a running full sync skipped as unchanged, as id ranges; empty between syncs."""

    list_display = ("session_id", "item_type", "low", "high")
    paginator = CappedCountPaginator


@admin.register(PageFingerprint)
class PageFingerprintAdmin(ReadOnlyAdmin):
    """Pages of each integration's last complete full sync that the next one may skip (sync/fingerprints.py)."""

    list_display = ("integration", "item_type", "low", "high", "item_count")
    list_select_related = ("integration", "integration__tenant")
    raw_id_fields = ("integration",)
    paginator = CappedCountPaginator


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyAdmin):
    """The last beat of each qcluster worker process (the dashboard's workers panel reads them)."""

    list_display = ("cluster", "host", "pid", "last_beat_at")
    list_filter = ("cluster",)
    ordering = ("-last_beat_at",)


@admin.register(MetricTally)
class MetricTallyAdmin(ReadOnlyAdmin):
    """The counters behind /metrics, one row per series (integrations/tallies.py)."""

    list_display = ("metric", "labels", "count", "total")
    list_filter = ("metric",)
