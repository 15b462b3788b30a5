from django.contrib import admin

from audit.models import AuditRecord
from syncconsole.admin_tools import CappedCountPaginator, ReadOnlyAdmin


@admin.register(AuditRecord)
class AuditRecordAdmin(ReadOnlyAdmin):
    """Read-only: nobody edits or deletes the trail by hand."""

    list_display = ("created_at", "action", "actor_label", "tenant", "address", "target")
    list_filter = ("action",)
    list_select_related = ("tenant",)
    search_fields = ("^actor_label", "^target", "=address")
    paginator = CappedCountPaginator
    raw_id_fields = ("actor", "tenant")
