"""The console's help requests: the list, and each request's page with its conversation.

The page shows what the customer asked, the facts and sync history kept with
it (as tables), and the thread with internal notes marked as such. Staff with
`issues.change_supportrequest` reply (emailed to the customer), add notes,
change the state and the assignee, and send a failed email again; others
only read. The forms post to views of their own (`get_urls`, as Django's
UserAdmin does for passwords); every change goes through
`conversation`, which checks the permission again and writes the audit
record, and is logged on the request's admin history.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from issues.models import SupportMessage, SupportRequest
from issues.support import conversation, selectors
from syncconsole.admin_tools import CappedCountPaginator, PageFirstCount, ReadOnlyAdmin
from syncconsole.words import relative

State = SupportRequest.State
UNCHANGED_STATE = "unchanged"


class ReplyForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[("reply", "Reply to the customer (emailed)"), ("note", "Internal note (support only)")],
        initial="reply",
        widget=forms.RadioSelect,
    )
    body = forms.CharField(
        label="Message", max_length=conversation.MAX_BODY, widget=forms.Textarea(attrs={"rows": 6, "cols": 80})
    )
    then_state = forms.ChoiceField(
        label="Then set the state to",
        choices=[*State.choices, (UNCHANGED_STATE, "Leave it as it is")],
        initial=State.WAITING_ON_CUSTOMER,
        help_text="After a reply. A note leaves the state as it is.",
    )


def staff_choices():
    users = get_user_model().objects.filter(is_staff=True, is_active=True).order_by("username")
    return [("", "Nobody"), *((str(u.pk), u.get_full_name() or u.get_username()) for u in users)]


class UpdateForm(forms.Form):
    state = forms.ChoiceField(choices=State.choices)
    assignee = forms.TypedChoiceField(choices=(), coerce=int, empty_value=None, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].choices = staff_choices()


class OpenFilter(admin.SimpleListFilter):
    title = "open or resolved"
    parameter_name = "open"

    def lookups(self, request, model_admin):
        return [("yes", "Not resolved"), ("no", "Resolved")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(state__in=SupportRequest.OPEN_STATES)
        if self.value() == "no":
            return queryset.filter(state=State.RESOLVED)
        return queryset


class AssigneeFilter(admin.SimpleListFilter):
    title = "assignee"
    parameter_name = "assigned"

    def lookups(self, request, model_admin):
        return [("me", "Me"), ("nobody", "Nobody")]

    def queryset(self, request, queryset):
        if self.value() == "me":
            return queryset.filter(assignee=request.user)
        if self.value() == "nobody":
            return queryset.filter(assignee=None)
        return queryset


@admin.register(SupportRequest)
class SupportRequestAdmin(PageFirstCount, admin.ModelAdmin):
    list_display = ("request", "about", "customer", "state", "assignee", "age", "updated_at")
    list_filter = (OpenFilter, "state", AssigneeFilter)
    list_select_related = ("integration", "integration__tenant", "issue", "user", "assignee")
    search_fields = ("integration__name", "integration__tenant__name", "user__email", "message")
    paginator = CappedCountPaginator
    show_full_result_count = False

    def has_add_permission(self, request):
        return False  # customers ask in the portal

    @admin.display(description="request", ordering="id")
    def request(self, obj):
        return f"Request {obj.pk}"

    @admin.display(description="about")
    def about(self, obj):
        issue = f" · {obj.issue.error_code_id}" if obj.issue_id else ""
        return f"{obj.integration}{issue}"

    @admin.display(description="customer", ordering="user__username")
    def customer(self, obj):
        return obj.user.get_full_name() or obj.user.get_username()

    @admin.display(description="asked", ordering="created_at")
    def age(self, obj):
        return relative(obj.created_at)

    # -- the request's page ----------------------------------------------------

    def get_urls(self):
        def view(function):
            return self.admin_site.admin_view(require_POST(function))

        return [
            path("<path:object_id>/reply/", view(self.reply_view), name="issues_supportrequest_reply"),
            path("<path:object_id>/update/", view(self.update_view), name="issues_supportrequest_update"),
            path(
                "<path:object_id>/messages/<int:message_id>/send-again/",
                view(self.send_again_view),
                name="issues_supportrequest_send_again",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET"])
        support_request = self._get(request, object_id)
        return self.render_page(request, support_request)

    def render_page(self, request, support_request, *, reply_form=None, update_form=None, status=200):
        can_change = self.has_change_permission(request, support_request)
        return TemplateResponse(
            request,
            "admin/issues/supportrequest/conversation.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Request {support_request.pk}: {support_request.integration}",
                "opts": self.model._meta,
                "original": support_request,
                "has_view_permission": True,
                "support_request": support_request,
                "thread": selectors.staff_thread(support_request),
                "history": history_rows(support_request.history),
                "can_change": can_change,
                "reply_form": (reply_form or ReplyForm()) if can_change else None,
                "update_form": (
                    update_form
                    or UpdateForm(initial={"state": support_request.state, "assignee": support_request.assignee_id})
                )
                if can_change
                else None,
            },
            status=status,
        )

    def reply_view(self, request, object_id):
        support_request = self._get(request, object_id, change=True)
        form = ReplyForm(request.POST)
        if not form.is_valid():
            messages.error(request, "The reply was not saved: see the form below.")
            return self.render_page(request, support_request, reply_form=form, status=400)
        data = form.cleaned_data
        try:
            if data["kind"] == "note":
                conversation.add_note(support_request.pk, author=request.user, body=data["body"])
                done = "Internal note added; the customer does not see it."
            else:
                then = None if data["then_state"] == UNCHANGED_STATE else data["then_state"]
                conversation.reply(support_request.pk, author=request.user, body=data["body"], then_state=then)
                done = f"Reply saved and emailed to {support_request.user.email or 'the customer (no email address)'}."
        except conversation.Refused as exc:
            messages.error(request, exc.message)
            return self.render_page(request, support_request, reply_form=form, status=exc.status)
        self.log_change(request, support_request, done)
        messages.success(request, done)
        return self._back(support_request)

    def update_view(self, request, object_id):
        support_request = self._get(request, object_id, change=True)
        form = UpdateForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Nothing was changed: see the form below.")
            return self.render_page(request, support_request, update_form=form, status=400)
        assignee_id = form.cleaned_data["assignee"]
        assignee = get_user_model().objects.filter(pk=assignee_id).first() if assignee_id else None
        try:
            changes = conversation.update(
                support_request.pk, actor=request.user, state=form.cleaned_data["state"], assignee=assignee
            )
        except conversation.Refused as exc:
            messages.error(request, exc.message)
            return self.render_page(request, support_request, update_form=form, status=exc.status)
        if not changes:
            messages.warning(request, "The state and the assignee were already those; nothing changed.")
            return self._back(support_request)
        done = "; ".join(
            f"{field}: {before or 'nobody'} → {after or 'nobody'}" for field, (before, after) in changes.items()
        )
        self.log_change(request, support_request, done)
        messages.success(request, f"Changed {done}.")
        return self._back(support_request)

    def send_again_view(self, request, object_id, message_id):
        support_request = self._get(request, object_id, change=True)
        if not support_request.messages.filter(pk=message_id).exists():
            raise Http404("No such message in this request.")
        try:
            conversation.send_again(message_id, actor=request.user)
        except conversation.Refused as exc:
            messages.error(request, exc.message)
            return self._back(support_request)
        self.log_change(request, support_request, f"Sent reply {message_id} to the customer again.")
        messages.success(request, "The reply was sent again; its line below says whether the mail server took it.")
        return self._back(support_request)

    def _get(self, request, object_id, *, change=False):
        object_id = unquote(str(object_id))
        support_request = None
        if object_id.isascii() and object_id.isdigit() and len(object_id) <= 18:
            support_request = (
                SupportRequest.objects.select_related("integration__tenant", "issue__error_code", "user", "assignee")
                .filter(pk=int(object_id))
                .first()
            )
        if support_request is None:
            raise Http404("There is no such help request.")
        allowed = (
            self.has_change_permission(request, support_request)
            if change
            else self.has_view_or_change_permission(request, support_request)
        )
        if not allowed:
            raise PermissionDenied(
                "Changing help requests needs the permission “Can change help request” "
                "(the Support and Engineering groups have it)."
                if change
                else "Reading help requests needs the permission “Can view help request”."
            )
        return support_request

    def _back(self, support_request):
        return HttpResponseRedirect(reverse("admin:issues_supportrequest_change", args=[support_request.pk]))


def history_rows(history):
    """The sessions kept with a request (JSON) as rows with times, for a table; what does not parse shows as is."""
    rows = []
    for entry in history if isinstance(history, list) else []:
        if isinstance(entry, dict):
            times = {key: parse_datetime(entry.get(key) or "") for key in ("queued_at", "finished_at")}
            rows.append({**entry, **{key: value for key, value in times.items() if value is not None}})
    return rows


def requests_links(issue_requests):
    """The issue page's links to its help requests (read by issues.admin.SyncIssueAdmin)."""
    if not issue_requests:
        return "None"
    links = [
        format_html(
            '<a href="{}">Request {}</a> ({})',
            reverse("admin:issues_supportrequest_change", args=[r.pk]),
            r.pk,
            r.get_state_display(),
        )
        for r in issue_requests
    ]
    return format_html(" · ".join(["{}"] * len(links)), *links)


@admin.register(SupportMessage)
class SupportMessageAdmin(ReadOnlyAdmin):
    """Every reply and note, read-only: they are written on the request's page, which keeps the rules."""

    list_display = ("request", "kind", "from_support", "author", "created_at", "emailed_at", "email_error")
    list_filter = ("kind", "from_support")
    list_select_related = ("request__issue", "author")
    paginator = CappedCountPaginator
