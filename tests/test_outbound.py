"""The outbound policy, tried as an attacker would, with production settings.

A loopback listener started here counts every connection it accepts. A
tenant admin points a CardDAV URL, a REST base URL or a webhook URL at it in
every spelling, a name that resolves to it only the second time, a vendor
redirect and a CardDAV href: the listener must accept zero connections, and
the person must read the refusal in words.

OUTBOUND_ALLOWED_NETWORKS is empty, as in production. Where a test needs a
"vendor" it listens on 127.0.0.2, and only that /32 is allowed: the attack
then aims at 127.0.0.1. A guard refuses any connect outside loopback, so no
test here can reach the network whatever the code under test does.
"""

import ipaddress
import socket
import threading

import pytest
from django.test import Client
from django.urls import reverse

from alerts import webhooks
from alerts.models import WebhookDelivery, WebhookEndpoint
from integrations import reauth
from integrations.connectors import errors
from integrations.connectors.http import VendorHttp
from integrations.models import Integration, Membership, SyncSession
from integrations.sync.runner import run_session
from integrations.sync.starting import start_sync
from syncconsole import outbound
from tests.factories import IntegrationFactory, MembershipFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db

VENDOR_HOST = "127.0.0.2"
PUBLIC = "93.184.216.34"  # what the rebinding name answers first; never connected to (the guard)


# -- the peers -----------------------------------------------------------------------


class Listener:
    """The internal service an attacker aims at: counts connections on 127.0.0.1 and [::1]."""

    def __init__(self):
        self.connections = 0
        self.sockets = []
        v4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        v4.bind(("127.0.0.1", 0))
        self.port = v4.getsockname()[1]
        self.sockets.append(v4)
        try:
            v6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            v6.bind(("::1", self.port))
            self.sockets.append(v6)
        except OSError:
            pass  # no IPv6 on loopback here: [::1] then cannot connect anyway
        for sock in self.sockets:
            sock.listen(16)
            threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def _accept(self, sock):
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            conn.close()

    def close(self):
        for sock in self.sockets:
            sock.close()


class Vendor:
    """A vendor on 127.0.0.2 that answers every request with `answer(path)` -> raw bytes."""

    def __init__(self, answer):
        self.answer = answer
        self.requests = []
        self.sock = socket.socket()
        self.sock.bind((VENDOR_HOST, 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{VENDOR_HOST}:{self.port}"
        self.sock.listen(16)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        from tests.plugins.raw_http import read_request

        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                request = read_request(conn)
                if not request:
                    continue
                path = request.split(b" ", 2)[1].decode()
                self.requests.append(path)
                # One answer per connection, said so: the client must not reuse a socket about to close.
                status, _, rest = self.answer(path).partition(b"\r\n")
                conn.sendall(status + b"\r\nConnection: close\r\n" + rest)

    def close(self):
        self.sock.close()


@pytest.fixture
def production(settings):
    settings.DEBUG = False
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    settings.VENDOR_MAX_RETRIES = 0
    settings.VENDOR_BACKOFF_SECONDS = 0
    return settings


@pytest.fixture
def loopback_only(monkeypatch):
    """Fail the test on any connect outside loopback, whatever the code under test does."""
    real_connect = socket.socket.connect

    def guarded(sock, address):
        host = address[0] if isinstance(address, tuple) else None
        if host is not None and not ipaddress.ip_address(host.split("%")[0]).is_loopback:
            raise AssertionError(f"connect to {host} outside loopback")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture
def listener(loopback_only):
    peer = Listener()
    yield peer
    peer.close()


@pytest.fixture
def vendor(production, loopback_only):
    production.OUTBOUND_ALLOWED_NETWORKS = [f"{VENDOR_HOST}/32"]
    peers = []

    def start(answer):
        peer = Vendor(answer)
        peers.append(peer)
        return peer

    yield start
    for peer in peers:
        peer.close()


@pytest.fixture
def rebinding(monkeypatch):
    """`rebind.example.test` resolves to a public address once, then to 127.0.0.1."""
    real = socket.getaddrinfo
    answers = {"count": 0}

    def getaddrinfo(host, port, *args, **kwargs):
        if host != "rebind.example.test":
            return real(host, port, *args, **kwargs)
        answers["count"] += 1
        address = PUBLIC if answers["count"] == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port or 80))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def spellings(port):
    return {
        "127.0.0.1": f"http://127.0.0.1:{port}/",
        "localhost": f"http://localhost:{port}/",
        "[::1]": f"http://[::1]:{port}/",
        "[::ffff:127.0.0.1]": f"http://[::ffff:127.0.0.1]:{port}/",
        "[::127.0.0.1]": f"http://[::127.0.0.1]:{port}/",
        "127.1": f"http://127.1:{port}/",
        "decimal": f"http://2130706433:{port}/",
        "0.0.0.0": f"http://0.0.0.0:{port}/",
    }


