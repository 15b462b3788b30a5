"""The console's "View as customer": an integration's General and Issues tabs as its customer sees them, read-only.

Routed under the console (/admin/integrations/integration/<id>/as-customer/,
syncconsole/urls.py) through `admin_view` (signed in, staff), for staff who
may view integrations. Nobody logs in as the customer: the portal's own
context builders (`views.general_context`, `views.issues_context`,
`views.tenant_context`) and templates render the page for the integration's
tenant as one of its admins sees it (`?as=viewer`: as a viewer), then
`read_only` takes its power away: no form posts, no control works, no
script runs, and links lead only to the other read-only tab. GET only. An
integration the customer cannot see (deleted) is not found here either.
Each view is recorded on the timeline and in the audit trail
(`integrations.viewed_as_customer`).
"""

from django.http import HttpResponse, HttpResponseBadRequest, QueryDict
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET

from integrations import selectors, viewed_as_customer
from integrations.models import Tenant
from portal.read_only import read_only
from portal.views import general_context, issues_context, tenant_context
from syncconsole.admin_errors import MissingPermission

# Django's own rule for seeing a model in the admin: view or change.
VIEW_PERMISSIONS = ("integrations.view_integration", "integrations.change_integration")
TEMPLATES = {"general": "portal/general.html", "issues": "portal/issues.html"}
URL_NAMES = {"general": "view_as_customer", "issues": "view_as_customer_issues"}


@require_GET
def general(request, integration_id):
    return _page(request, integration_id, "general")


@require_GET
def issues(request, integration_id):
    return _page(request, integration_id, "issues")


def _page(request, integration_id, tab):
    if not any(request.user.has_perm(permission) for permission in VIEW_PERMISSIONS):
        raise MissingPermission(
            "integrations.view_integration", "Viewing an integration as its customer sees it"
        )
    role = request.GET.get("as", "admin")
    if role not in viewed_as_customer.ROLES:
        return HttpResponseBadRequest(
            f"Unknown role {role[:20]!r} in ?as=: use admin or viewer.",
            content_type="text/plain; charset=utf-8",
        )
    tenant = get_object_or_404(Tenant, integrations=integration_id)
    integration = get_object_or_404(selectors.integrations_for_tenant(tenant), pk=integration_id)
    if tab == "general":
        context, status = general_context(integration, is_admin=role == "admin"), 200
    else:
        context, status = issues_context(integration, request.GET)
    # `messages`: the staff member's own console messages stay in the console.
    context = tenant_context(tenant, role, **context, messages=())
    page = render_to_string(TEMPLATES[tab], context, request=request)
    banner = render_to_string(
        "portal/_viewing_as_customer.html",
        {
            "integration": integration,
            "tenant": tenant,
            "role": role,
            "role_words": viewed_as_customer.ROLES[role],
            "other_role_url": _url(
                integration.pk, tab, "viewer" if role == "admin" else "admin", request.GET.urlencode()
            ),
            "console_url": reverse("admin:integrations_integration_change", args=[integration.pk]),
        },
    )
    html = read_only(page, link_for=_links(integration.pk, role), banner=banner)
    viewed_as_customer.record_view(integration, actor=request.user, tab=tab, role=role)
    return HttpResponse(html, status=status)


def _url(integration_id, tab, role, query=""):
    params = QueryDict(query, mutable=True)
    params.pop("as", None)
    if role != "admin":
        params["as"] = role
    url = reverse(URL_NAMES[tab], args=[integration_id])
    return f"{url}?{params.urlencode()}" if params else url


def _links(integration_id, role):
    """Where the page's links into the portal go: its two tabs to their read-only pages, nothing else."""
    tabs = {reverse(f"portal:{tab}", args=[integration_id]): tab for tab in TEMPLATES}

    def link_for(path, query):
        tab = tabs.get(path)
        return _url(integration_id, tab, role, query) if tab else None

    return link_for
