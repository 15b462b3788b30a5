"""The General tab's "Test connection": tenant admins test against the live vendor simulator and read the result.

Log in, POST (with the CSRF token a browser sends), follow the redirect to the
General tab, read the message, check the timeline event and the audit
record. Viewers get a 403 page saying who may do it; nothing is recorded for
them, and nothing is ever synced.
"""

import re

import pytest
from django.http import HttpRequest
from django.test import Client
from django.urls import reverse

from audit.models import AuditRecord
from integrations.models import Integration, IntegrationEvent, Membership
from issues.models import ErrorCode
from tests.factories import TenantFactory
from tests.portal.conftest import PASSWORD, snapshot
from tests.queries import add_integrations, add_issues, measure, report

Status = Integration.Status
pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(db):
    return TenantFactory(name="Acme", slug="acme")


@pytest.fixture
def alice(acme, member):
    return member(acme, Membership.Role.ADMIN, username="alice")


def url(integration):
    return reverse("portal:test_connection", args=[integration.pk])


def messages_of(response):
    return [(m.level_tag, str(m)) for m in response.context["messages"]]


def connection_events(integration):
    return list(
        IntegrationEvent.objects.filter(integration=integration, kind=IntegrationEvent.Kind.CONNECTION_TESTED)
    )


def without_events(rows):
    return {k: v for k, v in rows.items() if k != "events"}


def test_an_admin_tests_and_reads_that_it_works(acme, alice, log_in, make_integration, vendor_simulator):
    integration = make_integration("healthy", tenant=acme, name="Acme billing")
    client = log_in(alice)
    general = client.get(reverse("portal:general", args=[integration.pk]))
    assert url(integration) in general.content.decode()
    assert "Test connection" in general.content.decode()
    before = snapshot(acme)

    response = client.post(url(integration), follow=True)

    assert response.redirect_chain == [(reverse("portal:general", args=[integration.pk]), 302)]
    ((level, text),) = messages_of(response)
    assert level == "success"
    assert (
        text
        == f"Connection works: Reached {vendor_simulator.base_url}, credentials accepted, 2 vendor accounts visible."
    )
    assert text in response.content.decode()
    assert without_events(snapshot(acme)) == without_events(before)  # nothing synced, nothing mapped
    (event,) = connection_events(integration)
    assert event.actor == alice
    (record,) = AuditRecord.objects.filter(action=AuditRecord.Action.CUSTOMER_ACTION)
    assert (record.actor, record.tenant_id, record.changes["action"]) == (alice, acme.pk, "test_connection")


def test_rejected_credentials_show_the_code_and_the_advice(acme, alice, log_in, make_integration):
    integration = make_integration("invalid-key", tenant=acme, name="Acme billing")
    before = snapshot(acme)

    response = log_in(alice).post(url(integration), follow=True)

    ((level, text),) = messages_of(response)
    catalog = ErrorCode.objects.get(pk="AUTH_INVALID")
    assert level == "error"
    assert text.startswith(f"Connection test failed: {catalog.title} (AUTH_INVALID): ")
    assert text.endswith(f"What to do: {catalog.customer_advice}")
    assert without_events(snapshot(acme)) == without_events(before)
    assert len(connection_events(integration)) == 1


def test_a_viewer_is_told_only_admins_may_and_nothing_is_recorded(
    acme, member, log_in, make_integration, vendor_simulator
):
    integration = make_integration("healthy", tenant=acme, name="Acme billing")
    viewer = member(acme, Membership.Role.VIEWER, username="victor")
    client = log_in(viewer)
    assert (
        url(integration) not in client.get(reverse("portal:general", args=[integration.pk])).content.decode()
    )
    requests_before = vendor_simulator.stats(integration.settings["account"])["requests"]["total"]
    before = snapshot(acme)

    response = client.post(url(integration))

    assert response.status_code == 403
    assert "Only tenant admins can test the connection" in response.content.decode()
    assert snapshot(acme) == before
    assert not AuditRecord.objects.filter(action=AuditRecord.Action.CUSTOMER_ACTION).exists()
    assert vendor_simulator.stats(integration.settings["account"])["requests"]["total"] == requests_before


def test_another_tenants_integration_is_404(acme, alice, log_in, make_integration):
    theirs = make_integration("healthy", tenant=TenantFactory(name="Globex"), name="Globex billing")
    before = snapshot(acme, theirs.tenant)
    response = log_in(alice).post(url(theirs))
    assert response.status_code == 404
    assert snapshot(acme, theirs.tenant) == before


def test_get_is_not_allowed(acme, alice, log_in, integration_in):
    integration = integration_in(acme, name="Acme billing", credentials={"api_key": "good-key"})
    assert log_in(alice).get(url(integration)).status_code == 405


def test_the_form_needs_the_csrf_token(acme, alice, make_integration):
    integration = make_integration("healthy", tenant=acme, name="Acme billing")
    browser = Client(enforce_csrf_checks=True)
    assert browser.login(request=HttpRequest(), username=alice.username, password=PASSWORD)
    assert browser.post(url(integration)).status_code == 403
    assert not connection_events(integration)

    page = browser.get(reverse("portal:general", args=[integration.pk])).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    assert browser.post(url(integration), {"csrfmiddlewaretoken": token}).status_code == 302
    assert len(connection_events(integration)) == 1


def test_a_switched_off_integration_is_not_tested_and_offers_no_button(acme, alice, log_in, integration_in):
    integration = integration_in(
        acme, Status.INACTIVE, name="Acme sandbox", credentials={"api_key": "good-key"}
    )
    client = log_in(alice)
    assert (
        url(integration) not in client.get(reverse("portal:general", args=[integration.pk])).content.decode()
    )
    before = snapshot(acme)

    response = client.post(url(integration), follow=True)

    ((level, text),) = messages_of(response)
    assert level == "error"
    assert text == (
        "The connection was not tested: This integration is switched off; reactivate it before testing its connection."
    )
    assert snapshot(acme) == before


def test_too_many_tests_answer_429(acme, alice, log_in, make_integration, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "connection_tests": (2, 60)}
    integration = make_integration("healthy", tenant=acme, name="Acme billing")
    client = log_in(alice)
    for _ in range(2):
        assert client.post(url(integration)).status_code == 302

    response = client.post(url(integration))

    assert response.status_code == 429
    assert "The connection of Acme billing was tested too often in a short time." in response.content.decode()
    assert 1 <= int(response["Retry-After"]) <= 60
    assert len(connection_events(integration)) == 2


def test_the_queries_do_not_grow_with_rows(acme, alice, log_in, make_integration, integration_in, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []  # the vendor is not measured here: refused before a byte is sent
    integration = make_integration("healthy", tenant=acme, name="Acme billing")
    client = log_in(alice)

    def measured():
        response, queries = measure(client, url(integration), "post")
        assert response.status_code == 302
        return queries

    small = measured()
    add_integrations(integration_in, acme, 20)
    add_issues(integration, 500, integration.created_at)
    large = measured()
    assert len(large) == len(small), report({"test": small}, {"test": large})
