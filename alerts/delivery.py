"""Sending alert emails: at once when action is needed, grouped per tenant when they can wait.

Alerts that ask for action (authentication failing, credentials invalid,
repeated failures) and the news that should not wait (recovered, quality
assurance) are sent as soon as they are raised: `rules.raise_alerts` queues
`deliver` on the urgent cluster after commit, and the every-minute
`alerts-delivery` schedule catches up a lost task. Each is the first alert
of its streak (one per integration, rule and streak), so nothing sent
earlier holds it back.

The others (credentials expiring, no success for a while, vendor-wide
incidents) wait in a digest: the first opens a window of
ALERT_DIGEST_WINDOW for its tenant, every alert raised before the window
ends joins it, and the sweep sends them in one email when it has ended. An
alert raised after that opens the next window.

An alert is claimed (pending -> sending, with a lease) before its email goes
out and marked sent after; an SMTP failure puts it back with a later
attempt, so nothing is lost and a claimed alert is not sent by two workers.
An alert with nobody left to send to fails, saying so (the integration page
shows it with the fix).
"""

import logging
import smtplib
from datetime import timedelta

from django.conf import settings
from django.core.mail import get_connection
from django.db import transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone
from django_q.tasks import async_task

from alerts import messages
from alerts import metrics
from alerts.models import Alert
from integrations import reauth
from integrations.models import IntegrationEvent, Tenant
from integrations.status import IllegalTransition

logger = logging.getLogger(__name__)

# SMTP down or refusing; BadHeaderError and a malformed address (ValueError)
# are retried too rather than left in `sending`: they are logged, and a
# later fix of the tenant's data lets the alert go out.
SEND_ERRORS = (smtplib.SMTPException, OSError, ValueError)
LEASE = timedelta(minutes=5)
R = Alert.Rule
# Alerts that may wait for the tenant's digest; every other rule is sent at once.
DIGESTIBLE = (R.CREDENTIALS_EXPIRING, R.STALE, R.INCIDENT)
NO_RECIPIENTS = "No recipients: the tenant has no alert addresses or members who receive alerts."


class NoRecipients(Exception):
    pass


def enqueue(alert_id):
    """Deliver on the urgent cluster: an alert must not wait behind the scheduled sync backlog."""
    async_task(
        "alerts.tasks.deliver_alert",
        alert_id,
        task_name=f"alert-{alert_id}",
        group="alerts",
        cluster=settings.URGENT_CLUSTER,
    )


def _send(alerts, now):
    """Send `alerts` as one email per copy, with fresh re-authentication links where they ask for one.

    Returns the addresses it went to. A link is made here, when the email
    goes out, so its token exists only in the email: the alert keeps the
    link's id. The links are made in the same transaction as the send; if
    the SMTP server refuses, they are rolled back and the links sent earlier
    stay valid. Delivery is at least once: when a later copy fails, the
    whole email is sent again at the next attempt.
    """
    recipients = sorted({r for a in alerts for r in a.recipients})
    with transaction.atomic():
        copies = messages.copies_for(alerts[0].tenant_id, recipients)
        if not copies:
            raise NoRecipients(NO_RECIPIENTS)
        addresses = [address for copy in copies for address in copy.to]
        urls, link_ids = {}, {}
        for alert in alerts:
            if alert.context.get("wants_reauth_link"):
                try:
                    new = reauth.create_link(alert.integration, recipient=addresses[0], now=now, send=False)
                except IllegalTransition:  # deleted since the alert was raised
                    continue
                urls[alert.pk], link_ids[alert.pk] = new.url, new.link.pk
        get_connection().send_messages(messages.build(alerts, copies, urls))
        for alert in alerts:
            if alert.pk in link_ids:
                Alert.objects.filter(pk=alert.pk).update(context={**alert.context, "reauth_link_id": link_ids[alert.pk]})
    return addresses


def _claim(queryset, now):
    return queryset.update(state=Alert.State.SENDING, lease_expires_at=now + LEASE, attempts=F("attempts") + 1)


