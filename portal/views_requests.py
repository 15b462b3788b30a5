"""The portal's help requests: asking about an issue, contacting support from the General tab, answering.

Every request is found through the member's integrations (another tenant's
ids answer 404) and shows only replies, never support's internal notes.
Viewers ask and answer as admins do: a conversation with support changes
nothing of the integration, and DESIGN.md gives every customer "ask for help
on an issue"; what needs the admin role (syncs, credentials, mapping) stays
refused to them.

"Contact support" on the General tab fills in what support asks first (seed
000: which integration, since when, re-authentication and forced syncs
already tried, the mapping) from the timeline (`integrations.support_facts`);
the customer corrects what is wrong and says what happened.
"""

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from integrations import selectors
from integrations.support_facts import support_facts
from issues.models import SupportRequest, SyncIssue
from issues.support import conversation
from issues.support import selectors as support_selectors
from portal.views import base_context, portal_view, tenant_integration
from syncconsole import limits

YES_NO = [("yes", "Yes"), ("no", "No")]


class HelpForm(forms.Form):
    message = forms.CharField(
        max_length=conversation.MAX_BODY,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="What you tried and what you expected. Our support team answers here and by email.",
    )


class ContactForm(forms.Form):
    began = forms.CharField(
        label="When did the problem begin?", max_length=300, widget=forms.TextInput(attrs={"size": 70})
    )
    reauthenticated = forms.ChoiceField(
        label="Did you re-authenticate since then?", choices=YES_NO, widget=forms.RadioSelect
    )
    forced_sync = forms.ChoiceField(
        label="Did you start a sync yourself since then?", choices=YES_NO, widget=forms.RadioSelect
    )
    message = forms.CharField(
        label="What is wrong, and what did you expect?",
        max_length=conversation.MAX_BODY,
        widget=forms.Textarea(attrs={"rows": 6}),
    )

    @classmethod
    def from_facts(cls, facts, data=None):
        form = cls(
            data,
            initial={
                "began": facts.problem_began,
                "reauthenticated": "yes" if facts.reauthenticated else "no",
                "forced_sync": "yes" if facts.forced_sync else "no",
            },
        )
        form.fields["reauthenticated"].help_text = f"The timeline shows: {facts.reauthentication}."
        form.fields["forced_sync"].help_text = f"The timeline shows: {facts.forced_syncs}."
        return form


class AnswerForm(forms.Form):
    body = forms.CharField(
        max_length=conversation.MAX_BODY, strip=True, error_messages={"required": "Write your answer first."}
    )
    back = forms.ChoiceField(choices=[("general", ""), ("issue", ""), ("request", "")], required=False)


def session_history(integration):
    """The integration's recent sessions as kept with a request: what the customer saw when asking."""
    return [
        {
            "id": s.pk,
            "state": s.state,
            "error_code": s.error_code_id,
            "queued_at": s.queued_at.isoformat(),
            "finished_at": s.finished_at.isoformat() if s.finished_at else None,
            "items_seen": s.items_seen,
        }
        for s in selectors.recent_sessions(integration, limit=10)
    ]


def _limited(request):
    wait = limits.hit("help_requests", request.user.pk)
    if wait is None:
        return None
    return limits.limited_page(request, wait, "You sent many help requests in a short time; our team has them all.")


@portal_view()
@require_http_methods(["GET", "POST"])
def ask_for_help(request, integration_id, issue_id):
    """The portal's page of an issue: its advice, the conversations about it, and a new request."""
    integration = tenant_integration(request, integration_id)
    issue = get_object_or_404(SyncIssue.objects.select_related("error_code"), pk=issue_id, integration=integration)
    form = HelpForm(request.POST if request.method == "POST" else None)
    context = base_context(
        request,
        integration=integration,
        issue=issue,
        form=form,
        requests=support_selectors.requests_of_issue(issue),
        tab="issues",
    )
    if request.method == "GET":
        return render(request, "portal/help.html", context)
    if not form.is_valid():
        return render(request, "portal/help.html", context, status=400)
    limited = _limited(request)
    if limited:
        return limited
    conversation.open_request(
        integration,
        request.user,
        form.cleaned_data["message"],
        issue=issue,
        history=session_history(integration),
        facts=support_facts(integration).rows(),
    )
    messages.success(request, "Your request was sent to our support team. You can follow it here.")
    return redirect("portal:help", integration.pk, issue.pk)


@portal_view()
@require_http_methods(["GET", "POST"])
def contact_support(request, integration_id):
    """A request about the integration as a whole, with the timeline's answers filled in."""
    integration = tenant_integration(request, integration_id)
    facts = support_facts(integration)
    form = ContactForm.from_facts(facts, request.POST if request.method == "POST" else None)
    context = base_context(request, integration=integration, form=form, facts=facts, tab="general")
    if request.method == "GET":
        return render(request, "portal/contact_support.html", context)
    if not form.is_valid():
        return render(request, "portal/contact_support.html", context, status=400)
    limited = _limited(request)
    if limited:
        return limited
    data = form.cleaned_data
    support_request = conversation.open_request(
        integration,
        request.user,
        data["message"],
        history=session_history(integration),
        facts=facts.rows(began=data["began"], reauthenticated=data["reauthenticated"], forced_sync=data["forced_sync"]),
    )
    messages.success(
        request, f"Your request {support_request.pk} was sent to our support team; their answers appear here."
    )
    return redirect(reverse("portal:general", args=[integration.pk]) + f"#request-{support_request.pk}")


@portal_view()
@require_http_methods(["GET", "POST"])
def support_request(request, integration_id, request_id):
    """One request's conversation (never support's notes); POST answers it."""
    integration = tenant_integration(request, integration_id)
    queryset = support_selectors.with_customer_threads(SupportRequest.objects.filter(integration=integration))
    support_request = get_object_or_404(queryset, pk=request_id)
    if request.method == "GET":
        return _request_page(request, integration, support_request, AnswerForm())
    form = AnswerForm(request.POST)
    if not form.is_valid():
        return _request_page(request, integration, support_request, form, status=400)
    wait = limits.hit("help_replies", request.user.pk)
    if wait is not None:
        return limits.limited_page(request, wait, "You sent many answers in a short time; our team has them all.")
    try:
        conversation.answer(support_request.pk, author=request.user, body=form.cleaned_data["body"])
    except conversation.Refused as exc:
        form.add_error("body", exc.message)
        return _request_page(request, integration, support_request, form, status=exc.status)
    messages.success(request, "Your answer was sent to our support team.")
    return redirect(_back_url(form.cleaned_data["back"], integration, support_request))


def _request_page(request, integration, support_request, form, status=200):
    context = base_context(
        request, integration=integration, support_request=support_request, form=form, tab="general"
    )
    return render(request, "portal/support_request.html", context, status=status)


def _back_url(back, integration, support_request):
    if back == "general":
        return reverse("portal:general", args=[integration.pk]) + f"#request-{support_request.pk}"
    if back == "issue" and support_request.issue_id:
        url = reverse("portal:help", args=[integration.pk, support_request.issue_id])
        return f"{url}#request-{support_request.pk}"
    return reverse("portal:support_request", args=[integration.pk, support_request.pk])
