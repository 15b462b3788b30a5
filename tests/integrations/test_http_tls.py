"""TLS of the HTTP client against real TLS servers on loopback.

Each server is the standard library's HTTP server behind `ssl`, with a
certificate authority and certificates made with `cryptography`
(tests/plugins/tls_server.py). Verification is never switched off: a server
the client does not trust is VENDOR_TLS_INVALID, saying why in plain words,
and is not retried; an integration's own CA certificate is trusted besides
the usual CAs, for that client only.
"""

from types import SimpleNamespace

import pytest

from integrations.connectors import errors
from integrations.connectors.http import VendorHttp, ca_certificate_problem
from tests.plugins.tls_server import make_ca, make_server_cert

NOT_TRUSTED_HINT = (
    "If the server uses its own certificate authority, add its CA certificate (PEM) to the "
    "integration's settings as ca_certificate."
)


@pytest.fixture
def no_sleep(settings):
    settings.VENDOR_MAX_RETRIES = 2
    settings.VENDOR_BACKOFF_SECONDS = 0
    return lambda seconds: None


# -- verification ------------------------------------------------------------------------


def test_a_server_of_a_private_ca_is_refused_without_its_certificate_and_not_retried(tls_server, no_sleep):
    server = tls_server(make_server_cert(make_ca()))

    with VendorHttp(sleep=no_sleep) as http, pytest.raises(errors.TlsCertificateInvalid) as caught:
        http.request("GET", server.url)

    assert caught.value.code == "VENDOR_TLS_INVALID"
    assert caught.value.message == (
        "The vendor's TLS certificate could not be verified: issued by a certificate authority we do not "
        f"trust (host 127.0.0.1:{server.port}). {NOT_TRUSTED_HINT}"
    )
    assert "Could not connect" not in caught.value.message
    assert (http.counters.http_requests, http.counters.retries) == (1, 0)
    assert server.requests == []


def test_a_self_signed_server_is_refused_saying_so(tls_server, no_sleep):
    server = tls_server(make_server_cert())

    with VendorHttp(sleep=no_sleep) as http, pytest.raises(errors.TlsCertificateInvalid) as caught:
        http.request("GET", server.url)

    assert caught.value.message == (
        "The vendor's TLS certificate could not be verified: self-signed certificate "
        f"(host 127.0.0.1:{server.port}). {NOT_TRUSTED_HINT}"
    )


def test_the_integrations_ca_certificate_is_trusted(tls_server):
    ca = make_ca()
    server = tls_server(make_server_cert(ca))

    with VendorHttp(ca_certificate=ca.pem) as http:
        response = http.request("GET", server.url)

    assert (response.status_code, response.json()) == (200, {"ok": True})
    assert server.requests == ["/items"]


def test_a_self_signed_servers_own_certificate_can_be_trusted(tls_server):
    issued = make_server_cert()
    server = tls_server(issued)

    with VendorHttp(ca_certificate=issued.pem) as http:
        assert http.request("GET", server.url).status_code == 200
        # By name too: the certificate names localhost as well as 127.0.0.1.
        assert http.request("GET", f"https://localhost:{server.port}/items").status_code == 200


def test_a_bundle_of_several_certificates_is_trusted(tls_server):
    ca = make_ca()
    server = tls_server(make_server_cert(ca))
    bundle = make_ca("Another CA").pem + "\n" + ca.pem

    with VendorHttp(ca_certificate=bundle) as http:
        assert http.request("GET", server.url).status_code == 200


def test_a_certificate_for_another_host_is_refused_naming_the_mismatch(tls_server, no_sleep):
    ca = make_ca()
    server = tls_server(make_server_cert(ca, hosts=("vendor.example",)))

    with VendorHttp(ca_certificate=ca.pem, sleep=no_sleep) as http:
        with pytest.raises(errors.TlsCertificateInvalid) as by_address:
            http.request("GET", server.url)
        with pytest.raises(errors.TlsCertificateInvalid) as by_name:
            http.request("GET", f"https://localhost:{server.port}/items")

    assert by_address.value.message == (
        "The vendor's TLS certificate could not be verified: the certificate is for another host name, "
        f"not 127.0.0.1 (host 127.0.0.1:{server.port}). Check the server address in the integration's "
        "settings: it must be the host name the certificate was issued for."
    )
    assert "another host name, not localhost" in by_name.value.message
    assert server.requests == []