def _mark_sent(alerts, addresses, now):
    """Sent: each alert keeps the addresses it actually went to; the timeline says so."""
    sent_to = {}
    for alert in alerts:
        sent_to[alert.pk] = [r for r in alert.recipients if r in addresses]
        Alert.objects.filter(pk=alert.pk, state=Alert.State.SENDING).update(
            state=Alert.State.SENT, sent_at=now, lease_expires_at=None, last_error="", recipients=sent_to[alert.pk]
        )
    IntegrationEvent.objects.bulk_create(
        [
            IntegrationEvent(
                integration_id=a.integration_id,
                kind=IntegrationEvent.Kind.ALERT_SENT,
                note=f"{a.get_rule_display()} alert sent to {', '.join(sent_to[a.pk])}"
                + (" (in a digest)." if len(alerts) > 1 else "."),
                created_at=now,
            )
            for a in alerts
        ]
    )
    metrics.alerts_sent(alerts, now)


def _mark_failed(alerts, reason):
    Alert.objects.filter(pk__in=[a.pk for a in alerts], state=Alert.State.SENDING).update(
        state=Alert.State.FAILED, failure=Alert.Failure.NO_RECIPIENTS, lease_expires_at=None, last_error=reason
    )
    logger.warning("%d alert(s) of tenant %s not sent: %s", len(alerts), alerts[0].tenant_id, reason)


def _retry_delay(attempts):
    return min(timedelta(seconds=30 * 2 ** min(attempts - 1, 10)), settings.ALERT_RETRY_MAX)


def _put_back(alerts, now, error, state=Alert.State.PENDING):
    """After an SMTP failure: back to `state` (pending, or the digest it was in), tried again later."""
    delay = _retry_delay(max(a.attempts for a in alerts) + 1)
    with transaction.atomic():
        Alert.objects.filter(pk__in=[a.pk for a in alerts], state=Alert.State.SENDING).update(
            state=state, next_attempt_at=now + delay, lease_expires_at=None, last_error=error[:1000]
        )
        metrics.ALERT_SEND_FAILURES.inc()
    logger.warning("alert email failed (%s); %d alert(s) retried in %s", error, len(alerts), delay)


def _send_claimed(alerts, now, back_to=Alert.State.PENDING):
    """Send alerts this worker claimed; returns their new state."""
    try:
        addresses = _send(alerts, now)
    except NoRecipients as exc:
        _mark_failed(alerts, str(exc))
        return Alert.State.FAILED
    except SEND_ERRORS as exc:
        _put_back(alerts, now, f"{type(exc).__name__}: {exc}", back_to)
        return back_to
    with transaction.atomic():
        _mark_sent(alerts, addresses, now)
    return Alert.State.SENT


def digest_window(alert):
    """The end of the tenant's digest window `alert` joins, opening one if none is open at its raise time.

    The tenant's row is locked while deciding, so two alerts of one tenant
    delivered at once do not open two windows.
    """
    with transaction.atomic():
        Tenant.objects.select_for_update().filter(pk=alert.tenant_id).values_list("pk", flat=True).first()
        window = settings.ALERT_DIGEST_WINDOW
        ends_at = (
            Alert.objects.filter(
                tenant_id=alert.tenant_id,
                rule__in=DIGESTIBLE,
                digest_window_ends_at__gt=alert.created_at,
                digest_window_ends_at__lte=alert.created_at + window,
            )
            .exclude(pk=alert.pk)
            .order_by("digest_window_ends_at")
            .values_list("digest_window_ends_at", flat=True)
            .first()
        ) or alert.created_at + window
        Alert.objects.filter(pk=alert.pk, digest_window_ends_at=None).update(digest_window_ends_at=ends_at)
    return ends_at


