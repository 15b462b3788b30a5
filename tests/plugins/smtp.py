"""Pytest plugin: a real SMTP server (aiosmtpd) on loopback that keeps what it receives.

``SmtpServer`` runs an aiosmtpd ``Controller`` on 127.0.0.1 with a free port;
it can be stopped and started again on the same port to play an SMTP outage.
The ``smtp_server`` fixture starts one and points Django's email settings at
it (the SMTP backend, as EMAIL_URL=smtp://127.0.0.1:<port> would).
"""

import email
import email.policy
import socket
import threading
import time

import pytest
from aiosmtpd.controller import Controller


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Message:
    """One received message: envelope and the parsed email."""

    def __init__(self, mail_from, rcpt_tos, data):
        self.mail_from = mail_from
        self.rcpt_tos = list(rcpt_tos)
        self.raw = data
        self.email = email.message_from_bytes(data, policy=email.policy.default)

    @property
    def subject(self):
        return str(self.email["Subject"])

    def part(self, content_type):
        for part in self.email.walk():
            if part.get_content_type() == content_type and not part.is_multipart():
                return part.get_content()
        return None

    @property
    def text(self):
        return self.part("text/plain")

    @property
    def html(self):
        return self.part("text/html")

    def __repr__(self):
        return f"<Message {self.subject!r} to {self.rcpt_tos}>"


class _Handler:
    def __init__(self, sink):
        self.sink = sink

    async def handle_DATA(self, server, session, envelope):
        self.sink.append(Message(envelope.mail_from, envelope.rcpt_tos, envelope.original_content or envelope.content))
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self, port=None):
        self.port = port or free_port()
        self.messages = []
        self._lock = threading.Lock()
        self.controller = None

    def start(self):
        if self.controller is not None:
            return self
        # The port may linger briefly after a stop; retry for a moment.
        deadline = time.monotonic() + 10
        while True:
            controller = Controller(_Handler(self.messages), hostname="127.0.0.1", port=self.port)
            try:
                controller.start()
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
                continue
            self.controller = controller
            return self

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def running(self):
        return self.controller is not None

    def clear(self):
        del self.messages[:]

    def to(self, address):
        return [m for m in self.messages if address in m.rcpt_tos]

    def with_subject(self, words):
        return [m for m in self.messages if words in m.subject]


@pytest.fixture
def smtp_server(settings):
    """A started SMTP server; Django sends real SMTP to it for the test."""
    server = SmtpServer().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    try:
        yield server
    finally:
        server.stop()
