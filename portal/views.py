"""The customer portal, `/portal/`: a tenant's integrations, the General and Issues tabs.

Every view loads objects through the member's tenant, so another tenant's ids
answer 404. Viewers read; tenant admins also sync, re-authenticate and map.
"""

from functools import wraps

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import F
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from integrations import connection_test, pagination, reauth, selectors, services
from integrations import credential_checks, schedule_controls
from integrations.advice import CUSTOMER, advice_for, supersedes_catalog
from integrations import status as machine
from integrations.admin.panels import history_svg
from integrations.api_keys import create_api_key, revoke_api_key
from integrations.connectors.base import connector_keys, get_connector_class
from integrations.mapping import new_account_issues, save_mapping, set_new_account_choice
from integrations.models import AccountMapping, ApiKey, Membership, SyncedRecord, SyncSession, Tenant
from integrations.sync.starting import SyncRefused, start_sync
from integrations.sync.waiting import estimate_wait
from issues.models import ErrorCode, Severity, SyncIssue
from issues.support import selectors as support_selectors
from portal.views_reauth import credentials_form
from syncconsole import limits, logs, outbound

ISSUES_PER_PAGE = 25
INTEGRATIONS_PER_PAGE = 50


class PasswordResetView(auth_views.PasswordResetView):
    """Django's password reset, with the number of emails limited per address and per email address."""

    def form_valid(self, form):
        email = form.cleaned_data["email"].strip().lower()
        for key in (limits.client_address(self.request), email):
            wait = limits.hit("password_reset", key)
            if wait is not None:
                return limits.limited_page(
                    self.request, wait, "Too many password reset emails were asked for; check your inbox for the last one."
                )
        return super().form_valid(form)


def portal_view(role=None):
    """Log in, belong to a tenant (staff are not portal users), and have the role if one is named."""

    def decorator(view):
        @login_required(login_url="portal:login")
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            membership = Membership.objects.select_related("tenant").filter(user=request.user).first()
            if membership is None or request.user.is_staff:
                return render(request, "portal/not_a_member.html", status=403)
            if role == Membership.Role.ADMIN and membership.role != Membership.Role.ADMIN:
                raise PermissionDenied("Only tenant admins can do this.")
            request.membership = membership
            request.tenant = membership.tenant
            logs.bind(tenant=membership.tenant_id)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def tenant_integration(request, integration_id):
    return get_object_or_404(selectors.integrations_for_tenant(request.tenant), pk=integration_id)


def base_context(request, **extra):
    return tenant_context(request.tenant, request.membership.role, membership=request.membership, **extra)


def tenant_context(tenant, role, *, membership=None, **extra):
    """What every portal page shows: the tenant, whether the reader is its admin, its open vendor incidents.

    Without a membership: staff viewing the portal as a member of that role sees it (views_as_customer).
    """
    from alerts.incidents import open_incidents_for_tenant

    return {
        "tenant": tenant,
        "membership": membership,
        "is_admin": role == Membership.Role.ADMIN,
        "incidents": open_incidents_for_tenant(tenant),
        **extra,
    }


@portal_view()
@require_GET
def integration_list(request):
    """The tenant's integrations by name, a page at a time, filtered by status and connector and searched."""
    params = request.GET
    choices = _integration_filter_choices(params)
    try:
        qs = selectors.filtered_integrations(request.tenant, params)
        after = params.get("after", "")
        integrations, next_cursor = pagination.page_by_name(qs, after, INTEGRATIONS_PER_PAGE)
    except (selectors.BadFilter, pagination.BadCursor) as exc:
        context = base_context(request, cards=[], error=str(exc), **choices)
        return render(request, "portal/list.html", context, status=400)
    cards = [(i, *selectors.customer_words(i)) for i in integrations]
    context = base_context(request, cards=cards, **_pager(params, next_cursor), **choices)
    return render(request, "portal/list.html", context)


