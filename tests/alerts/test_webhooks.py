"""Signed webhooks against a real local HTTP receiver."""

import hashlib
import hmac
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from alerts import tasks, webhooks
from alerts.models import WebhookDelivery, WebhookEndpoint
from integrations.models import Integration, SyncSession
from syncconsole import outbound

live = pytest.mark.django_db(transaction=True)
D = WebhookDelivery.State


class Receiver:
    """An HTTP server on 127.0.0.1 that records POSTs and answers scripted status codes (then 200)."""

    def __init__(self):
        self.requests = []
        self.script = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                code = receiver.script.pop(0) if receiver.script else 200
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def events(self, name=None):
        return [json.loads(r["body"]) for r in self.requests if name is None or r["headers"]["X-SyncConsole-Event"] == name]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.WEBHOOK_BACKOFF_SECONDS = 0
    r = Receiver()
    yield r
    r.close()


def emit_one(tenant, event="session.finished", data=None):
    with transaction.atomic():
        ids = webhooks.emit(tenant.pk, event, data or {"integration_id": 1}, timezone.now())
    assert len(ids) == 1
    return WebhookDelivery.objects.get(pk=ids[0])


@live
def test_signature_verifies_with_the_documented_recipe(receiver, alert_tenant):
    tenant = alert_tenant()
    endpoint, secret = webhooks.create_endpoint(tenant, receiver.url)
    assert secret.startswith("whsec_")
    assert secret not in endpoint.secret_ciphertext

    sent = emit_one(tenant, data={"integration_id": 7, "state": "failed"})
    sent.refresh_from_db()
    assert sent.state == D.SUCCEEDED

    (request,) = receiver.requests
    headers, body = request["headers"], request["body"]
    header = headers["X-SyncConsole-Signature"]
    assert webhooks.verify(secret, header, body)
    # The recipe by hand: HMAC-SHA256 over f"{t}." + raw body.
    parts = dict(p.split("=", 1) for p in header.split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)
    assert abs(int(parts["t"]) - timezone.now().timestamp()) < 60
    # Tampering, another secret or an old timestamp fail.
    assert not webhooks.verify(secret, header, body + b" ")
    assert not webhooks.verify("whsec_other", header, body)
    assert not webhooks.verify(secret, header, body, now=int(parts["t"]) + 3600)
    assert not webhooks.verify(secret, "garbage", body)

    payload = json.loads(body)
    assert payload["id"] == sent.pk
    assert payload["event"] == headers["X-SyncConsole-Event"] == "session.finished"
    assert payload["data"] == {"integration_id": 7, "state": "failed"}
    assert headers["X-SyncConsole-Delivery"] == str(sent.pk)
    assert headers["Content-Type"] == "application/json"


@live
def test_a_receiver_answering_500_three_times_gets_the_event_on_the_fourth_attempt(receiver, alert_tenant):
    tenant = alert_tenant()
    webhooks.create_endpoint(tenant, receiver.url)
    receiver.script = [500, 500, 500]

    d = emit_one(tenant)  # first attempt after commit
    d.refresh_from_db()
    assert (d.state, d.attempts, d.response_code, d.last_error) == (D.PENDING, 1, 500, "HTTP 500")
    assert d.latency_ms is not None

    assert webhooks.deliver(d.pk, now=timezone.now()) == D.PENDING
    assert tasks.deliver_due_webhooks() == [D.PENDING]
    d.refresh_from_db()
    assert (d.state, d.attempts, d.response_code) == (D.PENDING, 3, 500)

    assert webhooks.deliver(d.pk, now=timezone.now()) == D.SUCCEEDED
    d.refresh_from_db()
    assert (d.state, d.attempts, d.response_code, d.last_error) == (D.SUCCEEDED, 4, 200, "")
    assert d.latency_ms is not None and d.delivered_at is not None
    assert len(receiver.requests) == 4
    # The same delivery each time, each attempt signed.
    assert {json.loads(r["body"])["id"] for r in receiver.requests} == {d.pk}
    d.endpoint.refresh_from_db()
    assert d.endpoint.failing_since is None

    # Nothing is delivered twice after a success.
    assert webhooks.deliver(d.pk, now=timezone.now() + timedelta(hours=1)) is None
    assert tasks.deliver_due_webhooks() == []
    tasks.deliver_webhook(d.pk)
    assert len(receiver.requests) == 4
    d.refresh_from_db()
    assert d.attempts == 4


@live
def test_back_off_grows_exponentially(receiver, alert_tenant, settings):
    settings.WEBHOOK_BACKOFF_SECONDS = 30
    tenant = alert_tenant()
    webhooks.create_endpoint(tenant, receiver.url)
    receiver.script = [503, 503]
    d = emit_one(tenant)
    d.refresh_from_db()
    first_due = d.next_attempt_at
    assert webhooks.deliver(d.pk, now=first_due - timedelta(seconds=1)) is None  # not due yet
    assert len(receiver.requests) == 1
    assert webhooks.deliver(d.pk, now=first_due) == D.PENDING
    d.refresh_from_db()
    assert d.next_attempt_at - first_due == timedelta(seconds=60)


