from django.contrib import admin

from integrations.admin import ReadOnlyAdmin
from issues.models import ErrorCode, SupportRequest, SyncIssue


@admin.register(ErrorCode)
class ErrorCodeAdmin(admin.ModelAdmin):
    list_display = ("code", "title", "category", "default_severity", "retryable")
    list_filter = ("category", "default_severity", "retryable")
    search_fields = ("code", "title")

    def get_readonly_fields(self, request, obj=None):
        return ("code",) if obj else ()


@admin.register(SyncIssue)
class SyncIssueAdmin(ReadOnlyAdmin):
    list_display = (
        "error_code",
        "item_label",
        "external_id",
        "integration",
        "severity",
        "state",
        "occurrences",
        "last_seen_at",
    )
    list_filter = ("state", "severity", "error_code__category", "error_code", "integration__connector")
    list_select_related = ("integration", "integration__tenant", "error_code")
    search_fields = ("^external_id",)
    show_full_result_count = False
    raw_id_fields = ("tenant", "integration", "first_session", "last_session", "record")


@admin.register(SupportRequest)
class SupportRequestAdmin(admin.ModelAdmin):
    list_display = ("issue", "user", "state", "created_at")
    list_filter = ("state",)
    list_select_related = ("issue", "issue__error_code", "user")
    raw_id_fields = ("issue", "user")
    readonly_fields = ("issue", "user", "message", "history", "created_at")