def deliver(alert_id, now=None):
    """Send one pending alert, or put it in its tenant's digest. Returns its new state (None: nothing to do)."""
    now = now or timezone.now()
    due = Q(next_attempt_at=None) | Q(next_attempt_at__lte=now)
    alert = Alert.objects.filter(due, pk=alert_id, state=Alert.State.PENDING).first()
    if alert is None:
        return None
    if alert.rule in DIGESTIBLE and alert.digest_window_ends_at is None and digest_window(alert) > now:
        moved = Alert.objects.filter(pk=alert.pk, state=Alert.State.PENDING).update(state=Alert.State.DIGEST)
        return Alert.State.DIGEST if moved else None
    if not _claim(Alert.objects.filter(due, pk=alert_id, state=Alert.State.PENDING), now):
        return None  # another worker took it
    alert.refresh_from_db()
    return _send_claimed([alert], now)


def send_digests(now=None):
    """One email per tenant and ended window for the alerts that waited in it. Returns how many were sent."""
    now = now or timezone.now()
    due = Q(next_attempt_at=None) | Q(next_attempt_at__lte=now)
    windows = (
        Alert.objects.filter(due, state=Alert.State.DIGEST, digest_window_ends_at__lte=now)
        .order_by("digest_window_ends_at", "tenant_id")
        .values_list("tenant_id", "digest_window_ends_at")
        .distinct()
    )
    sent = 0
    for tenant_id, ends_at in list(windows[:500]):
        waiting = Alert.objects.filter(due, tenant_id=tenant_id, state=Alert.State.DIGEST, digest_window_ends_at=ends_at)
        ids = list(waiting.values_list("pk", flat=True))
        if not _claim(Alert.objects.filter(pk__in=ids, state=Alert.State.DIGEST), now):
            continue
        claimed = Alert.objects.filter(pk__in=ids, state=Alert.State.SENDING)
        alerts = list(claimed.select_related("integration").order_by("created_at", "pk"))
        if _send_claimed(alerts, now, back_to=Alert.State.DIGEST) == Alert.State.SENT:
            sent += 1
    return sent


def deliver_due(now=None):
    """The periodic sweep: retry pending alerts that are due, free abandoned claims, send ended digests."""
    now = now or timezone.now()
    # An abandoned digest goes back to its digest, everything else to pending.
    Alert.objects.filter(state=Alert.State.SENDING, lease_expires_at__lt=now, rule__in=DIGESTIBLE).exclude(
        digest_window_ends_at=None
    ).update(state=Alert.State.DIGEST, lease_expires_at=None, next_attempt_at=now)
    Alert.objects.filter(state=Alert.State.SENDING, lease_expires_at__lt=now).update(
        state=Alert.State.PENDING, lease_expires_at=None, next_attempt_at=now
    )
    due = Alert.objects.filter(
        Q(next_attempt_at=None) | Q(next_attempt_at__lte=now), state=Alert.State.PENDING
    ).values_list("pk", flat=True)
    results = [deliver(pk, now) for pk in list(due[:500])]
    return {"sent": results.count(Alert.State.SENT), "digests": send_digests(now)}


def send_test_email(recipient):
    """A sample alert email, to check the SMTP settings and the layout."""
    context = {
        "rule": "repeated_failures",
        "rule_label": "Test",
        "integration": "Example integration",
        "tenant": "Example tenant",
        "status_words": "Sync failing",
        "status_meaning": "This is a test email from SyncConsole: the alert emails look like this.",
        "reason": "The last sync failed (VENDOR_UNAVAILABLE); 10 unsuccessful in a row.",
        "error_code": "VENDOR_UNAVAILABLE",
        "error_title": "Vendor unavailable",
        # A real alert gives the catalog's advice for its error here; a test email asks for nothing.
        "error_advice": "In a real alert, what to do about the error is written here. This test email needs no action.",
        "what_next": "Next sync in 2 hours.",
        "portal_url": settings.SITE_URL + "/portal/",
        "reauth_url": "",
        "copy_kind": "staff",
        "support_email": settings.SUPPORT_EMAIL,
        "site_url": settings.SITE_URL,
    }
    messages.email(
        "[SyncConsole] Test email",
        render_to_string("alerts/email.txt", context),
        render_to_string("alerts/email.html", context),
        [recipient],
    ).send()