SPELLINGS = list(spellings(0))


def refused_in_words(page):
    """The policy's refusal, or (for spellings a URL validator already rejects) the form's."""
    return "are not allowed: a" in page or "Enter a valid URL" in page or "is not an http(s) URL" in page


def tenant_admin_client(tenant):
    user = UserFactory()
    MembershipFactory(user=user, tenant=tenant, role=Membership.Role.ADMIN)
    client = Client()
    client.force_login(user)
    return client


def carddav_integration(tenant=None):
    return IntegrationFactory(
        tenant=tenant or TenantFactory(),
        connector="carddav",
        name="Mailbox contacts",
        status=Integration.Status.AUTH_FAILING,
        settings={"addressbook": "/someone/contacts/"},
        credentials={"url": "https://dav.example.com/", "username": "someone", "password": "old"},
    )


# -- the policy itself ----------------------------------------------------------------


@pytest.mark.parametrize(
    "address, reason",
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "shared"),
        ("169.254.169.254", "link-local"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("192.0.2.1", "private"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "IPv6 form of 127.0.0.1"),
        ("::127.0.0.1", "IPv6 form of 127.0.0.1"),
        ("64:ff9b::a9fe:a9fe", "IPv6 form of 169.254.169.254"),
        ("64:ff9b:1::a00:1", "IPv6 form of 10.0.0.1"),
        ("2002:7f00:1::", "IPv6 form of 127.0.0.1"),
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "IPv6 form of 10.0.0.1"),
    ],
)
def test_internal_addresses_are_refused_with_a_reason(address, reason):
    assert reason in outbound.refusal_reason(address, [])


@pytest.mark.parametrize("address", [PUBLIC, "8.8.8.8", "2606:4700:4700::1111", "::ffff:93.184.216.34", "64:ff9b::808:808"])
def test_public_addresses_are_allowed(address):
    assert outbound.refusal_reason(address, []) is None


def test_allowed_networks_open_exactly_what_they_name():
    networks = [ipaddress.ip_network("127.0.0.0/8")]
    assert outbound.refusal_reason("127.0.0.1", networks) is None
    assert outbound.refusal_reason("::ffff:127.0.0.1", networks) is None
    assert outbound.refusal_reason("::1", networks) == "a loopback address"
    assert outbound.refusal_reason("10.0.0.1", networks) == "a private network address"


# -- every spelling, every entry point --------------------------------------------------


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_the_portal_reauthenticate_page_never_reaches_an_internal_address(production, listener, spelling):
    integration = carddav_integration()
    client = tenant_admin_client(integration.tenant)
    url = spellings(listener.port)[spelling]

    response = client.post(
        reverse("portal:reauthenticate", args=[integration.pk]),
        {"url": url, "username": "someone", "password": "secret"},
    )

    assert response.status_code == 400
    assert refused_in_words(response.content.decode())
    assert listener.connections == 0
    integration.refresh_from_db()
    assert integration.get_credentials()["url"] == "https://dav.example.com/"


