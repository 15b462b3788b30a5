"""Tenant isolation in the portal: another tenant's ids are not found (404) and change nothing.

The routes come from the URL resolver, not from a list kept by hand: every
route a browser reaches outside the console (/admin/) and the API (its own
file, tests/api/test_isolation.py) is either in PORTAL_ROUTES, with requests
aimed at the other tenant's objects, or in NOT_TENANT_SCOPED with the reason.
A new route fails `test_every_route_is_classified` until someone says which.

Routes without an id in the URL count too: the webhooks and API keys pages
take the id of what they delete or revoke in the form.

Alice, Acme's admin, sends each request with Globex's ids; the answer is 404,
nothing of either tenant changes, and nothing of Globex is on the page. The
same request with Acme's own ids is answered, so the 404 is about the tenant.
Who is not a tenant user (anonymous, staff, a user without membership) never
reaches a tenant's page.
"""

import pytest
from django.urls import reverse

from integrations import reauth
from integrations.models import Integration, Membership
from tests.factories import MembershipFactory, UserFactory
from tests.portal.conftest import (
    IGNORED,
    NOT_FOUND,
    OWN_ONLY,
    Probe,
    Route,
    assert_probes_cover,
    owners_in_context,
    probe_params,
    send,
    snapshot,
    unserved_params,
    url_routes,
)

THEIR_INTEGRATION = {"integration_id": "them.integration"}


def map_their_accounts(us, them):
    return {f"target_{m.pk}": "Acme HQ" for m in them.mappings}


PORTAL_ROUTES = {
    "portal:list": Route(
        serves=("GET",),
        probes=(Probe("GET", expect=OWN_ONLY, shows=("integration.name", "setup.name", "idle.name")),),
    ),
    "portal:api_keys": Route(
        serves=("GET", "POST"),
        probes=(
            Probe("GET", expect=OWN_ONLY, shows=("key.name",)),
            Probe("POST", data={"revoke": "them.key"}, label="revoke"),
        ),
    ),
    "portal:webhooks": Route(
        serves=("GET", "POST"),
        probes=(
            Probe(
                "GET",
                expect=OWN_ONLY,
                shows=("webhook.url", "delivery_shown"),
                label="endpoints and deliveries",
            ),
            Probe("POST", data={"delete": "them.webhook"}, label="delete"),
        ),
    ),
    "portal:activity": Route(serves=("GET",), probes=(Probe("GET", expect=OWN_ONLY, shows=("webhook.url", "key.name")),)),
    "portal:general": Route(serves=("GET",), probes=(Probe("GET", url=THEIR_INTEGRATION),)),
    "portal:progress": Route(serves=("GET",), probes=(Probe("GET", url=THEIR_INTEGRATION),)),
    "portal:sync": Route(
        serves=("POST",),
        probes=(
            Probe("POST", url=THEIR_INTEGRATION, data={"kind": "quick"}, label="quick"),
            Probe("POST", url=THEIR_INTEGRATION, data={"kind": "full"}, label="full"),
        ),
    ),
    "portal:test_connection": Route(serves=("POST",), probes=(Probe("POST", url=THEIR_INTEGRATION),)),
    "portal:reauthenticate": Route(
        serves=("GET", "POST"),
        probes=(
            Probe("GET", url=THEIR_INTEGRATION),
            Probe("POST", url=THEIR_INTEGRATION, data={"api_key": "acme-supplied-key"}),
        ),
    ),
    "portal:reactivate": Route(
        serves=("POST",), probes=(Probe("POST", url={"integration_id": "them.idle"}),)
    ),
    "portal:schedule": Route(
        serves=("POST",),
        probes=(
            Probe("POST", url=THEIR_INTEGRATION, data={"action": "pause"}, label="pause"),
            Probe("POST", url=THEIR_INTEGRATION, data={"action": "interval", "minutes": "30"}, label="interval"),
        ),
    ),
    "portal:mapping": Route(
        serves=("GET", "POST"),
        probes=(
            Probe("GET", url={"integration_id": "them.setup"}),
            Probe("POST", url={"integration_id": "them.setup"}, data=map_their_accounts),
            Probe(
                "POST",
                url={"integration_id": "us.setup"},
                data=map_their_accounts,
                expect=IGNORED,
                label="their mappings in our form",
            ),
        ),
    ),
    "portal:issues": Route(serves=("GET",), probes=(Probe("GET", url=THEIR_INTEGRATION),)),
    "portal:issues_csv": Route(serves=("GET",), probes=(Probe("GET", url=THEIR_INTEGRATION),)),
    "portal:help": Route(
        serves=("GET", "POST"),
        probes=(
            Probe("GET", url={"integration_id": "them.integration", "issue_id": "them.issue"}),
            Probe(
                "POST",
                url={"integration_id": "them.integration", "issue_id": "them.issue"},
                data={"message": "Fix it"},
            ),
            Probe(
                "GET",
                url={"integration_id": "us.integration", "issue_id": "them.issue"},
                label="our integration",
            ),
            Probe(
                "POST",
                url={"integration_id": "us.integration", "issue_id": "them.issue"},
                data={"message": "Fix it"},
                label="our integration",
            ),
        ),
    ),
    "portal:contact_support": Route(
        serves=("GET", "POST"),
        probes=(
            Probe("GET", url=THEIR_INTEGRATION),
            Probe(
                "POST",
                url=THEIR_INTEGRATION,
                data={"began": "yesterday", "reauthenticated": "no", "forced_sync": "no", "message": "Fix it"},
            ),
        ),
    ),
    "portal:support_request": Route(
        serves=("GET", "POST"),
        probes=(
            Probe("GET", url={"integration_id": "them.integration", "request_id": "them.help_request"}),
            Probe(
                "POST",
                url={"integration_id": "them.integration", "request_id": "them.help_request"},
                data={"body": "Any news?", "back": "general"},
            ),
            Probe(
                "GET",
                url={"integration_id": "us.integration", "request_id": "them.help_request"},
                label="our integration",
            ),
            Probe(
                "POST",
                url={"integration_id": "us.integration", "request_id": "them.help_request"},
                data={"body": "Any news?", "back": "general"},
                label="our integration",
            ),
        ),
    ),
    "portal:record": Route(
        serves=("GET",),
        probes=(
            Probe("GET", url={"integration_id": "them.integration", "record_id": "them.record"}),
            Probe(
                "GET",
                url={"integration_id": "us.integration", "record_id": "them.record"},
                label="our integration",
            ),
        ),
    ),
}

