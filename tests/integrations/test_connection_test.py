"""integrations/connection_test.py against the live vendor simulator: what a connection test finds and records.

Each test gets a simulator account of its own (a scenario and a label), so the
vendor's answers are real HTTP answers: accepted and rejected keys, an outage,
a port nobody listens on, an address the outbound policy refuses, and a
vendor slower than the web budget. A test never syncs: no session, record,
issue or account mapping may appear, whatever the vendor says.
"""

import logging
import socket
import threading
import time
from types import SimpleNamespace

import pytest
from django.utils import timezone

from audit.models import AuditRecord
from integrations import connection_test
from integrations.connectors.base import Connector, get_connector_class
from integrations.models import AccountMapping, Integration, IntegrationEvent, SyncedRecord, SyncSession
from issues.models import ErrorCode, SyncIssue
from syncconsole import limits
from tests.factories import IntegrationFactory, UserFactory
from tests.plugins.raw_http import serve_raw

pytestmark = pytest.mark.django_db


def rows(integration):
    """What a sync would write: none of it may change."""
    return {
        "sessions": SyncSession.objects.filter(integration=integration).count(),
        "records": SyncedRecord.objects.filter(integration=integration).count(),
        "issues": SyncIssue.objects.filter(integration=integration).count(),
        "mappings": list(AccountMapping.objects.filter(integration=integration).order_by("pk").values()),
        "integration": Integration.objects.filter(pk=integration.pk).values().get(),
    }


def connection_events(integration):
    return list(
        IntegrationEvent.objects.filter(integration=integration, kind=IntegrationEvent.Kind.CONNECTION_TESTED)
    )


def vendor_requests(vendor_simulator, integration):
    return vendor_simulator.stats(integration.settings["account"])["requests"]["total"]


def advice(code):
    return ErrorCode.objects.get(pk=code).customer_advice


def test_good_credentials_are_ok_and_say_what_was_checked(make_integration, vendor_simulator):
    integration = make_integration("healthy")
    before = rows(integration)
    user = UserFactory(username="alice")

    result = connection_test.test_connection(integration, actor=user)

    assert result.ok
    assert (result.code, result.advice, result.title) == ("", "", "Connection works")
    assert result.checks == [
        f"reached {vendor_simulator.base_url}",
        "credentials accepted",
        "2 vendor accounts visible",
    ]
    assert (
        result.message
        == f"Reached {vendor_simulator.base_url}, credentials accepted, 2 vendor accounts visible."
    )
    assert 0 <= result.duration_ms < 15_000
    assert rows(integration) == before
    (event,) = connection_events(integration)
    assert event.actor == user
    assert "Connection works" in event.note and "2 vendor accounts visible" in event.note
    assert event.data["ok"] is True
    (record,) = AuditRecord.objects.filter(action=AuditRecord.Action.CUSTOMER_ACTION)
    assert record.changes["action"] == "test_connection"
    assert record.changes["ok"] is True
    assert record.tenant_id == integration.tenant_id


def test_rejected_credentials_are_auth_invalid_with_the_catalogs_advice(make_integration):
    integration = make_integration("invalid-key")
    before = rows(integration)

    result = connection_test.test_connection(integration)

    assert not result.ok
    assert result.code == "AUTH_INVALID"
    assert result.title == ErrorCode.objects.get(pk="AUTH_INVALID").title
    assert result.advice == advice("AUTH_INVALID") and result.advice
    assert "rejected" in result.message
    assert result.checks == [f"reached {integration.settings['base_url']}"]
    assert result.text.endswith(f"What to do: {result.advice}")
    assert rows(integration) == before
    (event,) = connection_events(integration)
    assert "AUTH_INVALID" in event.note and event.data == {
        "ok": False,
        "code": "AUTH_INVALID",
        "duration_ms": result.duration_ms,
        "checks": result.checks,
    }


def test_expired_credentials_are_auth_expired(make_integration):
    result = connection_test.test_connection(make_integration("expired-token"))
    assert (result.ok, result.code) == (False, "AUTH_EXPIRED")


def test_credentials_accepted_without_read_access_are_forbidden(make_integration):
    """The check passes; listing the accounts proves there is no read access."""
    integration = make_integration("forbidden")
    before = rows(integration)

    result = connection_test.test_connection(integration)

    assert (result.ok, result.code) == (False, "AUTH_FORBIDDEN")
    assert result.checks[-1] == "credentials accepted"
    assert rows(integration) == before


def test_a_vendor_outage_is_vendor_unavailable(make_integration):
    integration = make_integration("outage")
    before = rows(integration)

    result = connection_test.test_connection(integration)

    assert (result.ok, result.code) == (False, "VENDOR_UNAVAILABLE")
    assert result.advice == advice("VENDOR_UNAVAILABLE")
    assert rows(integration) == before


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_port_nobody_listens_on_is_vendor_unavailable(make_integration):
    integration = make_integration("healthy")
    Integration.objects.filter(pk=integration.pk).update(
        settings={**integration.settings, "base_url": f"http://127.0.0.1:{free_port()}"}
    )
    integration.refresh_from_db()

    result = connection_test.test_connection(integration)

    assert (result.ok, result.code) == (False, "VENDOR_UNAVAILABLE")
    assert result.checks == []


