"""Sending alert emails: once each, retried while SMTP is down, digested per tenant.

An alert is claimed (pending -> sending, with a lease) before its email goes
out and marked sent after; an SMTP failure puts it back to pending with a
later next attempt, so nothing is lost and a claimed alert is not sent by
two workers. A tenant that got an email within ALERT_DIGEST_WINDOW gets its
next alerts as one digest when the window has passed.
"""

import logging
import smtplib
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone
from django_q.tasks import async_task

from alerts.models import Alert
from integrations import reauth
from integrations.models import IntegrationEvent
from integrations.status import IllegalTransition

logger = logging.getLogger(__name__)

# SMTP down or refusing; BadHeaderError and a malformed address (ValueError)
# are retried too rather than left in `sending`: they are logged, and a
# later fix of the tenant's data lets the alert go out.
SEND_ERRORS = (smtplib.SMTPException, OSError, ValueError)
LEASE = timedelta(minutes=5)
# Alerts that may wait for the tenant's digest. Quality assurance goes to
# engineering; a recovery and syncs being paused are news that should not wait.
DIGESTIBLE = tuple(
    r
    for r in Alert.Rule.values
    if r not in (Alert.Rule.QUALITY_ASSURANCE, Alert.Rule.RECOVERED, Alert.Rule.CREDENTIALS_INVALID)
)


def enqueue(alert_id):
    async_task("alerts.tasks.deliver_alert", alert_id, task_name=f"alert-{alert_id}", group="alerts")


def render(alerts, reauth_urls=None):
    """(subject, text, html) for one alert or a digest of several; `reauth_urls` maps alert ids to fresh links."""
    reauth_urls = reauth_urls or {}
    if len(alerts) == 1:
        alert = alerts[0]
        context = {**alert.context, "reauth_url": reauth_urls.get(alert.pk, ""), "site_url": settings.SITE_URL}
        return (
            alert.subject,
            render_to_string("alerts/email.txt", context),
            render_to_string("alerts/email.html", context),
        )
    tenant = alerts[0].context.get("tenant", "")
    context = {
        "alerts": [{**a.context, "reauth_url": reauth_urls.get(a.pk, "")} for a in alerts],
        "tenant": tenant,
        "site_url": settings.SITE_URL,
    }
    return (
        f"[SyncConsole] {len(alerts)} alerts for {tenant}",
        render_to_string("alerts/digest.txt", context),
        render_to_string("alerts/digest.html", context),
    )


def _send(alerts, now):
    """Send one email for `alerts`, with fresh re-authentication links where they ask for one.

    A link is made here, when the email goes out, so its token exists only
    in the email: the alert keeps the link's id. The links are made in the
    same transaction as the send; if the SMTP server refuses, they are rolled
    back and the links sent earlier stay valid.
    """
    with transaction.atomic():
        urls, link_ids = {}, {}
        for alert in alerts:
            if alert.context.get("wants_reauth_link") and alert.recipients:
                try:
                    new = reauth.create_link(alert.integration, recipient=alert.recipients[0], now=now, send=False)
                except IllegalTransition:  # deleted since the alert was raised
                    continue
                urls[alert.pk], link_ids[alert.pk] = new.url, new.link.pk
        subject, text, html = render(alerts, urls)
        recipients = sorted({r for a in alerts for r in a.recipients})
        message = EmailMultiAlternatives(_one_line(subject), text, settings.DEFAULT_FROM_EMAIL, recipients)
        message.attach_alternative(html, "text/html")
        message.send()
        for alert in alerts:
            if alert.pk in link_ids:
                Alert.objects.filter(pk=alert.pk).update(context={**alert.context, "reauth_link_id": link_ids[alert.pk]})


def _one_line(text):
    """Header values never carry CR or LF (Django refuses them with BadHeaderError)."""
    return " ".join(str(text).split())


def _claim(queryset, now):
    return queryset.update(state=Alert.State.SENDING, lease_expires_at=now + LEASE, attempts=F("attempts") + 1)


