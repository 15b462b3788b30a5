"""POST /api/v1/integrations/<id>/test: a tenant's program tests a connection against the live vendor simulator.

A test that ran answers 200 whatever the vendor said (`ok` says it); what
cannot be tested is a 409, another tenant's integration a 404, too many tests
a 429. Nothing is synced; the test is on the timeline and in the audit trail.
"""

import pytest

from audit.models import AuditRecord
from integrations.models import Integration, IntegrationEvent
from issues.models import ErrorCode
from tests.factories import TenantFactory
from tests.portal.conftest import snapshot
from tests.queries import add_integrations, add_issues, measure, report

Status = Integration.Status
JSON = "application/json"
RESULT_KEYS = {"ok", "code", "title", "message", "advice", "checked_at", "duration_ms", "checks"}

pytestmark = pytest.mark.django_db


def url(integration):
    return f"/api/v1/integrations/{integration.pk}/test"


def post(api, integration):
    return api.post(url(integration), data="", content_type=JSON)


@pytest.fixture
def acme(db):
    return TenantFactory(name="Acme", slug="acme")


def unchanged_but_events(before, after):
    """Everything but the timeline and the key's last use (the tenant's and the key's rows) is as it was."""
    ignored = ("events", "tenants", "api_keys")
    return {k: v for k, v in before.items() if k not in ignored} == {
        k: v for k, v in after.items() if k not in ignored
    }


def test_good_credentials_answer_ok(acme, api_client, make_integration, vendor_simulator):
    integration = make_integration("healthy", tenant=acme, name="Acme billing")
    api = api_client(acme)
    before = snapshot(acme)

    response = post(api, integration)

    assert response.status_code == 200, response.content
    assert response["Content-Type"] == JSON
    body = response.json()
    assert set(body) == RESULT_KEYS
    assert (body["ok"], body["code"], body["advice"]) == (True, "", "")
    assert body["checks"] == [
        f"reached {vendor_simulator.base_url}",
        "credentials accepted",
        "2 vendor accounts visible",
    ]
    assert (
        body["message"]
        == f"Reached {vendor_simulator.base_url}, credentials accepted, 2 vendor accounts visible."
    )
    assert body["checked_at"].endswith("+00:00")
    assert isinstance(body["duration_ms"], int) and body["duration_ms"] >= 0
    assert unchanged_but_events(before, snapshot(acme))
    (event,) = IntegrationEvent.objects.filter(
        integration=integration, kind=IntegrationEvent.Kind.CONNECTION_TESTED
    )
    assert event.actor is None
    (record,) = AuditRecord.objects.filter(action=AuditRecord.Action.CUSTOMER_ACTION)
    assert record.actor_label == "API key monitoring"
    assert (record.tenant_id, record.changes["action"], record.changes["ok"]) == (
        acme.pk,
        "test_connection",
        True,
    )


def test_rejected_credentials_are_still_200_with_the_code_and_advice(acme, api_client, make_integration):
    integration = make_integration("invalid-key", tenant=acme, name="Acme billing")
    api = api_client(acme)
    before = snapshot(acme)

    response = post(api, integration)

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["ok"], body["code"]) == (False, "AUTH_INVALID")
    catalog = ErrorCode.objects.get(pk="AUTH_INVALID")
    assert (body["title"], body["advice"]) == (catalog.title, catalog.customer_advice)
    assert "rejected" in body["message"]
    assert unchanged_but_events(before, snapshot(acme))


def test_an_outage_is_vendor_unavailable(acme, api_client, make_integration):
    response = post(api_client(acme), make_integration("outage", tenant=acme))
    assert response.status_code == 200
    assert (response.json()["ok"], response.json()["code"]) == (False, "VENDOR_UNAVAILABLE")


def test_a_refused_destination_is_destination_refused(acme, api_client, make_integration, settings):
    integration = make_integration("healthy", tenant=acme)
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    response = post(api_client(acme), integration)
    assert response.status_code == 200
    assert (response.json()["ok"], response.json()["code"]) == (False, "DESTINATION_REFUSED")


def test_another_tenants_integration_is_404_and_not_tested(
    acme, api_client, make_integration, vendor_simulator
):
    theirs = make_integration("healthy", tenant=TenantFactory(name="Globex"), name="Globex billing")
    account = theirs.settings["account"]
    requests_before = vendor_simulator.stats(account)["requests"]["total"]
    before = snapshot(theirs.tenant)

    response = post(api_client(acme), theirs)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert "Globex" not in response.content.decode()
    assert snapshot(theirs.tenant) == before
    assert vendor_simulator.stats(account)["requests"]["total"] == requests_before


def test_a_switched_off_integration_is_409_and_not_tested(acme, api_client, integration_in):
    integration = integration_in(
        acme, Status.INACTIVE, name="Acme sandbox", credentials={"api_key": "good-key"}
    )
    api = api_client(acme)
    before = snapshot(acme)

    response = post(api, integration)

    assert response.status_code == 409, response.content
    body = response.json()
    assert body["error"]["code"] == "not_testable"
    assert "switched off" in body["error"]["message"]
    assert set(body) == {"error"}
    after = snapshot(acme)
    assert after["events"] == before["events"]
    assert not AuditRecord.objects.filter(action=AuditRecord.Action.CUSTOMER_ACTION).exists()


def test_no_credentials_is_409(acme, api_client, integration_in):
    integration = integration_in(acme, name="Acme billing")
    response = post(api_client(acme), integration)
    assert response.status_code == 409
    assert "re-authenticate" in response.json()["error"]["message"]


def test_too_many_tests_are_429_with_retry_after(
    acme, api_client, make_integration, settings, vendor_simulator
):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "connection_tests": (2, 60)}
    integration = make_integration("healthy", tenant=acme)
    api = api_client(acme)
    for _ in range(2):
        assert post(api, integration).status_code == 200
    requests_before = vendor_simulator.stats(integration.settings["account"])["requests"]["total"]

    response = post(api, integration)

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert "connection tests" in response.json()["error"]["message"]
    assert 1 <= int(response["Retry-After"]) <= 60
    assert vendor_simulator.stats(integration.settings["account"])["requests"]["total"] == requests_before
    assert IntegrationEvent.objects.filter(kind=IntegrationEvent.Kind.CONNECTION_TESTED).count() == 2


def test_only_post_with_a_key(acme, api_client, integration_in, client):
    integration = integration_in(acme, name="Acme billing", credentials={"api_key": "good-key"})
    response = api_client(acme).get(url(integration))
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    response = client.post(url(integration), data="", content_type=JSON)
    assert response.status_code == 401
    assert not IntegrationEvent.objects.filter(kind=IntegrationEvent.Kind.CONNECTION_TESTED).exists()


def test_the_queries_do_not_grow_with_rows(acme, api_client, make_integration, integration_in, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []  # the vendor is not measured here: refused before a byte is sent
    integration = make_integration("healthy", tenant=acme)
    api = api_client(acme)

    def measured():
        response, queries = measure(api, url(integration), "post", data="", content_type=JSON)
        assert response.status_code == 200, response.content
        return queries

    measured()  # the key's first use of the minute is written once: not part of what is compared
    small = measured()
    add_integrations(integration_in, acme, 20)
    add_issues(integration, 500, integration.created_at)
    large = measured()
    assert len(large) == len(small), report({"test": small}, {"test": large})
