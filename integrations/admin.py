"""The support console for integrations (read-mostly for now).

Credentials never appear here: the ciphertext column is not editable and is
never listed; the page shows only when credentials were set and expire.
"""

from django.contrib import admin
from django.db.models import Count, Q
from django.utils.html import format_html

from integrations.models import (
    AccountMapping,
    ApiKey,
    Integration,
    IntegrationEvent,
    Membership,
    ReauthLink,
    SyncedRecord,
    SyncSession,
    Tenant,
)

STATUS_COLOURS = {
    Integration.Status.SETUP: "#6b7280",
    Integration.Status.ACTIVE: "#15803d",
    Integration.Status.WARNINGS: "#b45309",
    Integration.Status.FAILING: "#b91c1c",
    Integration.Status.UNKNOWN: "#7c3aed",
    Integration.Status.AUTH_FAILING: "#c2410c",
    Integration.Status.CREDENTIALS_INVALID: "#991b1b",
    Integration.Status.QUALITY_ASSURANCE: "#1d4ed8",
    Integration.Status.INACTIVE: "#4b5563",
    Integration.Status.DELETED: "#111827",
}


def status_badge(status, label):
    return format_html(
        '<span style="background:{};color:#fff;padding:2px 8px;border-radius:10px;white-space:nowrap">{}</span>',
        STATUS_COLOURS.get(status, "#6b7280"),
        label,
    )


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the engine: looked at, never edited by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    extra = 0
    fields = ("name", "key_prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("name", "key_prefix", "created_at", "last_used_at")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "environment", "integration_count", "last_api_request_at")
    list_filter = ("environment",)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = (MembershipInline, ApiKeyInline)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_integrations=Count("integrations"))

    @admin.display(description="integrations", ordering="_integrations")
    def integration_count(self, obj):
        return obj._integrations


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "tenant", "role", "receives_alerts")
    list_filter = ("role", "receives_alerts")
    list_select_related = ("user", "tenant")
    search_fields = ("user__username", "user__email", "tenant__name")
    autocomplete_fields = ("user", "tenant")


class AccountMappingInline(admin.TabularInline):
    model = AccountMapping
    extra = 0
    fields = ("vendor_account_id", "vendor_account_name", "tenant_account", "ignored")


@admin.register(Integration)
class IntegrationAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "tenant",
        "connector",
        "status_badge",
        "consecutive_unsuccessful",
        "last_success_at",
        "open_issues",
    )
    list_filter = ("status", "connector", "tenant__environment", "paused")
    list_select_related = ("tenant",)
    search_fields = ("name", "tenant__name", "tenant__slug", "account_mappings__vendor_account_id")
    show_full_result_count = False
    readonly_fields = (
        "status",
        "status_changed_at",
        "status_reason",
        "credentials_panel",
        "last_session",
        "last_success_at",
        "last_outcome",
        "last_outcome_at",
        "last_error_code",
        "consecutive_unsuccessful",
        "unsuccessful_since",
        "auth_failing_since",
        "quality_assurance_since",
        "deactivated_at",
        "deleted_at",
        "first_sync_finished_at",
        "mapping_complete",
        "sync_cursor",
        "next_sync_at",
        "created_at",
    )
    fieldsets = (
        (None, {"fields": ("tenant", "name", "connector", "kind", "settings", "sync_interval")}),
        ("Status", {"fields": ("status", "status_changed_at", "status_reason", "paused", "paused_reason")}),
        (
            "Last sync",
            {
                "fields": (
                    "last_session",
                    "last_outcome",
                    "last_outcome_at",
                    "last_error_code",
                    "last_success_at",
                    "next_sync_at",
                    "sync_cursor",
                )
            },
        ),
        (
            "Streaks and flags",
            {
                "fields": (
                    "consecutive_unsuccessful",
                    "unsuccessful_since",
                    "auth_failing_since",
                    "quality_assurance_since",
                    "deactivated_at",
                    "deleted_at",
                    "first_sync_finished_at",
                    "mapping_complete",
                )
            },
        ),
        ("Credentials", {"fields": ("credentials_panel",)}),
    )
    raw_id_fields = ("tenant",)
    inlines = (AccountMappingInline,)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(_open_issues=Count("issues", filter=Q(issues__state="open")))
        )

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description="open issues", ordering="_open_issues")
    def open_issues(self, obj):
        return obj._open_issues

    @admin.display(description="credentials")
    def credentials_panel(self, obj):
        if not obj.has_credentials:
            return "No credentials stored."
        expires = f", expire {obj.credentials_expire_at:%Y-%m-%d}" if obj.credentials_expire_at else ""
        return f"Set {obj.credentials_set_at:%Y-%m-%d %H:%M}{expires} (values are encrypted and never shown)."


@admin.register(SyncSession)
class SyncSessionAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "integration",
        "kind",
        "trigger",
        "state",
        "error_code",
        "queued_at",
        "finished_at",
        "items_seen",
    )
    list_filter = ("state", "trigger", "kind", "error_code")
    list_select_related = ("integration", "integration__tenant", "error_code")
    search_fields = ("=id", "integration__name", "integration__tenant__name")
    show_full_result_count = False
    raw_id_fields = ("integration", "requested_by")


@admin.register(SyncedRecord)
class SyncedRecordAdmin(ReadOnlyAdmin):
    list_display = ("external_id", "item_type", "integration", "deleted", "last_synced_at")
    list_filter = ("item_type", "deleted")
    list_select_related = ("integration", "integration__tenant")
    search_fields = ("^external_id",)
    show_full_result_count = False
    raw_id_fields = ("integration",)


@admin.register(IntegrationEvent)
class IntegrationEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "integration", "kind", "from_status", "to_status", "actor_label", "note")
    list_filter = ("kind",)
    list_select_related = ("integration", "integration__tenant", "actor")
    search_fields = ("integration__name",)
    show_full_result_count = False


@admin.register(ReauthLink)
class ReauthLinkAdmin(ReadOnlyAdmin):
    list_display = ("integration", "recipient", "created_at", "expires_at", "opened_at", "used_at", "revoked_at")
    list_select_related = ("integration", "integration__tenant")
    exclude = ("token_hash",)


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