def test_an_address_the_outbound_policy_refuses_is_destination_refused(
    make_integration, vendor_simulator, settings
):
    integration = make_integration("healthy")
    requests_before = vendor_requests(vendor_simulator, integration)
    settings.OUTBOUND_ALLOWED_NETWORKS = []  # production: loopback is internal

    result = connection_test.test_connection(integration)

    assert (result.ok, result.code) == (False, "DESTINATION_REFUSED")
    assert result.advice == advice("DESTINATION_REFUSED")
    assert "127.0.0.1" in result.message
    assert vendor_requests(vendor_simulator, integration) == requests_before  # not a byte sent


@pytest.fixture
def slow_vendor():
    """A vendor that reads the request and then says nothing for 10 s (released at the end of the test)."""
    done = threading.Event()
    server, port = serve_raw(lambda conn: done.wait(10))
    yield f"http://127.0.0.1:{port}"
    done.set()
    server.close()


def test_a_slow_vendor_is_cut_off_at_the_web_budget(make_integration, slow_vendor, settings):
    settings.WEB_VENDOR_BUDGET_SECONDS = 0.5
    integration = make_integration("healthy")
    Integration.objects.filter(pk=integration.pk).update(
        settings={**integration.settings, "base_url": slow_vendor}
    )
    integration.refresh_from_db()
    started = time.monotonic()

    result = connection_test.test_connection(integration)

    assert time.monotonic() - started < 2
    assert (result.ok, result.code) == (False, "VENDOR_TIMEOUT")
    assert result.duration_ms < 2000
    assert len(connection_events(integration)) == 1


def test_a_bug_of_ours_is_internal_error_without_the_traceback(make_integration, monkeypatch, caplog):
    integration = make_integration("healthy")

    def broken(self):
        raise KeyError("a bug of ours")

    monkeypatch.setattr(get_connector_class("simulator"), "discover_accounts", broken)
    caplog.set_level(logging.ERROR, logger="integrations.connection_test")

    result = connection_test.test_connection(integration)

    assert (result.ok, result.code) == (False, "INTERNAL_ERROR")
    assert "KeyError" not in result.message and "Traceback" not in result.message
    assert result.advice == advice("INTERNAL_ERROR")
    assert "KeyError" in caplog.text  # the traceback is in the log
    assert result.checks[-1] == "credentials accepted"


# -- refusals: nothing called, nothing recorded ------------------------------------------------


def refuse(integration, vendor_simulator=None):
    before = rows(integration)
    events_before = IntegrationEvent.objects.filter(integration=integration).count()
    requests_before = vendor_requests(vendor_simulator, integration) if vendor_simulator else None
    with pytest.raises(connection_test.NotTestable) as refused:
        connection_test.test_connection(integration)
    assert rows(integration) == before
    assert IntegrationEvent.objects.filter(integration=integration).count() == events_before
    assert not AuditRecord.objects.filter(action=AuditRecord.Action.CUSTOMER_ACTION).exists()
    if vendor_simulator:
        assert vendor_requests(vendor_simulator, integration) == requests_before
    return refused.value.message


def test_a_deleted_integration_is_not_tested(make_integration, vendor_simulator):
    integration = make_integration("healthy")
    Integration.objects.filter(pk=integration.pk).update(
        deleted_at=timezone.now(), status=Integration.Status.DELETED
    )
    integration.refresh_from_db()
    assert "deleted" in refuse(integration, vendor_simulator)


def test_a_deactivated_integration_is_not_tested(make_integration, vendor_simulator):
    integration = make_integration("healthy")
    Integration.objects.filter(pk=integration.pk).update(
        deactivated_at=timezone.now(), status=Integration.Status.INACTIVE
    )
    integration.refresh_from_db()
    assert "switched off" in refuse(integration, vendor_simulator)


def test_an_integration_without_credentials_is_not_tested(error_catalog):
    integration = IntegrationFactory(settings={"account": "healthy"})
    assert not integration.has_credentials
    message = refuse(integration)
    assert "re-authenticate" in message


def test_a_connector_that_needs_no_credentials_is_tested_without_them(error_catalog, monkeypatch):
    class Open(Connector):
        credential_fields = (SimpleNamespace(name="token", required=False),)

        def __init__(self, settings, credentials, http):
            self.credentials = credentials

        def check_credentials(self):
            assert self.credentials == {}

        def discover_accounts(self):
            return ["one"]

    monkeypatch.setattr(connection_test, "get_connector_class", lambda key: Open)
    integration = IntegrationFactory(connector="open")
    assert connection_test.refusal(integration) == ""

    result = connection_test.test_connection(integration)

    assert result.ok and result.checks == ["credentials accepted", "1 vendor account visible"]


def test_unreadable_credentials_are_not_tested(error_catalog):
    integration = IntegrationFactory(credentials={"api_key": "k"})
    Integration.objects.filter(pk=integration.pk).update(credentials_ciphertext="not-a-fernet-token")
    integration.refresh_from_db()
    assert "cannot be read" in refuse(integration)


# -- the limit -----------------------------------------------------------------------------------


def test_tests_are_limited_per_integration(make_integration, vendor_simulator, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "connection_tests": (2, 60)}
    integration = make_integration("healthy")
    other = make_integration("healthy")
    for _ in range(2):
        assert connection_test.test_connection(integration).ok
    requests_before = vendor_requests(vendor_simulator, integration)

    with pytest.raises(limits.Limited) as limited:
        connection_test.test_connection(integration)

    assert 1 <= limited.value.retry_after <= 60
    assert vendor_requests(vendor_simulator, integration) == requests_before
    assert len(connection_events(integration)) == 2
    assert connection_test.test_connection(other).ok  # another integration has its own count