def _mark_sent(alerts, now):
    Alert.objects.filter(pk__in=[a.pk for a in alerts], state=Alert.State.SENDING).update(
        state=Alert.State.SENT, sent_at=now, lease_expires_at=None, last_error=""
    )
    IntegrationEvent.objects.bulk_create(
        [
            IntegrationEvent(
                integration_id=a.integration_id,
                kind=IntegrationEvent.Kind.ALERT_SENT,
                note=f"{a.get_rule_display()} alert sent to {', '.join(a.recipients)}"
                + (" (in a digest)." if len(alerts) > 1 else "."),
                created_at=now,
            )
            for a in alerts
        ]
    )


def _put_back(alerts, now, error):
    attempts = max(a.attempts for a in alerts) + 1
    delay = min(timedelta(seconds=30 * 2 ** min(attempts - 1, 10)), settings.ALERT_RETRY_MAX)
    Alert.objects.filter(pk__in=[a.pk for a in alerts], state=Alert.State.SENDING).update(
        state=Alert.State.PENDING, next_attempt_at=now + delay, lease_expires_at=None, last_error=error[:1000]
    )
    logger.warning("alert email failed (%s); %d alert(s) retried in %s", error, len(alerts), delay)


def deliver(alert_id, now=None):
    """Send one pending alert (or hold it for the tenant's digest). Returns its new state."""
    now = now or timezone.now()
    due = Q(next_attempt_at=None) | Q(next_attempt_at__lte=now)
    alert = Alert.objects.filter(due, pk=alert_id, state=Alert.State.PENDING).first()
    if alert is None:
        return None
    if alert.rule in DIGESTIBLE and recently_emailed(alert.tenant_id, now, exclude=alert.pk):
        Alert.objects.filter(pk=alert.pk, state=Alert.State.PENDING).update(state=Alert.State.DIGEST)
        return Alert.State.DIGEST
    if not _claim(Alert.objects.filter(due, pk=alert_id, state=Alert.State.PENDING), now):
        return None  # another worker took it
    alert.refresh_from_db()
    try:
        _send([alert], now)
    except SEND_ERRORS as exc:
        _put_back([alert], now, f"{type(exc).__name__}: {exc}")
        return Alert.State.PENDING
    with transaction.atomic():
        _mark_sent([alert], now)
    return Alert.State.SENT


def recently_emailed(tenant_id, now, exclude=None):
    return (
        Alert.objects.filter(
            tenant_id=tenant_id, rule__in=DIGESTIBLE, state=Alert.State.SENT, sent_at__gte=now - settings.ALERT_DIGEST_WINDOW
        )
        .exclude(pk=exclude)
        .exists()
    )


def send_digests(now=None):
    """One email per tenant for the alerts that waited, once its window has passed."""
    now = now or timezone.now()
    sent = 0
    tenants = Alert.objects.filter(state=Alert.State.DIGEST).values_list("tenant_id", flat=True).distinct()
    for tenant_id in list(tenants):
        if recently_emailed(tenant_id, now):
            continue
        waiting = Alert.objects.filter(tenant_id=tenant_id, state=Alert.State.DIGEST)
        ids = list(waiting.values_list("pk", flat=True))
        if not _claim(Alert.objects.filter(pk__in=ids, state=Alert.State.DIGEST), now):
            continue
        alerts = list(Alert.objects.filter(pk__in=ids, state=Alert.State.SENDING).order_by("created_at"))
        try:
            _send(alerts, now)
        except SEND_ERRORS as exc:
            # Back to the digest queue, not to single sends.
            Alert.objects.filter(pk__in=ids, state=Alert.State.SENDING).update(
                state=Alert.State.DIGEST, lease_expires_at=None, last_error=f"{type(exc).__name__}: {exc}"[:1000]
            )
            continue
        with transaction.atomic():
            _mark_sent(alerts, now)
        sent += 1
    return sent


def deliver_due(now=None):
    """The periodic sweep: retry pending alerts that are due, free abandoned claims, send digests."""
    now = now or timezone.now()
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
        "error_advice": "Nothing to do on your side: we retry automatically with back-off.",
        "what_next": "Next sync in 2 hours.",
        "portal_url": settings.SITE_URL + "/portal/",
        "reauth_url": "",
        "site_url": settings.SITE_URL,
    }
    message = EmailMultiAlternatives(
        "[SyncConsole] Test email",
        render_to_string("alerts/email.txt", context),
        settings.DEFAULT_FROM_EMAIL,
        [recipient],
    )
    message.attach_alternative(render_to_string("alerts/email.html", context), "text/html")
    message.send()