@pytest.mark.parametrize("spelling", ["127.0.0.1", "[::ffff:127.0.0.1]", "localhost"])
def test_the_public_reauth_page_never_reaches_an_internal_address(production, listener, spelling):
    integration = carddav_integration()
    link = reauth.create_link(integration, recipient="it@example.com", send=False)
    client = Client()
    assert client.get(link.url.removeprefix(production.SITE_URL)).status_code == 302

    response = client.post(
        reverse("reauth", args=["continue"]),
        {"url": spellings(listener.port)[spelling], "username": "someone", "password": "secret"},
    )

    assert response.status_code == 400
    assert "are not allowed" in response.content.decode()
    assert listener.connections == 0


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_a_rest_base_url_pointing_inside_fails_the_sync_with_a_named_refusal(production, listener, spelling):
    integration = IntegrationFactory(
        connector="rest",
        status=Integration.Status.ACTIVE,
        settings={"base_url": spellings(listener.port)[spelling], "auth.type": "api_key_header", "items.endpoint": "/items"},
        credentials={"api_key": "secret-key"},
    )
    session = start_sync(integration, kind=SyncSession.Kind.FULL, trigger=SyncSession.Trigger.STAFF, enqueue=False)

    session = run_session(session.pk)

    assert session.error_code_id == "DESTINATION_REFUSED"
    assert "are not allowed" in session.error_message
    assert listener.connections == 0


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_a_webhook_url_pointing_inside_is_refused_in_the_portal(production, listener, spelling):
    tenant = TenantFactory()
    client = tenant_admin_client(tenant)

    response = client.post(reverse("portal:webhooks"), {"url": spellings(listener.port)[spelling]})

    assert response.status_code == 400
    assert refused_in_words(response.content.decode())
    assert not WebhookEndpoint.objects.exists()
    assert listener.connections == 0


def test_a_name_that_resolves_inside_the_second_time_is_refused_when_it_connects(
    production, listener, rebinding, django_capture_on_commit_callbacks
):
    tenant = TenantFactory()
    client = tenant_admin_client(tenant)
    url = f"http://rebind.example.test:{listener.port}/hook"

    created = client.post(reverse("portal:webhooks"), {"url": url})
    assert created.status_code == 200  # the form's look-up saw a public address
    endpoint = WebhookEndpoint.objects.get(tenant=tenant)

    delivery_ids = webhooks.emit(tenant.pk, WebhookEndpoint.Event.STATUS_CHANGED, {"x": 1}, endpoint.created_at)
    webhooks.deliver(delivery_ids[0], now=endpoint.created_at)

    delivery = WebhookDelivery.objects.get(pk=delivery_ids[0])
    assert "rebind.example.test (127.0.0.1) are not allowed: a loopback address" in delivery.last_error
    assert delivery.response_code is None
    assert rebinding["count"] >= 2
    assert listener.connections == 0


def test_a_vendor_redirect_to_an_internal_address_is_not_followed(vendor, listener):
    target = f"http://127.0.0.1:{listener.port}/steal"
    peer = vendor(lambda path: f"HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\n\r\n".encode())

    with VendorHttp() as http, pytest.raises(errors.DestinationRefused, match="redirected GET .* to another site"):
        http.request("GET", f"{peer.url}/items", headers={"X-API-Key": "secret-key"})

    assert peer.requests == ["/items"]
    assert listener.connections == 0


def test_a_redirect_within_the_vendor_is_followed_with_its_credentials(vendor):
    def answer(path):
        if path == "/old":
            return b"HTTP/1.1 301 Moved\r\nLocation: /new\r\nContent-Length: 0\r\n\r\n"
        body = b'{"ok": true}'
        return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body

    peer = vendor(answer)
    with VendorHttp() as http:
        response = http.request("GET", f"{peer.url}/old", headers={"X-API-Key": "secret-key"})
    assert response.json() == {"ok": True}
    assert peer.requests == ["/old", "/new"]


def multistatus_pointing_at(href):
    """A 207 answer whose principal, home set and response all point at `href`."""
    body = (
        '<?xml version="1.0"?><d:multistatus xmlns:d="DAV:"><d:response><d:href>' + href + "</d:href>"
        "<d:propstat><d:prop><d:current-user-principal><d:href>" + href + "</d:href></d:current-user-principal>"
        '<d:addressbook-home-set xmlns:d2="urn:ietf:params:xml:ns:carddav"><d:href>' + href + "</d:href>"
        "</d:addressbook-home-set><d:resourcetype><d:collection/></d:resourcetype></d:prop>"
        "<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>"
    ).encode()
    return b"HTTP/1.1 207 Multi-Status\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n\r\n" % len(body) + body