def _integration_filter_choices(params):
    statuses = selectors.integration_status_filter()
    return {
        "statuses": [(value, selectors.customer_words(value)[0]) for value in statuses],
        "connectors": [(key, get_connector_class(key).label or key) for key in connector_keys()],
        "current": {name: params.get(name, "") for name in selectors.INTEGRATION_FILTERS},
        "filtered": any(params.get(name, "") for name in selectors.INTEGRATION_FILTERS),
    }


def _pager(params, next_cursor):
    """The links of a keyset-paged list: the next page and back to the first, keeping the other parameters."""
    query = params.copy()
    query.pop("after", None)
    next_url = None
    if next_cursor:
        query["after"] = next_cursor
        next_url = f"?{query.urlencode()}"
        query.pop("after")
    return {"next_url": next_url, "first_url": f"?{query.urlencode()}" if params.get("after") else None}


@portal_view()
@require_GET
def general_tab(request, integration_id):
    integration = tenant_integration(request, integration_id)
    is_admin = request.membership.role == Membership.Role.ADMIN
    return render(request, "portal/general.html", base_context(request, **general_context(integration, is_admin=is_admin)))


def general_context(integration, *, is_admin):
    """What the General tab shows of the integration, to a tenant admin or a viewer (and to staff viewing it as one)."""
    now = timezone.now()
    sessions = selectors.recent_sessions(integration)
    headline, meaning = selectors.customer_words(integration)
    return dict(
        integration=integration,
        headline=headline,
        meaning=meaning,
        reason=integration.status_reason,
        what_next=selectors.what_next(integration, now),
        last_session=integration.last_session,
        open_session=next((s for s in sessions if s.is_open), None),
        history=history_svg(sessions),
        tab="general",
        refusal=_sync_refusal_text(integration),
        can_test_connection=is_admin and not connection_test.refusal(integration),
        advice=advice_for(integration, CUSTOMER),
        catalog_advice_superseded=supersedes_catalog(integration),
        support_contact={"email": settings.SUPPORT_EMAIL, "url": settings.SUPPORT_URL},
        support_requests=support_selectors.open_requests_of_integration(integration),
        schedule=schedule_controls.schedule_of(integration),
    )


def _sync_refusal_text(integration):
    from integrations.sync.starting import refusal_for

    refusal = refusal_for(integration, SyncSession.Trigger.CUSTOMER)
    return refusal.message if refusal else ""


@portal_view()
@require_GET
def progress(request, integration_id):
    """The small JSON the General tab polls while a sync runs."""
    integration = tenant_integration(request, integration_id)
    session = integration.sessions.order_by("-queued_at").first()
    headline, _ = selectors.customer_words(integration.status)
    return JsonResponse(
        {
            "status": integration.status,
            "status_words": headline,
            "syncing": bool(session and session.is_open),
            "session": None
            if session is None
            else {
                "id": session.pk,
                "state": session.state,
                "items_seen": session.items_seen,
                "items_total": session.items_total,
                "error_code": session.error_code_id,
            },
        }
    )


@portal_view(role=Membership.Role.ADMIN)
@require_POST
def sync_now(request, integration_id):
    integration = tenant_integration(request, integration_id)
    kind = request.POST.get("kind", SyncSession.Kind.QUICK)
    if kind not in SyncSession.Kind.values:
        messages.error(request, "Unknown kind of sync; choose quick or full.")
        return redirect("portal:general", integration.pk)
    wait = limits.hit("sync_triggers", integration.pk)
    if wait is not None:
        return limits.limited_page(request, wait, f"Too many syncs were asked for {integration.name} in a short time.")
    try:
        session = start_sync(integration, kind=kind, trigger=SyncSession.Trigger.CUSTOMER, requested_by=request.user)
    except SyncRefused as exc:
        messages.error(request, f"The sync was not started: {exc.message}{_likely_wait(exc.session)}")
        return redirect("portal:general", integration.pk)
    session.refresh_from_db(fields=["state"])
    likely = _likely_wait(session)
    messages.success(request, f"{session.get_kind_display()} sync {'requested' if likely else 'started'}.{likely}")
    return redirect("portal:general", integration.pk)


def _likely_wait(session):
    """While the workers are busy, " Queued behind N other syncs: likely to start within M minutes."; else ""."""
    estimate = estimate_wait(session) if session is not None else None
    return f" {estimate.sentence()}" if estimate is not None and estimate.busy else ""


