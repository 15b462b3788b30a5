"""Signed webhooks: deliveries recorded, sent by django-q2 with back-off, through the outbound policy.

Signature: header `X-SyncConsole-Signature: t=<unix seconds>,v1=<hex>` where
hex = HMAC-SHA256(secret, f"{t}.{raw body}"). Check it by recomputing over
the raw body and comparing in constant time; refuse old timestamps.
"""

import hashlib
import hmac
import json
import secrets
import time
from datetime import timedelta

import requests
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_q.tasks import async_task

from alerts import metrics
from alerts.models import WebhookDelivery, WebhookEndpoint
from alerts.recipients import tenant_recipients
from audit import services as audit
from audit.models import AuditRecord
from integrations import crypto
from syncconsole import outbound

SIGNATURE_HEADER = "X-SyncConsole-Signature"


def sign(secret, timestamp, body):
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret, header, body, *, tolerance=300, now=None):
    """The documented recipe, for receivers (and tests)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header)


def create_endpoint(tenant, url, events=()):
    """A new endpoint; returns (endpoint, secret). The secret is shown once."""
    secret = "whsec_" + secrets.token_urlsafe(32)
    endpoint = WebhookEndpoint.objects.create(
        tenant=tenant, url=url, events=list(events), secret_ciphertext=crypto.encrypt_json({"secret": secret})
    )
    audit.record(
        AuditRecord.Action.WEBHOOK_CREATED,
        tenant=tenant,
        target=url,
        changes={"endpoint_id": endpoint.pk, "events": list(events)},
    )
    return endpoint, secret


def delete_endpoint(endpoint):
    """Remove a tenant's endpoint (and its deliveries)."""
    audit.record(AuditRecord.Action.WEBHOOK_DELETED, tenant=endpoint.tenant_id, target=endpoint.url, changes={"endpoint_id": endpoint.pk})
    endpoint.delete()


def endpoint_secret(endpoint):
    return crypto.decrypt_json(endpoint.secret_ciphertext)["secret"]


def emit(tenant_id, event, data, now):
    """Record a delivery per endpoint that wants the event; send each after commit."""
    endpoints = [e for e in WebhookEndpoint.objects.filter(tenant_id=tenant_id, active=True) if e.wants(event)]
    if not endpoints:
        return []
    payload = {"event": event, "created_at": now.isoformat(), "data": data}
    deliveries = WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(endpoint=e, event=event, payload=payload, created_at=now, next_attempt_at=now) for e in endpoints]
    )
    ids = [d.pk for d in deliveries if d.pk]
    if not ids:  # backends without RETURNING: read them back
        ids = list(WebhookDelivery.objects.filter(endpoint__in=endpoints, event=event, created_at=now).values_list("pk", flat=True))
    for pk in ids:
        transaction.on_commit(lambda pk=pk: enqueue_delivery(pk))
    return ids


def enqueue_delivery(delivery_id):
    async_task("alerts.tasks.deliver_webhook", delivery_id, task_name=f"webhook-{delivery_id}", group="webhooks")


def on_event(event, now):
    """The deliveries an integration event causes; returns their ids.

    A finished session is `session.finished` (and `issue.opened` /
    `issue.resolved` for the items whose issues it opened or resolved); a
    status change, whoever made it, is `status.changed`.
    """
    integration = event.integration
    Kind = type(event).Kind
    if event.kind == Kind.STATUS_CHANGED:
        return emit(
            integration.tenant_id,
            WebhookEndpoint.Event.STATUS_CHANGED,
            {
                "integration_id": integration.pk,
                "name": integration.name,
                "from": event.from_status,
                "to": event.to_status,
                "reason": event.data.get("reason", event.note),
            },
            now,
        )
    if event.kind != Kind.SESSION_FINISHED or event.session is None:
        return []
    session = event.session
    ids = emit(
        integration.tenant_id,
        WebhookEndpoint.Event.SESSION_FINISHED,
        {
            "integration_id": integration.pk,
            "session_id": session.pk,
            "state": session.state,
            "error_code": session.error_code_id,
            "items_seen": session.items_seen,
        },
        now,
    )
    for kind, key in ((WebhookEndpoint.Event.ISSUE_OPENED, "issues_opened"), (WebhookEndpoint.Event.ISSUE_RESOLVED, "issues_resolved")):
        external_ids = event.data.get(key) or []
        if external_ids:
            ids += emit(
                integration.tenant_id,
                kind,
                {
                    "integration_id": integration.pk,
                    "session_id": session.pk,
                    "count": event.data.get(f"{key}_count", len(external_ids)),
                    "external_ids": external_ids,
                },
                now,
            )
    return ids


