"""Tenant isolation in the JSON API: another tenant's ids are a JSON 404 and change nothing.

Like tests/portal/test_isolation.py, the routes come from the URL resolver:
every route under the `api` namespace is either in API_ROUTES, with requests
aimed at the other tenant's objects, or in NOT_TENANT_SCOPED with the reason.

A program holding Acme's key sends each request with Globex's ids; the
answer is `404 not_found` in JSON, saying nothing of Globex, and nothing of
Globex changes. The same request with Acme's ids is answered.
"""

import pytest
from django.urls import reverse

from tests.portal.conftest import (
    NOT_FOUND,
    OWN_ONLY,
    Probe,
    Route,
    assert_probes_cover,
    probe_params,
    send,
    snapshot,
    unserved_params,
    url_routes,
)

JSON = "application/json"
THEIR_INTEGRATION = {"integration_id": "them.integration"}

API_ROUTES = {
    "api:integrations": Route(
        serves=("GET",),
        probes=(Probe("GET", expect=OWN_ONLY, shows=("integration.name", "setup.name", "idle.name")),),
    ),
    "api:integration": Route(
        serves=("GET",),
        probes=(
            Probe("GET", url=THEIR_INTEGRATION),
            Probe("GET", url={"integration_id": "them.setup"}, label="in setup"),
            Probe("GET", url={"integration_id": "them.idle"}, label="switched off"),
        ),
    ),
    "api:issues": Route(serves=("GET",), probes=(Probe("GET", url=THEIR_INTEGRATION),)),
    "api:sync": Route(
        serves=("POST",),
        probes=(
            Probe("POST", url=THEIR_INTEGRATION, label="no body"),
            Probe("POST", url=THEIR_INTEGRATION, data={"kind": "full"}, label="full"),
            Probe("POST", url={"integration_id": "them.idle"}, label="switched off"),
        ),
    ),
    "api:test_connection": Route(serves=("POST",), probes=(Probe("POST", url=THEIR_INTEGRATION),)),
}

NOT_TENANT_SCOPED = {
    "api:openapi": "the API's description, the same for every caller",
    "/api/v1/^.*$": "any other path: a JSON 404 for every caller, whatever it names",
}


def routes_here():
    return {r.key: r for r in url_routes() if r.namespace.split(":")[0] == "api"}


def test_every_route_with_an_id_has_a_cross_tenant_case():
    with_ids = {key for key, route in routes_here().items() if route.arguments}
    assert {"api:integration", "api:issues", "api:sync"} <= with_ids  # the walk reaches them
    missing = with_ids - API_ROUTES.keys() - NOT_TENANT_SCOPED.keys()
    assert not missing, (
        f"API routes taking an id without a cross-tenant case: {sorted(missing)}. Add them to API_ROUTES "
        "(requests with the other tenant's ids) or, if they are genuinely not tenant-scoped, to "
        "NOT_TENANT_SCOPED with the reason."
    )


def test_every_route_is_classified():
    found = routes_here().keys()
    unclassified = found - API_ROUTES.keys() - NOT_TENANT_SCOPED.keys()
    assert not unclassified, (
        f"Unclassified API routes: {sorted(unclassified)}. Add them to API_ROUTES or to NOT_TENANT_SCOPED with the reason."
    )
    assert not API_ROUTES.keys() & NOT_TENANT_SCOPED.keys()
    assert (API_ROUTES.keys() | NOT_TENANT_SCOPED.keys()) <= found, "the table names a route that is gone"
    assert all(reason.strip() for reason in NOT_TENANT_SCOPED.values())


def test_every_route_is_probed_with_every_method_it_serves():
    assert_probes_cover(API_ROUTES, routes_here())


def assert_error(response, status, code):
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"] == JSON
    assert response.json()["error"]["code"] == code, response.json()


@pytest.mark.django_db
@pytest.mark.parametrize(("key", "probe"), probe_params(API_ROUTES))
def test_another_tenants_ids_are_not_found_and_change_nothing(two_tenants, api_client, key, probe):
    us, them = two_tenants.us, two_tenants.them
    api = api_client(us.tenant)
    # Our tenant's rows change with any request (the key's last use, idle integrations switched back on).
    theirs_before = snapshot(them.tenant)
    url = reverse(key, kwargs=probe.kwargs(us, them))

    response = send(api, probe.method, url, probe.body(us, them), as_json=True)

    if probe.expect == NOT_FOUND:
        assert_error(response, 404, "not_found")
    else:
        assert response.status_code == 200, (response.status_code, response.content[:300])
        assert response["Content-Type"] == JSON
        assert {i["id"] for i in response.json()["integrations"]} == {
            us.integration.pk,
            us.setup.pk,
            us.idle.pk,
        }
    content = response.content.decode()
    assert all(text in content for text in probe.shown(us)), probe.shown(us)
    for word in (them.tenant.name, them.tenant.slug):
        assert word not in content, word
    assert snapshot(them.tenant) == theirs_before


@pytest.mark.django_db
@pytest.mark.parametrize(("key", "probe"), probe_params(API_ROUTES, aimed_only=True))
def test_the_same_request_with_our_own_ids_is_answered(two_tenants, api_client, key, probe):
    """So each 404 above is about the tenant, not a URL or a body the view would refuse anyway."""
    us, them = two_tenants.us, two_tenants.them
    ours = (probe.kwargs(us, us), probe.body(us, us))
    assert ours != (probe.kwargs(us, them), probe.body(us, them)), (
        "the probe names nothing of the other tenant"
    )
    theirs_before = snapshot(them.tenant)

    response = send(api_client(us.tenant), probe.method, reverse(key, kwargs=ours[0]), ours[1], as_json=True)

    assert 200 <= response.status_code < 300, (response.status_code, response.content[:300])
    assert snapshot(them.tenant) == theirs_before


@pytest.mark.django_db
@pytest.mark.parametrize(("key", "method"), unserved_params(API_ROUTES))
def test_methods_a_route_does_not_serve_are_refused(two_tenants, api_client, key, method):
    """A view that starts answering one more method fails here until that method is probed above."""
    us, them = two_tenants.us, two_tenants.them
    probe = API_ROUTES[key].probes[0]
    theirs_before = snapshot(them.tenant)

    response = send(api_client(us.tenant), method, reverse(key, kwargs=probe.kwargs(us, them)))

    assert response.status_code == 405, response.status_code
    if method != "HEAD":
        assert_error(response, 405, "method_not_allowed")
    assert snapshot(them.tenant) == theirs_before