@portal_view()
@require_POST
def test_connection(request, integration_id):
    """Does the vendor answer and accept the credentials? Syncs nothing; tenant admins only."""
    integration = tenant_integration(request, integration_id)
    if request.membership.role != Membership.Role.ADMIN:
        context = base_context(
            request,
            integration=integration,
            title="Only tenant admins can test the connection",
            message=f"Ask an admin of {request.tenant.name} to test the connection of {integration.name}. "
            "Nothing was checked.",
        )
        return render(request, "portal/forbidden.html", context, status=403)
    try:
        result = connection_test.test_connection(integration, actor=request.user)
    except connection_test.NotTestable as exc:
        messages.error(request, f"The connection was not tested: {exc.message}")
        return redirect("portal:general", integration.pk)
    except limits.Limited as exc:
        return limits.limited_page(
            request, exc, f"The connection of {integration.name} was tested too often in a short time."
        )
    if result.ok:
        messages.success(request, result.text)
    else:
        messages.error(request, f"Connection test failed: {result.text}")
    return redirect("portal:general", integration.pk)


# pytest collects functions named test_* from modules a test imports them into.
test_connection.__test__ = False


@sensitive_post_parameters()
@portal_view(role=Membership.Role.ADMIN)
@require_http_methods(["GET", "POST"])
def reauthenticate(request, integration_id):
    integration = tenant_integration(request, integration_id)
    connector_class = get_connector_class(integration.connector)
    form = credentials_form(connector_class, integration.settings, request.POST if request.method == "POST" else None)
    context = base_context(request, integration=integration, connector=connector_class, form=form, tab="general")
    if request.method == "GET":
        return render(request, "portal/reauth.html", context)
    if not form.is_valid():
        return render(request, "portal/reauth.html", context, status=400)
    credentials = {k: v for k, v in form.cleaned_data.items() if v}
    try:
        credentials = reauth.check_with_vendor(integration, credentials)
    except reauth.CredentialsRejected as exc:
        context.update(form=credentials_form(connector_class, integration.settings), rejected=exc.message)
        return render(request, "portal/reauth.html", context, status=400)
    session = reauth.save_credentials(integration, credentials, actor=request.user, note="New credentials saved in the portal.")
    if session is not None and session.trigger == SyncSession.Trigger.REAUTH:
        messages.success(request, "The vendor accepted the new credentials. A full sync has started.")
    elif session is not None:
        messages.success(
            request,
            "The vendor accepted the new credentials. A sync that started earlier is still running; "
            "the next sync uses the new credentials.",
        )
    else:
        integration.refresh_from_db()
        messages.success(
            request, f"The vendor accepted the new credentials. No sync could start now: {_sync_refusal_text(integration) or 'see the status above'}."
        )
    for shared in credential_checks.shared_mailboxes(credentials):  # a warning; the credentials are saved
        messages.warning(request, shared.text())
    return redirect("portal:general", integration.pk)