DJANGO_AUTH = "Django's sign-in and password pages: no tenant-owned object"
NOT_TENANT_SCOPED = {
    "/": "redirects to the console",
    "reauth": (
        "the public re-authentication page: no login, the one-time token (stored as SHA-256) is the "
        "credential and names one integration, so there is no logged-in tenant to isolate; unknown, "
        "tampered, used, expired and replaced tokens are tests/admin/test_reauth.py's"
    ),
    "portal:login": DJANGO_AUTH,
    "portal:logout": DJANGO_AUTH,
    "portal:password_reset": DJANGO_AUTH,
    "portal:password_reset_done": DJANGO_AUTH,
    "portal:password_reset_confirm": (
        "Django's password reset: the user id and token are checked by its token generator; no tenant-owned object"
    ),
    "portal:password_reset_complete": DJANGO_AUTH,
    "outbox": (
        "the console's development outbox: staff only (admin_view; a tenant user is sent to the console's "
        "login), and 404 unless emails go to the local mailbox (tests/test_outbox.py)"
    ),
    "outbox_message": "one message of the development outbox: staff only, as `outbox` (tests/test_outbox.py)",
    "view_as_customer": (
        "the console's read-only view of any tenant's General tab: staff who may view integrations only "
        "(admin_view; a tenant user is sent to the console's login), tests/portal/test_views_as_customer.py"
    ),
    "view_as_customer_issues": "the same for the Issues tab (tests/portal/test_views_as_customer.py)",
    "alerts:unsubscribe": (
        "the one-click unsubscribe of an alert email: no login, the signed token names one membership and "
        "turns off only that member's alert emails; tampered and reassigned tokens are tests/alerts/test_unsubscribe.py's"
    ),
    "healthz": "the process answers: no login, no data (tests/test_health.py)",
    "readyz": "ok/failing per check for load balancers: no login, no tenant data (tests/test_health.py)",
    "metrics": (
        "Prometheus metrics: a bearer token (METRICS_TOKEN), no session; counts across tenants, never a "
        "tenant's names or ids (tests/test_metrics.py)"
    ),
}