@pytest.mark.parametrize("where", ["inside", "javascript"])
def test_a_carddav_href_off_the_servers_origin_ends_the_sync_as_a_vendor_error(vendor, listener, where):
    """Credentials go only where the integration was set up; the session still ends with an outcome."""
    href = f"http://127.0.0.1:{listener.port}/someone/" if where == "inside" else "javascript:alert(1)//x.vcf"
    peer = vendor(lambda path: multistatus_pointing_at(href))
    integration = IntegrationFactory(
        connector="carddav",
        status=Integration.Status.ACTIVE,
        settings={},
        credentials={"url": f"{peer.url}/", "username": "someone", "password": "secret"},
    )
    session = start_sync(integration, kind=SyncSession.Kind.FULL, trigger=SyncSession.Trigger.STAFF, enqueue=False)

    session = run_session(session.pk)

    assert (session.state, session.error_code_id) == (SyncSession.State.FAILED, "VENDOR_BAD_RESPONSE")
    assert f"outside {peer.url}" in session.error_message
    assert session.lease_expires_at is None
    assert peer.requests
    assert listener.connections == 0


def test_a_sync_that_meets_our_own_bug_ends_internal_error_with_the_traceback(monkeypatch, error_catalog):
    from integrations.sync.runner import SessionRun

    def broken(self, connector, **kwargs):
        raise KeyError("a bug of ours")

    monkeypatch.setattr(SessionRun, "load_mappings", broken)
    integration = IntegrationFactory(status=Integration.Status.ACTIVE, credentials={"api_key": "k"})
    session = start_sync(integration, kind=SyncSession.Kind.FULL, trigger=SyncSession.Trigger.STAFF, enqueue=False)

    session = run_session(session.pk)

    assert (session.state, session.error_code_id) == (SyncSession.State.FAILED, "INTERNAL_ERROR")
    traceback_entries = [e for e in session.log if "traceback" in e.get("data", {})]
    assert traceback_entries and "KeyError" in traceback_entries[0]["data"]["traceback"]


def test_a_vendor_asking_to_wait_60_s_answers_the_reauth_page_within_the_budget(vendor, settings):
    """A person waiting on the portal is never held by Retry-After: the page answers at once, saving nothing."""
    import time

    peer = vendor(lambda path: b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 60\r\nContent-Length: 0\r\n\r\n")
    integration = carddav_integration()
    client = tenant_admin_client(integration.tenant)
    started = time.monotonic()

    response = client.post(
        reverse("portal:reauthenticate", args=[integration.pk]),
        {"url": f"{peer.url}/", "username": "someone", "password": "new"},
    )

    assert time.monotonic() - started < settings.WEB_VENDOR_BUDGET_SECONDS
    assert response.status_code == 400
    assert "try again later" in response.content.decode()
    assert len(peer.requests) == 1
    integration.refresh_from_db()
    assert integration.get_credentials()["password"] == "old"


def test_nothing_else_sends_http_for_a_customer_or_a_vendor():
    """Every outbound request goes through the policy's session: no direct requests calls anywhere else.

    The one exemption is `seed_demo`, which sets up the demo's own simulator and
    address book on this machine before any customer exists.
    """
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    exempt = {"syncconsole/outbound.py", "integrations/management/commands/seed_demo.py"}
    direct = re.compile(r"\brequests\.(get|post|put|patch|delete|head|options|request|Session)\s*\(")
    offenders = [
        f"{path.relative_to(root)}:{n}"
        for app in ("integrations", "issues", "alerts", "audit", "portal", "syncconsole")
        for path in (root / app).rglob("*.py")
        if str(path.relative_to(root)) not in exempt
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if direct.search(line)
    ]
    assert offenders == []
