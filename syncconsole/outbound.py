"""The one outbound policy: every request made on a customer's or a vendor's behalf.

Connectors, credential checks, OAuth token URLs, CardDAV hrefs and webhooks
all send through a `requests.Session` made by `session()`. Its connections
check the address they are about to connect to *inside* the connect step, on
the address the name resolved to at that moment, so a name that resolves to a
public address when a form checks it and to 127.0.0.1 when the request goes
out (DNS rebinding) is still refused, and so is every redirect hop. Refused:
loopback, private, link-local, shared (100.64/10), multicast, reserved and
unspecified ranges, and IPv6 addresses that embed such an IPv4 address
(IPv4-mapped and -compatible, NAT64 64:ff9b::/96 and 64:ff9b:1::/48, 6to4,
Teredo). `OUTBOUND_ALLOWED_NETWORKS` (CIDRs) lets the demo and the tests reach
loopback; it is empty in production.

A refusal raises `DestinationRefused` before any byte is sent. It is not an
OSError, so neither urllib3 nor requests retries or rewraps it.

The same idea as Sentry's `sentry/net/socket.py` and `sentry/net/http.py`.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import _set_socket_options, allowed_gai_family
from urllib3.util.timeout import _DEFAULT_TIMEOUT

_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


class DestinationRefused(Exception):
    """The outbound policy refused to connect to `address` (what `host` resolved to)."""

    def __init__(self, host, address, reason):
        self.host = host
        self.address = address
        self.reason = reason
        where = host if host == address else f"{host} ({address})"
        super().__init__(f"Requests to {where} are not allowed: {reason}.")


def allowed_networks():
    return [ipaddress.ip_network(cidr, strict=False) for cidr in settings.OUTBOUND_ALLOWED_NETWORKS]


def _embedded_ipv4(address):
    """The IPv4 address inside an IPv6 one (mapped, compatible, NAT64, 6to4, Teredo), or None."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # (server, client): the client address is the one reached
    if any(address in network for network in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _IPV4_COMPATIBLE and int(address) > 1:  # :: and ::1 are themselves
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _ipv4_refusal(address):
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if address.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if address.is_multicast:
        return "a multicast address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private network address"
    if not address.is_global:
        return "a reserved address"
    return None


def refusal_reason(address, networks=None):
    """Why connecting to this IP address is refused, or None when it is allowed."""
    networks = allowed_networks() if networks is None else networks
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    candidates = [ip]
    if ip.version == 6:
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            candidates.append(embedded)
    if any(candidate in network for candidate in candidates for network in networks if candidate.version == network.version):
        return None
    if ip.version == 4:
        return _ipv4_refusal(ip)
    if len(candidates) == 2:
        reason = _ipv4_refusal(candidates[1])
        if reason:
            return f"an IPv6 form of {candidates[1]}, {reason}"
        return None
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local or ip.is_site_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private network address"
    if ip.is_reserved or not ip.is_global:
        return "a reserved address"
    return None


def create_connection(address, timeout, source_address=None, socket_options=None):
    """urllib3's create_connection, checking each resolved address before connecting to it."""
    host, port = address
    host = host.strip("[]")
    networks = allowed_networks()
    error = None
    for family, socktype, proto, _, sockaddr in socket.getaddrinfo(host, port, allowed_gai_family(), socket.SOCK_STREAM):
        reason = refusal_reason(sockaddr[0], networks)
        if reason:
            raise DestinationRefused(host, sockaddr[0], reason)
        sock = None
        try:
            sock = socket.socket(family, socktype, proto)
            _set_socket_options(sock, socket_options)
            if timeout is not _DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            error = exc
            if sock is not None:
                sock.close()
    if error is not None:
        raise error
    raise OSError(f"getaddrinfo returned no address for {host}")


class _CheckedConnect:
    def _new_conn(self):
        try:
            return create_connection(
                (self._dns_host, self.port),
                self.timeout,
                source_address=self.source_address,
                socket_options=self.socket_options,
            )
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, f"Connection to {self.host} timed out.") from exc
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc


class CheckedHTTPConnection(_CheckedConnect, HTTPConnection):
    pass


class CheckedHTTPSConnection(_CheckedConnect, HTTPSConnection):
    pass


class CheckedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = CheckedHTTPConnection


class CheckedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = CheckedHTTPSConnection


class CheckedAdapter(HTTPAdapter):
    """An HTTPAdapter whose pools connect only where the policy allows.

    `ssl_context`, when given, is the one its HTTPS connections verify with
    (it must verify: requests still asks for CERT_REQUIRED).
    """

    def __init__(self, ssl_context=None, **kwargs):
        self.ssl_context = ssl_context  # read by init_poolmanager, which HTTPAdapter.__init__ calls
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        if self.ssl_context is not None:
            kwargs["ssl_context"] = self.ssl_context
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": CheckedHTTPConnectionPool,
            "https": CheckedHTTPSConnectionPool,
        }

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        # Through a proxy the address checked would be the proxy's.
        raise DestinationRefused(proxy, proxy, "outbound requests do not go through proxies")


def session(user_agent="SyncConsole/1.0", ssl_context=None):
    """A requests Session bound by the policy; the only way this project talks to customers' hosts.

    `ssl_context` is the TLS context its HTTPS connections verify with: a
    vendor's private certificate authority trusted besides the usual ones.
    """
    http = requests.Session()
    http.trust_env = False  # no proxies or netrc credentials from the environment
    http.headers["User-Agent"] = user_agent
    adapter = CheckedAdapter(ssl_context)
    http.mount("http://", adapter)
    http.mount("https://", adapter)
    return http


def origin(url):
    """(scheme, host, port) with default ports filled in: what "the same origin" compares."""
    parts = urlsplit(url)
    scheme = (parts.scheme or "").lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def url_problem(url):
    """A person-readable reason this URL cannot be used, or None.

    A convenience for forms (a clear message at once); the connect-time check
    above is what actually protects, whatever the name resolves to later.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return "That is not a valid URL."
    if parts.scheme.lower() not in ("http", "https"):
        return "The URL must start with http:// or https://."
    if not parts.hostname:
        return "The URL has no host name."
    if parts.username or parts.password:
        return "Put credentials in their own fields, not in the URL."
    host = parts.hostname
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, parts.port or 443, 0, socket.SOCK_STREAM)}
    except (socket.gaierror, UnicodeError):
        return f"The host name {host} could not be resolved."
    networks = allowed_networks()
    for address in sorted(addresses):
        reason = refusal_reason(address, networks)
        if reason:
            return str(DestinationRefused(host, address, reason))
    return None
