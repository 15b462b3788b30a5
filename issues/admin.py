"""The console's error catalog and issues: the changelist (search, bulk resolve and ignore, CSV export)
and the issue page (what the catalog says, both records, occurrences over time, Resolve / Ignore / Reopen).

The issue page's buttons post to views of their own (`get_urls`, as Django's
UserAdmin does for passwords); `services` checks the permission again,
changes the issue and its integration's open-issue count in one transaction
and writes the audit record; the change is logged on the issue's admin
history too.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.exceptions import DisallowedModelAdminLookup
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_POST

from audit import services as audit
from audit.models import AuditRecord
from issues import export, services
from issues.models import ErrorCode, SyncIssue
from issues.occurrences import occurrences_context
from issues.support.admin import requests_links  # the import registers the help requests' admin too
from syncconsole.admin_cells import two_lines
from syncconsole.admin_errors import MissingPermission
from syncconsole.admin_tools import CappedCountPaginator, FilteredChangeList, ReadOnlyAdmin
from syncconsole.words import counted, relative
from syncconsole.search import indexed_search

State = SyncIssue.State
# The issue page's buttons: URL name suffix -> (the state it leads to, the label).
STATE_CHANGES = {
    "resolve": (State.RESOLVED, "Resolve"),
    "ignore": (State.IGNORED, "Ignore"),
    "reopen": (State.OPEN, "Reopen"),
}


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
                    "title": f"{label} {counted(queryset.count(), 'issue')}",
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
        modeladmin.message_user(request, f"{label}: {counted(changed, 'issue')}.", messages.SUCCESS)
        if changed == 0:
            modeladmin.message_user(request, "None of the selected issues was open; nothing changed.", messages.WARNING)
        return None

    action.__name__ = f"{new_state}_issues"
    return action


@admin.register(SyncIssue)
class SyncIssueAdmin(ReadOnlyAdmin):
    # Fits 1280 px beside the filters: the code carries the source and the message, the item and the
    # integration are cut to their columns (whole in the title); support sorts by state, severity,
    # occurrences and last seen.
    list_display = (
        "issue",
        "item",
        "integration_column",
        "severity",
        "state",
        "seen",
        "last_seen",
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
        # A code from its start, in any case ("auth_" finds the three AUTH_ codes): the catalog's few
        # rows are read first and the issues found by the index on error_code.
        "^error_code__code",
    )
    search_help_text = "An item's id or name, a message, an integration, a tenant, or an error code."
    paginator = CappedCountPaginator
    raw_id_fields = ("tenant", "integration", "first_session", "last_session", "record", "resolved_by")
    readonly_fields = ("help_requests",)
    actions = [_close_issues(SyncIssue.State.RESOLVED, "Resolve"), _close_issues(SyncIssue.State.IGNORED, "Ignore")]
    change_form_template = "admin/issues/syncissue/change_form.html"
    change_list_template = "admin/issues/syncissue/change_list.html"

    def has_resolve_permission(self, request):
        return request.user.has_perm("issues.resolve_syncissue")

    def get_queryset(self, request):
        return super().get_queryset(request).defer("details")

    def get_search_results(self, request, queryset, search_term):
        # Every arm on the issues table's own columns, so its indexes serve the
        # OR: the integration and tenant names as ids looked up first.
        return indexed_search(queryset, self.get_search_fields(request), search_term)

    def get_changelist(self, request, **kwargs):
        if request.resolver_match is not None and request.resolver_match.url_name == "issues_syncissue_export":
            return FilteredChangeList  # the list's filters and search, no page read
        return super().get_changelist(request, **kwargs)

    def get_urls(self):
        def post(view):
            return self.admin_site.admin_view(require_POST(view))

        return [
            path(
                "export/",
                self.admin_site.admin_view(require_GET(self.export_view)),
                name="issues_syncissue_export",
            ),
            *(
                path(
                    f"<path:object_id>/{name}/",
                    post(self.state_view),
                    {"change": name},
                    name=f"issues_syncissue_{name}",
                )
                for name in STATE_CHANGES
            ),
            *super().get_urls(),
        ]

    # -- the CSV export of the filtered list -------------------------------------

    def export_view(self, request):
        """The changelist's current list (filters, search, order; every page) as a streamed CSV."""
        if not self.has_view_permission(request):
            raise MissingPermission("issues.view_syncissue", "Exporting issues")
        if any("\x00" in value for values in request.GET.lists() for value in values[1]):
            return _bad_export("The search and the filters cannot contain NUL characters; nothing was exported.")
        try:
            changelist = self.get_changelist_instance(request)
        except (IncorrectLookupParameters, DisallowedModelAdminLookup):
            given = ", ".join(sorted(name for name in request.GET if name not in ("q", "o", "p", "e")))[:200]
            return _bad_export(
                f"These filters do not fit the issue list ({given}): filter the list, then export it from there. "
                "Nothing was exported."
            )
        stamp = timezone.now().strftime("%Y%m%d-%H%M")
        return export.csv_response(changelist.queryset, f"issues-{stamp}.csv", with_tenant=True)

    # -- the issue page -------------------------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        issue = self._find(object_id)
        extra = dict(extra_context or {})
        if issue is not None and self.has_view_permission(request, issue):
            extra["sc"] = self.page_context(request, issue)
        # Django's own answers otherwise: an unknown id, a refusal.
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def page_context(self, request, issue, *, form=None):
        """The panels above the issue's fields: state and buttons, what to do, records, occurrences."""
        may_change = self.has_resolve_permission(request)
        twin = services.open_twin(issue) if issue.state != State.OPEN and may_change else None
        return {
            "issue": issue,
            "code": issue.error_code,
            "may_change": may_change,
            "buttons": [
                (name, label)
                for name, (state, label) in STATE_CHANGES.items()
                if (state == State.OPEN) != (issue.state == State.OPEN)
            ],
            "reopen_refusal": services.twin_refusal(twin) if twin is not None else "",
            "twin": twin,
            "form": form or NoteForm(),
            "our_record": _our_record(issue),
            "occurrences": occurrences_context(issue),
        }

    def state_view(self, request, object_id, change):
        """POST: resolve, ignore or reopen this issue, with a note; 400 without one, 409 if refused by its state."""
        issue = self._issue(request, object_id)
        state, label = STATE_CHANGES[change]
        if not self.has_resolve_permission(request):
            raise MissingPermission("issues.resolve_syncissue", f"{label} an issue")
        form = NoteForm(request.POST)
        if not form.is_valid():
            return self._refused(request, issue, "Say why in the note; nothing was changed.", 400, form)
        note = form.cleaned_data["note"]
        try:
            if state == State.OPEN:
                issue = services.reopen_issue(issue.pk, actor=request.user, note=note)
            else:
                issue = services.close_issue(issue.pk, state, actor=request.user, note=note)
        except services.Refused as exc:
            return self._refused(request, issue, exc.message, exc.status, form)
        except PermissionDenied:
            raise MissingPermission("issues.resolve_syncissue", f"{label} an issue") from None
        done = f"{issue.get_state_display()}: {note}"
        self.log_change(request, issue, done)
        self.message_user(request, f"The issue is {issue.get_state_display().lower()} now.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:issues_syncissue_change", args=[issue.pk]))

    def _refused(self, request, issue, message, status, form):
        issue = self._issue(request, issue.pk)
        return TemplateResponse(
            request,
            "admin/issues/syncissue/state_refused.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Issue {issue.pk}: nothing was changed",
                "opts": self.model._meta,
                "original": issue,
                "message": message,
                "sc": self.page_context(request, issue, form=form),
            },
            status=status,
        )

    @staticmethod
    def _find(object_id):
        object_id = unquote(str(object_id))
        if not (object_id.isascii() and object_id.isdigit() and len(object_id) <= 18):
            return None
        return (
            SyncIssue.objects.select_related(
                "integration", "tenant", "error_code", "first_session", "last_session", "resolved_by"
            )
            .defer("details", "first_session__log", "last_session__log")
            .filter(pk=int(object_id))
            .first()
        )

    def _issue(self, request, object_id):
        issue = self._find(object_id)
        if issue is None:
            raise Http404("There is no such issue.")
        if not self.has_view_permission(request, issue):
            raise MissingPermission("issues.view_syncissue", "Opening an issue")
        return issue

    @admin.display(description="help requests")
    def help_requests(self, obj):
        return requests_links(list(obj.support_requests.order_by("-created_at", "-id")[:10]))

    @admin.display(description="issue", ordering="error_code")
    def issue(self, obj):
        source = obj.get_source_display()
        return two_lines(obj.error_code_id, f"{source} \u00b7 {obj.message}" if obj.message else source)

    @admin.display(description="item", ordering="external_id")
    def item(self, obj):
        label = obj.item_label or obj.external_id or "(session)"
        return two_lines(label, obj.external_id if obj.item_label and obj.external_id else "")

    @admin.display(description="integration")
    def integration_column(self, obj):
        return two_lines(obj.integration.name, obj.integration.tenant.name)

    @admin.display(description="last seen", ordering="last_seen_at")
    def last_seen(self, obj):
        return relative(obj.last_seen_at)

    @admin.display(description="times seen", ordering="occurrences")
    def seen(self, obj):
        return f"{obj.occurrences:,}"

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


def _bad_export(message):
    return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")


def _our_record(issue):
    """(admin URL, label) of our copy of the item, or None: the issue's link, else the record of its item."""
    if not issue.external_id:
        return None
    record_id = issue.record_id
    if record_id is None:
        records = SyncIssue._meta.get_field("record").related_model.objects
        record_id = (
            records.filter(
                integration_id=issue.integration_id, item_type=issue.item_type, external_id=issue.external_id
            )
            .values_list("pk", flat=True)
            .first()
        )
    if record_id is None:
        return None
    url = reverse("admin:integrations_syncedrecord_change", args=[record_id])
    return url, f"{issue.item_type} {issue.external_id}"
