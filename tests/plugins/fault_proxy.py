"""A loopback HTTP proxy in front of one real server, to alter the few answers a test is about.

For conditions a real server cannot be made to produce on purpose (a 500 on
one contact, a malformed answer, a refused sync token with another status):
every request is forwarded to the server as it came, and its answer sent
back, except where a rule the test set answers instead. The client talks to
the proxy's origin only, so the redirects the server sends (paths) stay
there. The proxy records what it received.

    with FaultProxy(server.url) as proxy:
        proxy.answer(lambda r: r.method == "GET" and r.path.endswith("/bob.vcf"), 500)

With `ssl_context` (a server-side context, tests/plugins/tls_server.py) the
proxy speaks HTTPS to its clients: a TLS front for a server that has none.
"""

import http.client
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {
    "connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "upgrade"
}


@dataclass(frozen=True)
class ProxiedRequest:
    method: str
    path: str
    headers: dict
    body: bytes


@dataclass
class Rule:
    when: object  # ProxiedRequest -> bool
    status: int
    body: bytes
    headers: dict


class FaultProxy:
    def __init__(self, upstream, *, ssl_context=None):
        parts = urlsplit(upstream)
        self.ssl_context = ssl_context
        self.upstream_host, self.upstream_port = parts.hostname, parts.port
        self.upstream_origin = f"{parts.scheme}://{parts.netloc}"
        self.rules = []
        self.requests = []
        self._server = None

    @property
    def url(self):
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}/"

    def answer(self, when, status, body=b"", headers=None):
        """Answer requests for which `when(request)` is true with this status and body instead."""
        self.rules.append(Rule(when, status, body, dict(headers or {})))

    def seen(self, method=None):
        return [r for r in self.requests if method is None or r.method == method]

    def start(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = ProxiedRequest(self.command, self.path, dict(self.headers.items()), body)
                proxy.requests.append(request)
                for rule in proxy.rules:
                    if rule.when(request):
                        return self.reply(rule.status, rule.headers, rule.body)
                status, headers, content = proxy.send_upstream(request)
                return self.reply(status, headers, content)

            def reply(self, status, headers, body):
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_OPTIONS = forward
            do_PROPFIND = do_PROPPATCH = do_REPORT = do_MKCOL = forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if self.ssl_context is not None:
            # Each handshake happens in the thread handling its connection, not in accept().
            self._server.socket = self.ssl_context.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def send_upstream(self, request):
        """(status, headers, body) of the real server's answer to `request`."""
        connection = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=30)
        try:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP | {"host"}}
            connection.request(request.method, request.path, body=request.body or None, headers=headers)
            response = connection.getresponse()
            content = response.read()
            answer_headers = {}
            for name, value in response.getheaders():
                if name.lower() == "location" and value.startswith(self.upstream_origin):
                    value = self.url.rstrip("/") + value[len(self.upstream_origin):]
                answer_headers[name] = value
            return response.status, answer_headers, content
        finally:
            connection.close()

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
