"""An integration's `ca_certificate`, end to end: through onboarding, the engine, the command and Test connection.

The vendor is a TLS server on loopback (tests/plugins/tls_server.py) whose
certificate nobody trusts by default: self-signed, or issued by a private
certificate authority. Syncs run through the real engine (a queued session
run inline by `run_session`), so what a customer sees is what the session
and the integration hold afterwards. The CardDAV case puts a TLS front
(tests/plugins/fault_proxy.py) before a real Radicale server.
"""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from integrations import connection_test
from integrations.models import Integration, SyncedRecord, SyncSession
from integrations.onboarding import create_integration
from integrations.sync.runner import run_session
from integrations.sync.starting import start_sync
from issues.models import ErrorCode
from tests.factories import TenantFactory
from tests.plugins.fault_proxy import FaultProxy
from tests.plugins.radicale import make_vcard, radicale_server  # noqa: F401
from tests.plugins.tls_server import make_ca, make_server_cert, server_context

pytestmark = pytest.mark.django_db

State = SyncSession.State
ITEMS = [{"id": n, "name": f"Item {n}", "email": f"item{n}@vendor.example"} for n in range(1, 38)]


def rest_integration(server, **settings):
    """A `rest` integration reading the server's /items (one JSON array, no authentication)."""
    return create_integration(
        TenantFactory(),
        "rest",
        "Vendor behind TLS",
        settings={"base_url": server.origin, "auth.type": "none", "items.endpoint": "/items", **settings},
        queue_first_sync=False,
    )


def sync(integration):
    session = start_sync(integration, kind=SyncSession.Kind.FULL, trigger=SyncSession.Trigger.STAFF, enqueue=False)
    session = run_session(session.pk)
    integration.refresh_from_db()
    return session


def test_a_self_signed_vendor_fails_the_sync_saying_why(tls_server, error_catalog):
    server = tls_server(make_server_cert(), ITEMS)
    integration = rest_integration(server)

    session = sync(integration)

    assert (session.state, session.error_code_id) == (State.FAILED, "VENDOR_TLS_INVALID")
    assert session.error_message == (
        "The vendor's TLS certificate could not be verified: self-signed certificate "
        f"(host 127.0.0.1:{server.port}). If the server uses its own certificate authority, add its CA "
        "certificate (PEM) to the integration's settings as ca_certificate."
    )
    assert "Could not connect" not in session.error_message
    assert (session.items_seen, session.retries) == (0, 0)
    assert not SyncedRecord.objects.filter(integration=integration).exists()
    assert integration.last_error_code == "VENDOR_TLS_INVALID"
    assert server.requests == []


@pytest.mark.parametrize("issuer", ["self-signed", "private CA"])
def test_the_integrations_ca_certificate_makes_the_sync_work(tls_server, error_catalog, issuer):
    ca = make_ca() if issuer == "private CA" else None
    certificate = make_server_cert(ca)
    server = tls_server(certificate, ITEMS)
    integration = rest_integration(server, ca_certificate=(ca or certificate).pem)

    session = sync(integration)

    assert (session.state, session.error_code_id, session.error_message) == (State.SUCCEEDED, None, "")
    assert (session.items_seen, session.items_created, session.items_updated) == (37, 37, 0)
    assert (session.pages, session.http_requests, session.retries) == (1, 1, 0)
    records = SyncedRecord.objects.filter(integration=integration, deleted=False)
    assert sorted(records.values_list("external_id", flat=True)) == sorted(str(n) for n in range(1, 38))
    assert records.get(external_id="7").data == ITEMS[6]
    assert integration.status == Integration.Status.ACTIVE
    assert server.requests == ["/items"]


def test_add_integration_refuses_a_ca_certificate_that_is_not_pem():
    tenant = TenantFactory()
    arguments = [tenant.slug, "rest", "--name", "Vendor behind TLS", "--no-sync"]
    for setting in ("base_url=https://vendor.example", "items.endpoint=/items", "ca_certificate=garbage"):
        arguments += ["--setting", setting]

    with pytest.raises(CommandError) as refused:
        call_command("add_integration", *arguments, stdout=StringIO())

    # What manage.py exits with, after printing the message.
    assert refused.value.returncode != 0
    assert str(refused.value) == (
        "Setting 'ca_certificate' is not a PEM certificate: it has no -----BEGIN CERTIFICATE----- block."
    )
    assert not Integration.objects.filter(tenant=tenant).exists()


def test_test_connection_reports_the_untrusted_certificate_with_the_catalogs_advice(tls_server, error_catalog):
    server = tls_server(make_server_cert(make_ca()), ITEMS)
    integration = rest_integration(server)

    result = connection_test.test_connection(integration)

    assert not result.ok
    assert result.code == "VENDOR_TLS_INVALID"
    assert result.message.startswith(
        "The vendor's TLS certificate could not be verified: issued by a certificate authority we do not trust "
        f"(host 127.0.0.1:{server.port})."
    )
    entry = ErrorCode.objects.get(pk="VENDOR_TLS_INVALID")
    assert (result.title, result.advice) == (entry.title, entry.customer_advice)
    assert "ca_certificate" in result.advice and result.text.endswith(entry.customer_advice)
    assert result.checks == []
    assert server.requests == []


def test_test_connection_works_once_the_ca_certificate_is_set(tls_server, error_catalog):
    ca = make_ca()
    server = tls_server(make_server_cert(ca), ITEMS)
    integration = rest_integration(server, ca_certificate=ca.pem)

    result = connection_test.test_connection(integration)

    assert (result.ok, result.code) == (True, "")
    assert result.checks == [f"reached {server.origin}", "credentials accepted", "1 vendor account visible"]


@pytest.mark.django_db(transaction=True)
def test_carddav_over_https_with_the_servers_ca_certificate(radicale_server, error_catalog):  # noqa: F811
    user = radicale_server.new_user()
    radicale_server.create_addressbook(user, "contacts")
    cards = [
        (f"tls-{n}.vcf", make_vcard(f"tls-{n}", given="Ada", family=f"Number{n}", emails=[f"ada{n}@example.com"]))
        for n in range(5)
    ]
    radicale_server.fill(user, "contacts", cards)
    ca = make_ca()

    with FaultProxy(radicale_server.url, ssl_context=server_context(make_server_cert(ca))) as front:
        integration = create_integration(
            TenantFactory(),
            "carddav",
            "Contacts over HTTPS",
            settings={"ca_certificate": ca.pem},
            credentials={"url": front.url, "username": user, "password": "secret"},
            queue_first_sync=False,
        )
        assert front.url.startswith("https://")
        session = sync(integration)

    assert (session.state, session.error_code_id, session.error_message) == (State.SUCCEEDED, None, "")
    assert (session.items_seen, session.items_created) == (5, 5)
    assert SyncedRecord.objects.filter(integration=integration, deleted=False).count() == 5
    assert {request.method for request in front.seen()} >= {"PROPFIND", "REPORT"}