def deliver(delivery_id, now=None):
    """Attempt one delivery if it is due; returns its state afterwards."""
    now = now or timezone.now()
    claimed = WebhookDelivery.objects.filter(
        Q(lease_expires_at=None) | Q(lease_expires_at__lt=now),
        pk=delivery_id,
        state=WebhookDelivery.State.PENDING,
        next_attempt_at__lte=now,
    ).update(lease_expires_at=now + timedelta(seconds=settings.WEBHOOK_TIMEOUT * 3))
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("endpoint", "endpoint__tenant").get(pk=delivery_id)
    endpoint = delivery.endpoint
    body = json.dumps({"id": delivery.pk, **delivery.payload}, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "SyncConsole-Webhooks/1.0",
        "X-SyncConsole-Event": delivery.event,
        "X-SyncConsole-Delivery": str(delivery.pk),
        SIGNATURE_HEADER: sign(endpoint_secret(endpoint), int(now.timestamp()), body),
    }
    code, error = None, ""
    started = time.monotonic()
    try:
        with outbound.session("SyncConsole-Webhooks/1.0") as http:
            # The receiver's body is never read: only its status counts.
            response = http.post(
                endpoint.url, data=body, headers=headers, timeout=settings.WEBHOOK_TIMEOUT, allow_redirects=False, stream=True
            )
            response.close()
        code = response.status_code
        if not 200 <= code < 300:
            error = f"HTTP {code}"
    except outbound.DestinationRefused as exc:
        error = str(exc)
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    latency = int((time.monotonic() - started) * 1000)
    attempts = delivery.attempts + 1
    if not error:
        with transaction.atomic():
            WebhookDelivery.objects.filter(pk=delivery.pk).update(
                state=WebhookDelivery.State.SUCCEEDED,
                attempts=attempts,
                response_code=code,
                latency_ms=latency,
                delivered_at=now,
                lease_expires_at=None,
                last_error="",
            )
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
            metrics.webhook_attempted(delivered=True, latency_ms=latency, gave_up=False)
        return WebhookDelivery.State.SUCCEEDED
    gave_up = attempts >= settings.WEBHOOK_MAX_ATTEMPTS
    with transaction.atomic():
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            state=WebhookDelivery.State.FAILED if gave_up else WebhookDelivery.State.PENDING,
            attempts=attempts,
            response_code=code,
            latency_ms=latency,
            last_error=error,
            lease_expires_at=None,
            next_attempt_at=now + timedelta(seconds=settings.WEBHOOK_BACKOFF_SECONDS * (2 ** (attempts - 1))),
        )
        metrics.webhook_attempted(delivered=False, latency_ms=latency, gave_up=gave_up)
    failing_since = endpoint.failing_since or now
    WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since=None).update(failing_since=now)
    if now - failing_since >= settings.WEBHOOK_DISABLE_AFTER:
        disable(endpoint, now, f"Failing since {failing_since:%Y-%m-%d %H:%M} UTC: {error}")
    return WebhookDelivery.State.FAILED if gave_up else WebhookDelivery.State.PENDING


def disable(endpoint, now, reason):
    if not WebhookEndpoint.objects.filter(pk=endpoint.pk, active=True).update(
        active=False, disabled_at=now, disabled_reason=reason[:300]
    ):
        return
    audit.record(
        AuditRecord.Action.WEBHOOK_DISABLED,
        tenant=endpoint.tenant_id,
        target=endpoint.url,
        changes={"endpoint_id": endpoint.pk, "reason": reason[:300]},
        now=now,
    )
    recipients = tenant_recipients(endpoint.tenant)
    if recipients:
        send_mail(
            "[SyncConsole] Webhook endpoint disabled",
            f"The webhook endpoint {endpoint.url} of {endpoint.tenant.name} failed for a day and was disabled.\n"
            f"{reason}\n\nFix the receiver, then enable it again in the portal or ask support.",
            None,
            recipients,
            fail_silently=True,
        )


def resend(delivery, now=None):
    """A fresh delivery of the same event to the same endpoint."""
    now = now or timezone.now()
    copy = WebhookDelivery.objects.create(
        endpoint=delivery.endpoint, event=delivery.event, payload=delivery.payload, created_at=now, next_attempt_at=now
    )
    transaction.on_commit(lambda: enqueue_delivery(copy.pk))
    return copy