class MappingForm(forms.Form):
    new_vendor_accounts = forms.ChoiceField(
        choices=Tenant.NewVendorAccounts.choices,
        required=False,
        label="When a sync finds a new vendor account",
        help_text="For every integration of your organisation. Integrations mapped by hand always ask.",
    )

    def __init__(self, *args, mappings, new_accounts=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.mappings = mappings
        self.new_accounts = new_accounts or {}
        for m in mappings:
            self.fields[f"target_{m.pk}"] = forms.CharField(
                required=False, max_length=200, initial=m.tenant_account, label=f"{m.vendor_account_id} {m.vendor_account_name}"
            )
            self.fields[f"ignore_{m.pk}"] = forms.BooleanField(required=False, initial=m.ignored, label="Ignore")

    def clean(self):
        data = super().clean()
        for m in self.mappings:
            target, ignored = data.get(f"target_{m.pk}", "").strip(), data.get(f"ignore_{m.pk}")
            if target and ignored:
                self.add_error(f"target_{m.pk}", "Either map the account or ignore it, not both.")
        return data

    def rows(self):
        return [
            (m, self[f"target_{m.pk}"], self[f"ignore_{m.pk}"], self.new_accounts.get(m.vendor_account_id))
            for m in self.mappings
        ]


@portal_view()
@require_http_methods(["GET", "POST"])
def mapping(request, integration_id):
    integration = tenant_integration(request, integration_id)
    mappings = list(AccountMapping.objects.filter(integration=integration).order_by("vendor_account_id"))
    if request.method == "POST" and request.membership.role != Membership.Role.ADMIN:
        raise PermissionDenied("Only tenant admins can map accounts.")
    form = MappingForm(
        request.POST if request.method == "POST" else None,
        mappings=mappings,
        new_accounts=new_account_issues(integration),
        initial={"new_vendor_accounts": request.tenant.new_vendor_accounts},
    )
    context = base_context(request, integration=integration, form=form, tab="mapping")
    if request.method == "GET":
        return render(request, "portal/mapping.html", context)
    if not form.is_valid():
        return render(request, "portal/mapping.html", context, status=400)
    choices = {
        m.pk: (form.cleaned_data.get(f"target_{m.pk}", "").strip(), bool(form.cleaned_data.get(f"ignore_{m.pk}")))
        for m in mappings
    }
    result = save_mapping(integration, choices, actor=request.user)
    choice = form.cleaned_data["new_vendor_accounts"]
    if choice and set_new_account_choice(request.tenant, choice, actor=request.user):
        result += f" New vendor accounts: {request.tenant.get_new_vendor_accounts_display().lower()}."
    messages.success(request, result)
    return redirect("portal:general", integration.pk)


@portal_view()
@require_GET
def issues_tab(request, integration_id):
    integration = tenant_integration(request, integration_id)
    context, status = issues_context(integration, request.GET)
    return render(request, "portal/issues.html", base_context(request, **context), status=status)


def issues_context(integration, params):
    """(context, HTTP status) of the Issues tab: a page of issues, or 400 naming the wrong filter or cursor."""
    try:
        qs = selectors.filtered_issues(integration, params)
        rows, next_cursor = pagination.page_by_last_seen(qs, params.get("after", ""), ISSUES_PER_PAGE)
    except (selectors.BadFilter, pagination.BadCursor) as exc:
        return dict(integration=integration, tab="issues", error=str(exc), **_filter_choices(params)), 400
    open_requests = support_selectors.latest_request_per_issue(integration, [r.pk for r in rows])
    context = dict(
        integration=integration,
        tab="issues",
        issues=[(issue, open_requests.get(issue.pk)) for issue in rows],
        **_pager(params, next_cursor),
        **_filter_choices(params),
    )
    return context, 200


def _filter_choices(params):
    return {
        "codes": list(ErrorCode.objects.values_list("code", "title")),
        "categories": ErrorCode.Category.choices,
        "severities": Severity.choices,
        "states": [*SyncIssue.State.choices, ("all", "All")],
        "current": {name: params.get(name, "open" if name == "state" else "") for name in selectors.ISSUE_FILTERS},
    }


@portal_view()
@require_GET
def record_detail(request, integration_id, record_id):
    integration = tenant_integration(request, integration_id)
    record = get_object_or_404(SyncedRecord, pk=record_id, integration=integration)
    return render(request, "portal/record.html", base_context(request, integration=integration, record=record, tab="issues"))


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the key is for, e.g. 'monitoring script'.")


@portal_view(role=Membership.Role.ADMIN)
@require_http_methods(["GET", "POST"])
def api_keys(request):
    form = ApiKeyForm(request.POST if request.method == "POST" and "name" in request.POST else None)
    new_key = None
    status = 200
    if request.method == "POST":
        if "revoke" in request.POST:
            key_id = request.POST.get("revoke", "")
            if not (key_id.isascii() and key_id.isdigit() and len(key_id) <= 18):
                raise Http404("No such key.")
            key = get_object_or_404(ApiKey, pk=int(key_id), tenant=request.tenant)
            if revoke_api_key(key, actor=request.user):
                messages.success(request, f"Key {key} revoked.")
            else:
                messages.error(request, f"Key {key} was already revoked.")
            return redirect("portal:api_keys")
        if form.is_valid():
            _, new_key = create_api_key(request.tenant, form.cleaned_data["name"], created_by=request.user)
            form = ApiKeyForm()
        else:
            status = 400
    keys = list(request.tenant.api_keys.order_by("-created_at"))
    return render(request, "portal/api_keys.html", base_context(request, form=form, keys=keys, new_key=new_key), status=status)


@portal_view(role=Membership.Role.ADMIN)
@require_POST
def reactivate(request, integration_id):
    integration = tenant_integration(request, integration_id)
    if not integration.deactivated_for_inactivity:
        messages.error(request, "This integration was switched off by our team; contact support to turn it back on.")
        return redirect("portal:general", integration.pk)
    try:
        services.perform_action(integration.pk, machine.Action.REACTIVATE, actor=request.user, note="Reactivated in the portal.")
    except machine.IllegalTransition as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Reactivated.")
    return redirect("portal:general", integration.pk)


class WebhookForm(forms.Form):
    url = forms.URLField(max_length=500, assume_scheme="https", help_text="Where we POST the signed JSON events.")
    events = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple, help_text="None ticked: all events.")

    def __init__(self, *args, **kwargs):
        from alerts.models import WebhookEndpoint

        super().__init__(*args, **kwargs)
        self.fields["events"].choices = WebhookEndpoint.Event.choices

    def clean_url(self):
        url = self.cleaned_data["url"]
        problem = outbound.url_problem(url)
        if problem:
            raise forms.ValidationError(problem)
        return url