def routes_here():
    """The routes this file answers for: all but the console's and the API's."""
    return {r.key: r for r in url_routes() if r.namespace.split(":")[0] not in ("admin", "api")}


def test_every_route_with_an_id_has_a_cross_tenant_case():
    with_ids = {key for key, route in routes_here().items() if route.arguments}
    assert {"portal:general", "portal:help", "portal:record", "reauth"} <= with_ids  # the walk reaches them
    missing = with_ids - PORTAL_ROUTES.keys() - NOT_TENANT_SCOPED.keys()
    assert not missing, (
        f"Routes taking an id without a cross-tenant case: {sorted(missing)}. Add them to PORTAL_ROUTES "
        "(requests with the other tenant's ids) or, if they are genuinely not tenant-scoped, to "
        "NOT_TENANT_SCOPED with the reason."
    )


def test_every_route_is_classified():
    """Routes without an id in the URL may take one in the body (the webhooks page's `delete`)."""
    found = routes_here().keys()
    unclassified = found - PORTAL_ROUTES.keys() - NOT_TENANT_SCOPED.keys()
    assert not unclassified, (
        f"Unclassified routes: {sorted(unclassified)}. Add them to PORTAL_ROUTES or to NOT_TENANT_SCOPED with the reason."
    )
    assert not PORTAL_ROUTES.keys() & NOT_TENANT_SCOPED.keys()
    assert (PORTAL_ROUTES.keys() | NOT_TENANT_SCOPED.keys()) <= found, "the table names a route that is gone"
    assert all(reason.strip() for reason in NOT_TENANT_SCOPED.values())


def test_every_route_is_probed_with_every_method_it_serves():
    assert_probes_cover(PORTAL_ROUTES, routes_here())


@pytest.fixture(autouse=True)
def vendor_accepts_any_credentials(monkeypatch):
    """The vendor is not under test; accepting, a missing tenant filter would save the credentials."""
    monkeypatch.setattr(reauth, "check_with_vendor", lambda integration, credentials: credentials)


def assert_nothing_of_theirs(response, them):
    content = response.content.decode()
    for word in (them.tenant.name, them.tenant.slug, them.delivery_shown):
        assert word not in content, word
    assert them.tenant.pk not in owners_in_context(response)


@pytest.mark.django_db
@pytest.mark.parametrize(("key", "probe"), probe_params(PORTAL_ROUTES))
def test_another_tenants_ids_are_not_found_and_change_nothing(two_tenants, log_in, key, probe):
    us, them = two_tenants.us, two_tenants.them
    client = log_in(us.admin)
    before, theirs_before = snapshot(us.tenant, them.tenant), snapshot(them.tenant)
    url = reverse(key, kwargs=probe.kwargs(us, them))

    response = send(client, probe.method, url, probe.body(us, them))

    if probe.expect == NOT_FOUND:
        assert response.status_code == 404, (url, response.status_code)
        assert snapshot(us.tenant, them.tenant) == before
    elif probe.expect == OWN_ONLY:
        assert response.status_code == 200, (url, response.status_code)
        content = response.content.decode()
        assert all(text in content for text in probe.shown(us)), probe.shown(us)
        leaked = [text for text in probe.shown(them) if text in content]
        assert not leaked, f"the other tenant's {leaked} on our page"
        assert owners_in_context(response) == {us.tenant.pk}, "the page was given another tenant's objects"
        assert snapshot(us.tenant, them.tenant) == before
    else:
        assert response.status_code < 500, (url, response.status_code)
    assert snapshot(them.tenant) == theirs_before
    assert_nothing_of_theirs(response, them)
    assert Integration.objects.get(pk=them.integration.pk).get_credentials() == {
        "api_key": f"{them.tenant.slug}-key"
    }