def test_an_expired_certificate_is_refused_saying_so(tls_server, no_sleep):
    ca = make_ca()
    server = tls_server(make_server_cert(ca, expired=True))

    with VendorHttp(ca_certificate=ca.pem, sleep=no_sleep) as http, pytest.raises(errors.TlsCertificateInvalid) as caught:
        http.request("GET", server.url)

    assert "could not be verified: the certificate has expired" in caught.value.message
    assert "must renew it" in caught.value.message


def test_a_ca_certificate_does_not_switch_off_verification_of_other_servers(tls_server, no_sleep):
    ours, theirs = make_ca("Our vendor's CA"), make_ca("Someone else's CA")
    trusted = tls_server(make_server_cert(ours))
    other = tls_server(make_server_cert(theirs))

    with VendorHttp(ca_certificate=ours.pem, sleep=no_sleep) as http:
        assert http.request("GET", trusted.url).status_code == 200
        with pytest.raises(errors.TlsCertificateInvalid, match="we do not trust"):
            http.request("GET", other.url)
    # And another client, without it, trusts neither.
    with VendorHttp(sleep=no_sleep) as http, pytest.raises(errors.TlsCertificateInvalid):
        http.request("GET", trusted.url)
    assert other.requests == []


def test_verification_cannot_be_switched_off(tls_server):
    server = tls_server(make_server_cert())

    with VendorHttp() as http:
        with pytest.raises(ValueError, match="always verifies"):
            http.request("GET", server.url, verify=False)
        http.session.verify = False
        with pytest.raises(ValueError, match="always verifies"):
            http.request("GET", server.url)
    assert server.requests == []


def test_the_outbound_policy_still_checks_the_address_with_a_ca_certificate(tls_server, settings):
    ca = make_ca()
    server = tls_server(make_server_cert(ca))
    settings.OUTBOUND_ALLOWED_NETWORKS = []

    with VendorHttp(ca_certificate=ca.pem) as http, pytest.raises(errors.DestinationRefused, match="loopback"):
        http.request("GET", server.url)
    assert server.requests == []


# -- the setting -------------------------------------------------------------------------

PREFIX = "Setting 'ca_certificate' is not a PEM certificate: "


@pytest.mark.parametrize(
    ("pem", "problem"),
    [
        ("", "it is empty."),
        ("my certificate", "it has no -----BEGIN CERTIFICATE----- block."),
        (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "a certificate block is damaged or incomplete. Copy the whole block again, "
            "from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----.",
        ),
        (
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "it holds a private key. Paste only the certificate authority's certificate, never a key.",
        ),
        (42, "it must be the text of the certificate"),
    ],
)
def test_a_ca_certificate_that_is_not_pem_is_a_clear_problem(pem, problem):
    assert ca_certificate_problem(pem).startswith(PREFIX + problem)


def test_a_valid_ca_certificate_has_no_problem():
    assert ca_certificate_problem(make_ca().pem) is None
    assert ca_certificate_problem(make_ca().pem + make_ca("Second").pem) is None


def test_a_client_with_an_unreadable_ca_certificate_sends_nothing(tls_server):
    server = tls_server(make_server_cert())
    block = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"

    with VendorHttp(ca_certificate=block) as http, pytest.raises(errors.TlsCertificateInvalid) as caught:
        http.request("GET", server.url)

    assert caught.value.message.startswith(PREFIX + "a certificate block is damaged or incomplete.")
    assert http.counters.http_requests == 0
    assert server.requests == []


def test_for_integration_trusts_the_integrations_ca_certificate(tls_server, settings):
    ca = make_ca()
    server = tls_server(make_server_cert(ca))
    integration = SimpleNamespace(settings={"ca_certificate": ca.pem})

    with VendorHttp.for_integration(integration) as http:
        assert http.request("GET", server.url).status_code == 200
        assert (http.wait_for_rate_limits, http.budget) == (True, None)
    with VendorHttp.for_integration(integration, web=True) as web:
        assert web.request("GET", server.url).status_code == 200
        assert (web.wait_for_rate_limits, web.budget) == (False, settings.WEB_VENDOR_BUDGET_SECONDS)
    with VendorHttp.for_integration(SimpleNamespace(settings={"ca_certificate": ""})) as http:
        with pytest.raises(errors.TlsCertificateInvalid, match="self-signed|do not trust"):
            http.request("GET", server.url)


# -- the catalog -------------------------------------------------------------------------


def test_the_catalog_has_the_tls_code_as_a_configuration_problem(error_catalog):
    from issues.models import ErrorCode

    code = ErrorCode.objects.get(code=errors.TlsCertificateInvalid.code)
    assert (code.category, code.retryable) == (ErrorCode.Category.CONFIGURATION, False)
    assert "ca_certificate" in code.customer_advice and code.title and code.support_notes
