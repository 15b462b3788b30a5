"""TLS for VendorHttp: an integration's own CA certificate, and certificate failures in plain words.

Verification is never switched off. `trusting(pem)` is an SSL context that
verifies against certifi's CAs (what requests trusts by default) and the
certificates in `pem`; `ca_certificate_problem(pem)` says, for a form or a
validator, why a pasted setting cannot be used. `certificate_failure()` turns
OpenSSL's verify message into what failed and what to do about it.
"""

import ssl
from urllib.parse import urlsplit

import certifi
from cryptography import x509
from urllib3.util.ssl_ import create_urllib3_context
from urllib3.util.ssl_match_hostname import CertificateError

# What a certificate that does not verify raises: OpenSSL's error, or urllib3's
# own host name check where it makes it.
VERIFY_ERRORS = (ssl.SSLCertVerificationError, CertificateError)

_PREFIX = "Setting 'ca_certificate' is not a PEM certificate:"
_NOT_TRUSTED = (
    "If the server uses its own certificate authority, add its CA certificate (PEM) to the "
    "integration's settings as ca_certificate."
)
_WRONG_HOST = (
    "Check the server address in the integration's settings: it must be the host name the "
    "certificate was issued for."
)
# OpenSSL's verify messages for the usual failures: (what failed, what to do).
_UNKNOWN_ISSUER = ("issued by a certificate authority we do not trust", _NOT_TRUSTED)
_REASONS = {
    "self-signed certificate": ("self-signed certificate", _NOT_TRUSTED),
    "self-signed certificate in certificate chain": (
        "a self-signed certificate authority in the chain",
        _NOT_TRUSTED,
    ),
    "unable to get local issuer certificate": _UNKNOWN_ISSUER,
    "unable to get issuer certificate": _UNKNOWN_ISSUER,
    "certificate has expired": (
        "the certificate has expired",
        "The vendor (or whoever runs the server) must renew it.",
    ),
    "certificate is not yet valid": (
        "the certificate is not valid yet",
        "Check the server's clock and its certificate's start date.",
    ),
}


def ca_certificate_problem(pem):
    """Why this `ca_certificate` setting cannot be used, in plain words, or None when it can."""
    if not isinstance(pem, str):
        return f"{_PREFIX} it must be the text of the certificate, from -----BEGIN CERTIFICATE-----."
    if not pem.strip():
        return f"{_PREFIX} it is empty."
    if "PRIVATE KEY-----" in pem:
        return (
            f"{_PREFIX} it holds a private key. "
            "Paste only the certificate authority's certificate, never a key."
        )
    if "-----BEGIN CERTIFICATE-----" not in pem:
        return f"{_PREFIX} it has no -----BEGIN CERTIFICATE----- block."
    try:
        x509.load_pem_x509_certificates(pem.encode())
        ssl.create_default_context().load_verify_locations(cadata=pem)
    except (ValueError, ssl.SSLError):
        return (
            f"{_PREFIX} a certificate block is damaged or incomplete. Copy the whole block again, "
            "from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----."
        )
    return None


def trusting(pem):
    """An SSL context verifying against certifi's CAs and the certificates in `pem` (a usable one)."""
    context = create_urllib3_context()  # urllib3's defaults: certificates required, host names checked
    context.load_verify_locations(cafile=certifi.where())
    context.load_verify_locations(cadata=pem)
    return context


def certificate_failure(error, url):
    """The message for a certificate that did not verify (`error` is one of VERIFY_ERRORS)."""
    detail = (getattr(error, "verify_message", None) or str(error)).strip().rstrip(".")
    parts = urlsplit(url)
    if "mismatch" in detail.lower() or (isinstance(error, CertificateError) and "match" in detail):
        reason, hint = f"the certificate is for another host name, not {parts.hostname}", _WRONG_HOST
    else:
        reason, hint = _REASONS.get(detail.replace("self signed", "self-signed"), (detail, _NOT_TRUSTED))
    host = parts.netloc.rpartition("@")[2]
    return f"The vendor's TLS certificate could not be verified: {reason} (host {host}). {hint}"
