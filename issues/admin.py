from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from audit import services as audit
from audit.models import AuditRecord
from issues import services
from issues.models import ErrorCode, SupportRequest, SyncIssue
from syncconsole.admin_tools import CappedCountPaginator, ReadOnlyAdmin
from syncconsole.search import indexed_search


@admin.register(ErrorCode)
class ErrorCodeAdmin(admin.ModelAdmin):
    list_display = ("code", "title", "category", "default_severity", "retryable")
    list_filter = ("category", "default_severity", "retryable")
    search_fields = ("code", "title")

    def get_readonly_fields(self, request, obj=None):
        return ("code",) if obj else ()


class NoteForm(forms.Form):
    note = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))


def _close_issues(new_state, label):
    @admin.action(description=f"{label} selected issues…", permissions=["resolve"])
    def action(modeladmin, request, queryset):
        if not queryset.exists():  # "select all" over a search that matches nothing
            modeladmin.message_user(request, f"{label}: no issue matches; nothing was changed.", messages.WARNING)
            return None
        form = NoteForm(request.POST if "apply" in request.POST else None)
        if "apply" not in request.POST or not form.is_valid():
            return TemplateResponse(
                request,
                "admin/issues/syncissue/close_issues.html",
                {
                    **modeladmin.admin_site.each_context(request),
                    "title": f"{label} {queryset.count()} issue(s)",
                    "issues": queryset.select_related("integration", "error_code")[:100],
                    "form": form,
                    "action": action.__name__,
                    "label": label,
                    "opts": modeladmin.model._meta,
                    "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                    "selected": queryset.values_list("pk", flat=True),
                },
            )
        # Only open issues change; closing one twice is refused by the service.
        changed = services.close_issues(queryset, new_state, actor=request.user, note=form.cleaned_data["note"])
        if changed:
            tenants = sorted(set(queryset.values_list("tenant_id", flat=True)[:1000]))
            for tenant_id in tenants:  # one record per tenant whose issues changed: each sees its own
                audit.record(
                    AuditRecord.Action.STAFF_ACTION,
                    tenant=tenant_id,
                    actor=request.user,
                    target=f"{label} issues",
                    changes={"state": new_state, "changed": changed, "note": form.cleaned_data["note"][:500]},
                )
        modeladmin.message_user(request, f"{label}: {changed} issue(s).", messages.SUCCESS)
        if changed == 0:
            modeladmin.message_user(request, "None of the selected issues was open; nothing changed.", messages.WARNING)
        return None

    action.__name__ = f"{new_state}_issues"
    return action


@admin.register(SyncIssue)
class SyncIssueAdmin(ReadOnlyAdmin):
    list_display = (
        "error_code",
        "item",
        "integration",
        "source",
        "severity",
        "state",
        "occurrences",
        "last_seen_at",
        "links",
    )
    list_filter = (
        "state",
        "severity",
        "error_code__category",
        "error_code",
        "source",
        "integration__connector",
    )
    list_select_related = ("integration", "integration__tenant", "error_code")
    # An id pasted whole is found by the btree on external_id; the rest by
    # trigram indexes on PostgreSQL (issues/migrations/0006_search_indexes.py).
    search_fields = (
        "external_id__exact",
        "^external_id",
        "^item_label",
        "message",
        "integration__name",
        "tenant__name",
    )
    paginator = CappedCountPaginator
    raw_id_fields = ("tenant", "integration", "first_session", "last_session", "record", "resolved_by")
    actions = [_close_issues(SyncIssue.State.RESOLVED, "Resolve"), _close_issues(SyncIssue.State.IGNORED, "Ignore")]

    def has_resolve_permission(self, request):
        return request.user.has_perm("issues.resolve_syncissue")

    def get_queryset(self, request):
        return super().get_queryset(request).defer("details")

    def get_search_results(self, request, queryset, search_term):
        # Every arm on the issues table's own columns, so its indexes serve the
        # OR: the integration and tenant names as ids looked up first.
        return indexed_search(queryset, self.get_search_fields(request), search_term)

    @admin.display(description="item", ordering="external_id")
    def item(self, obj):
        return obj.item_label or obj.external_id or "(session)"

    @admin.display(description="records")
    def links(self, obj):
        parts = []
        if obj.vendor_link:
            parts.append(format_html('<a href="{}" rel="noopener noreferrer">vendor</a>', obj.vendor_link))
        if obj.record_id:
            parts.append(
                format_html('<a href="{}">ours</a>', reverse("admin:integrations_syncedrecord_change", args=[obj.record_id]))
            )
        return format_html(" · ".join(["{}"] * len(parts)), *parts) if parts else ""


@admin.register(SupportRequest)
class SupportRequestAdmin(admin.ModelAdmin):
    list_display = ("issue", "user", "state", "created_at", "updated_at")
    list_filter = ("state",)
    list_select_related = ("issue", "issue__error_code", "user")
    raw_id_fields = ("issue", "user")
    readonly_fields = ("issue", "user", "message", "history", "created_at", "updated_at")
    fields = ("state", "issue", "user", "message", "history", "created_at", "updated_at")

    def has_add_permission(self, request):
        return False
