"""TLS peers on loopback: a certificate authority and certificates made with `cryptography`, and a TLS server.

`make_ca()` and `make_server_cert(ca)` issue what a test needs (a server
certificate without a CA is self-signed); `server_context(issued)` is the
server side's SSL context for one. The ``tls_server`` fixture (registered in
tests/conftest.py) starts the standard library's HTTP server behind `ssl`,
answering every GET with one JSON body; a test needing a real application
behind TLS puts a FaultProxy (tests/plugins/fault_proxy.py) with
`ssl_context=server_context(...)` in front of it.
"""

import datetime
import ipaddress
import json
import os
import ssl
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOOPBACK = ("localhost", "127.0.0.1")


# -- certificates ------------------------------------------------------------------------


class Issued:
    """A certificate and its key, as PEM text."""

    def __init__(self, cert, key):
        self.cert = cert
        self.key = key
        self.pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        self.key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _san(hosts):
    names = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def make_ca(common_name="Vendor Test CA"):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def make_server_cert(ca=None, hosts=LOOPBACK, expired=False):
    """A server certificate for `hosts`, issued by `ca` (self-signed without one)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    if expired:
        not_before, not_after = now - datetime.timedelta(days=60), now - datetime.timedelta(days=1)
    else:
        not_before, not_after = now - datetime.timedelta(days=1), now + datetime.timedelta(days=30)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca.cert.subject if ca else _name(hosts[0]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(_san(hosts), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    return Issued(builder.sign(ca.key if ca else key, hashes.SHA256()), key)


def server_context(issued):
    """The server side's SSL context presenting `issued` (ssl reads a certificate chain from files only)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory(prefix="tls-") as folder:
        cert_file, key_file = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
        with open(cert_file, "w") as handle:
            handle.write(issued.pem)
        with open(key_file, "w") as handle:
            handle.write(issued.key_pem)
        context.load_cert_chain(cert_file, key_file)
    return context


# -- a TLS server ------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.server.requests.append(self.path)
        body = json.dumps(self.server.body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client refusing the certificate ends the handshake: expected here


@pytest.fixture
def tls_server():
    """start(issued, body={"ok": True}) -> a served TLS server answering every GET with `body` as JSON.

    The server has `.origin` (https://127.0.0.1:PORT), `.url` (its /items),
    `.port` and `.requests` (the paths it answered, in order).
    """
    servers = []

    def start(issued, body=None):
        server = _Server(("127.0.0.1", 0), _Handler)
        # Each handshake happens in the thread handling its connection, not in accept().
        server.socket = server_context(issued).wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
        server.body = {"ok": True} if body is None else body
        server.requests = []
        server.port = server.server_address[1]
        server.origin = f"https://127.0.0.1:{server.port}"
        server.url = f"{server.origin}/items"
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