@portal_view(role=Membership.Role.ADMIN)
@require_http_methods(["GET", "POST"])
def webhooks(request):
    from alerts import webhooks as hooks
    from alerts.models import WebhookDelivery, WebhookEndpoint

    form = WebhookForm(request.POST if request.method == "POST" and "url" in request.POST else None)
    new_secret, status = None, 200
    if request.method == "POST":
        if "delete" in request.POST:
            endpoint_id = request.POST.get("delete", "")
            if not (endpoint_id.isascii() and endpoint_id.isdigit() and len(endpoint_id) <= 18):
                raise Http404("No such endpoint.")
            hooks.delete_endpoint(get_object_or_404(WebhookEndpoint, pk=int(endpoint_id), tenant=request.tenant))
            messages.success(request, "Endpoint removed.")
            return redirect("portal:webhooks")
        if form.is_valid():
            wait = limits.hit("webhook_endpoints", request.tenant.pk)
            if wait is not None:
                return limits.limited_page(request, wait, "Too many webhook endpoints were created in a short time.")
            _, new_secret = hooks.create_endpoint(request.tenant, form.cleaned_data["url"], form.cleaned_data["events"])
            form = WebhookForm()
        else:
            status = 400
    endpoints = list(request.tenant.webhooks.order_by("-created_at"))
    deliveries = list(
        WebhookDelivery.objects.filter(endpoint__tenant=request.tenant).select_related("endpoint").order_by("-created_at")[:20]
    )
    return render(
        request,
        "portal/webhooks.html",
        base_context(request, form=form, endpoints=endpoints, deliveries=deliveries, new_secret=new_secret),
        status=status,
    )


ACTIVITY_PER_PAGE = 50


@portal_view(role=Membership.Role.ADMIN)
@require_GET
def activity(request):
    """The tenant's own audit records, for its admins. Staff appear as "support", without their address."""
    from audit.models import AuditRecord

    queryset = AuditRecord.objects.filter(tenant=request.tenant).annotate(actor_is_staff=F("actor__is_staff"))
    try:
        records, next_cursor = pagination.page_newest_first(
            queryset, request.GET.get("after", ""), ACTIVITY_PER_PAGE, field="created_at"
        )
    except pagination.BadCursor as exc:
        return render(request, "portal/activity.html", base_context(request, records=[], error=str(exc)), status=400)
    return render(request, "portal/activity.html", base_context(request, records=records, next_cursor=next_cursor))