@live
def test_private_addresses_are_refused_unless_allowed(receiver, alert_tenant, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    tenant = alert_tenant()
    webhooks.create_endpoint(tenant, receiver.url)
    d = emit_one(tenant)
    d.refresh_from_db()
    assert d.state in (D.PENDING, D.FAILED)
    assert d.attempts == 1
    assert d.response_code is None
    assert "not allowed: a loopback address" in d.last_error and "127.0.0.1" in d.last_error
    assert receiver.requests == []
    assert "private network" in outbound.url_problem("http://10.0.0.5/hook")
    assert "link-local" in outbound.url_problem("http://169.254.169.254/latest/meta-data")
    assert "http:// or https://" in outbound.url_problem("ftp://example.com/hook")


@live
def test_an_endpoint_failing_for_longer_than_the_limit_is_disabled_with_a_notice(receiver, alert_tenant, settings):
    tenant = alert_tenant()
    endpoint, _ = webhooks.create_endpoint(tenant, receiver.url)
    receiver.script = [500] * 10
    d = emit_one(tenant)
    endpoint.refresh_from_db()
    assert endpoint.failing_since is not None and endpoint.active
    assert mail.outbox == []

    later = endpoint.failing_since + settings.WEBHOOK_DISABLE_AFTER + timedelta(minutes=1)
    assert webhooks.deliver(d.pk, now=later) == D.PENDING
    endpoint.refresh_from_db()
    assert not endpoint.active
    assert endpoint.disabled_at == later
    assert "HTTP 500" in endpoint.disabled_reason
    (notice,) = mail.outbox
    assert notice.subject == "[SyncConsole] Webhook endpoint disabled"
    assert notice.to == [tenant.alert_emails]
    assert receiver.url in notice.body
    # A disabled endpoint gets no new deliveries.
    with transaction.atomic():
        assert webhooks.emit(tenant.pk, "session.finished", {}, timezone.now()) == []


@live
def test_admin_resend_creates_a_new_delivery(receiver, alert_tenant, client, staff_user):
    tenant = alert_tenant()
    webhooks.create_endpoint(tenant, receiver.url)
    d = emit_one(tenant)
    assert len(receiver.requests) == 1

    client.force_login(staff_user)
    assert client.get("/admin/alerts/webhookdelivery/").status_code == 200
    response = client.post(
        "/admin/alerts/webhookdelivery/", {"action": "resend", "_selected_action": [d.pk]}, follow=True
    )
    assert response.status_code == 200
    assert "1 delivery queued again." in response.content.decode()
    assert WebhookDelivery.objects.count() == 2
    copy = WebhookDelivery.objects.exclude(pk=d.pk).get()
    assert (copy.event, copy.payload, copy.endpoint_id) == (d.event, d.payload, d.endpoint_id)
    copy.refresh_from_db()
    assert copy.state == D.SUCCEEDED
    assert len(receiver.requests) == 2
    assert [json.loads(r["body"])["id"] for r in receiver.requests] == [d.pk, copy.pk]


@live
def test_portal_admin_registers_an_endpoint_and_a_viewer_gets_403(receiver, alert_tenant, member, client):
    tenant = alert_tenant()
    client.force_login(member(tenant, role="admin"))
    assert client.get("/portal/webhooks/").status_code == 200
    response = client.post("/portal/webhooks/", {"url": receiver.url, "events": ["session.finished"]})
    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get(tenant=tenant)
    secret = webhooks.endpoint_secret(endpoint)
    assert secret in response.content.decode()
    assert endpoint.events == ["session.finished"]
    # Shown once.
    assert secret not in client.get("/portal/webhooks/").content.decode()

    client.force_login(member(tenant, role="viewer"))
    assert client.get("/portal/webhooks/").status_code == 403
    assert client.post("/portal/webhooks/", {"url": receiver.url}).status_code == 403
    assert WebhookEndpoint.objects.count() == 1


@live
def test_portal_refuses_private_addresses_when_not_allowed(receiver, alert_tenant, member, client, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    tenant = alert_tenant()
    client.force_login(member(tenant, role="admin"))
    response = client.post("/portal/webhooks/", {"url": receiver.url})
    assert response.status_code == 400
    assert not WebhookEndpoint.objects.exists()


@live
def test_real_syncs_emit_session_finished_and_status_changed(receiver, make_integration, sync, alert_tenant, vendor_simulator):
    tenant = alert_tenant()
    _, secret = webhooks.create_endpoint(tenant, receiver.url)
    integration = make_integration("healthy", tenant=tenant)

    first = sync(integration)
    assert integration.status == Integration.Status.ACTIVE
    finished = receiver.events("session.finished")
    assert [e["data"]["session_id"] for e in finished] == [first.pk]
    assert finished[0]["data"]["state"] == "succeeded"
    changed = receiver.events("integration.status_changed")
    assert [(e["data"]["from"], e["data"]["to"]) for e in changed] == [("setup", "active")]

    vendor_simulator.control(integration.settings["account"], fail=True)
    failed = sync(integration, kind=SyncSession.Kind.QUICK)
    finished = receiver.events("session.finished")
    assert finished[-1]["data"] == {
        "integration_id": integration.pk,
        "session_id": failed.pk,
        "state": "failed",
        "error_code": "VENDOR_UNAVAILABLE",
        "items_seen": failed.items_seen,
    }
    changed = receiver.events("integration.status_changed")
    assert [(e["data"]["from"], e["data"]["to"]) for e in changed] == [("setup", "active"), ("active", "failing")]
    for request in receiver.requests:
        assert webhooks.verify(secret, request["headers"]["X-SyncConsole-Signature"], request["body"])
    assert set(WebhookDelivery.objects.values_list("state", flat=True)) == {D.SUCCEEDED}