@pytest.mark.django_db
@pytest.mark.parametrize(("key", "probe"), probe_params(PORTAL_ROUTES, aimed_only=True))
def test_the_same_request_with_our_own_ids_is_answered(two_tenants, log_in, key, probe):
    """So each 404 above is about the tenant, not a URL or a body the view would refuse anyway."""
    us, them = two_tenants.us, two_tenants.them
    ours = (probe.kwargs(us, us), probe.body(us, us))
    assert ours != (probe.kwargs(us, them), probe.body(us, them)), (
        "the probe names nothing of the other tenant"
    )
    theirs_before = snapshot(them.tenant)

    response = send(log_in(us.admin), probe.method, reverse(key, kwargs=ours[0]), ours[1])

    assert 200 <= response.status_code < 400, response.status_code
    assert snapshot(them.tenant) == theirs_before


@pytest.mark.django_db
@pytest.mark.parametrize(("key", "method"), unserved_params(PORTAL_ROUTES))
def test_methods_a_route_does_not_serve_are_refused(two_tenants, log_in, key, method):
    """A view that starts answering one more method fails here until that method is probed above."""
    us, them = two_tenants.us, two_tenants.them
    probe = next(p for p in PORTAL_ROUTES[key].probes if p.expect != IGNORED)
    before = snapshot(us.tenant, them.tenant)

    response = send(log_in(us.admin), method, reverse(key, kwargs=probe.kwargs(us, them)))

    assert response.status_code == 405, response.status_code
    assert snapshot(us.tenant, them.tenant) == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("general", [987654]),
        ("progress", [987654]),
        ("issues", [987654]),
        ("general", [99999999999999999999999]),
        ("issues", [2**63]),
    ],
    ids=["general", "progress", "issues", "huge general", "issues past 64 bits"],
)
def test_unknown_ids_are_not_found(two_tenants, log_in, name, args):
    response = log_in(two_tenants.us.admin).get(reverse(f"portal:{name}", args=args))
    assert response.status_code == 404


def own_requests():
    """Each portal route and method the table knows, once, aimed at our own objects."""
    firsts = {}
    for key, route in PORTAL_ROUTES.items():
        for probe in route.probes:
            firsts.setdefault((key, probe.method), probe)
    return [pytest.param(key, probe, id=f"{method} {key}") for (key, method), probe in firsts.items()]


def own_url(us, key, probe):
    return reverse(key, kwargs=probe.kwargs(us, us))


@pytest.mark.django_db
@pytest.mark.parametrize(("key", "probe"), own_requests())
def test_anonymous_visitors_are_sent_to_the_login_page(two_tenants, client, key, probe):
    us = two_tenants.us
    url = own_url(us, key, probe)
    before = snapshot(us.tenant)
    response = send(client, probe.method, url, probe.body(us, us))
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('portal:login')}?next={url}"
    assert snapshot(us.tenant) == before


@pytest.mark.django_db
@pytest.mark.parametrize("with_membership", [False, True], ids=["staff", "staff with a membership"])
@pytest.mark.parametrize(("key", "probe"), own_requests())
def test_staff_are_not_portal_users(two_tenants, log_in, with_membership, key, probe):
    us = two_tenants.us
    staff = UserFactory(username="sam", is_staff=True)
    if with_membership:
        MembershipFactory(user=staff, tenant=us.tenant, role=Membership.Role.ADMIN)
    before = snapshot(us.tenant)
    response = send(log_in(staff), probe.method, own_url(us, key, probe), probe.body(us, us))
    assert response.status_code == 403
    assert b"No portal access" in response.content
    assert b"Acme billing" not in response.content
    assert snapshot(us.tenant) == before


@pytest.mark.django_db
@pytest.mark.parametrize(("key", "probe"), own_requests())
def test_users_without_a_membership_have_no_portal_access(two_tenants, log_in, key, probe):
    us = two_tenants.us
    stranger = UserFactory(username="mallory")
    before = snapshot(us.tenant)
    response = send(log_in(stranger), probe.method, own_url(us, key, probe), probe.body(us, us))
    assert response.status_code == 403
    assert b"No portal access" in response.content
    assert snapshot(us.tenant) == before
