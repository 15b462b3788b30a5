"""Alert rules: which alerts a finished session, a status change or the clock raises.

An Alert row is unique per (integration, rule, streak), the streak being
named by when it started; each is inserted in its own savepoint, so retries
and concurrent workers raise (and deliver, and announce) each alert once. Rows are written in
the caller's transaction and delivered after it commits.
"""

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction

from alerts import webhooks
from alerts.delivery import NO_RECIPIENTS, enqueue
from alerts.models import Alert
from alerts.recipients import (
    tenant_recipients,  # noqa: F401 (also used by callers as rules.tenant_recipients)
)
from integrations import events
from integrations import status as machine
from integrations.models import Integration
from integrations.selectors import customer_words, what_next

R = Alert.Rule
Status = Integration.Status


def _iso(moment):
    return moment.isoformat(timespec="seconds") if moment else "none"


def email_context(integration, rule, *, session=None, now, reauth=False, extra=None, facts=None):
    """What the email says, frozen when the alert is raised; `facts` are the event's (else the row's)."""
    headline, meaning = customer_words(integration)
    code = session.error_code if session is not None and session.error_code_id else None
    return {
        "rule": rule,
        "rule_label": Alert.Rule(rule).label,
        "integration": integration.name,
        "integration_id": integration.pk,
        "tenant": integration.tenant.name,
        "status": integration.status,
        "status_words": headline,
        "status_meaning": meaning,
        "reason": integration.status_reason,
        "error_code": code.code if code else "",
        "error_title": code.title if code else "",
        "error_advice": code.customer_advice if code else "",
        "error_message": session.error_message if session is not None else "",
        "consecutive_unsuccessful": (facts or integration).consecutive_unsuccessful,
        "what_next": what_next(integration, now),
        # Links (the portal, re-authentication, unsubscribe) are made when the
        # email is sent (alerts.messages, alerts.delivery): they follow
        # SITE_URL as it is then, and no live token is ever stored with the alert.
        "wants_reauth_link": reauth,
        "raised_at": _iso(now),
        **(extra or {}),
    }


SUBJECTS = {
    R.REPEATED_FAILURES: "{n} syncs in a row failed: {integration}",
    R.AUTH_FAILING: "Re-authentication needed: {integration}",
    R.CREDENTIALS_INVALID: "Syncs paused, new credentials needed: {integration}",
    R.CREDENTIALS_EXPIRING: "Credentials expire soon: {integration}",
    R.STALE: "No successful sync for a while: {integration}",
    R.QUALITY_ASSURANCE: "Quality assurance: {integration} ({tenant})",
    R.RECOVERED: "Recovered: {integration}",
    R.INCIDENT: "Vendor problem affecting {integration}",
}


def build(
    integration,
    rule,
    streak,
    now,
    *,
    recipients,
    session=None,
    reauth=False,
    extra=None,
    state=Alert.State.PENDING,
    incident=None,
    facts=None,
):
    """An unsaved Alert; `raise_alerts` inserts it if it is new."""
    context = email_context(
        integration, rule, session=session, now=now, reauth=reauth and bool(recipients), extra=extra, facts=facts
    )
    subject = SUBJECTS[rule].format(
        n=(facts or integration).consecutive_unsuccessful, integration=integration.name, tenant=integration.tenant.name
    )
    return Alert(
        integration=integration,
        tenant_id=integration.tenant_id,
        rule=rule,
        streak=streak[:100],
        state=state if recipients else Alert.State.FAILED,
        recipients=recipients,
        subject=f"[SyncConsole] {subject}"[:300],
        context=context,
        incident=incident,
        created_at=now,
        failure="" if recipients else Alert.Failure.NO_RECIPIENTS,
        last_error="" if recipients else NO_RECIPIENTS,
    )


def raise_alerts(alerts):
    """Insert the alerts that are new; queue their delivery after commit. Returns the new ones."""
    stored = []
    for alert in alerts:
        # One savepoint each: the unique constraint says who raised it first;
        # whoever loses queues and emits nothing.
        try:
            with transaction.atomic():
                alert.save(force_insert=True)
        except IntegrityError:
            continue
        stored.append(alert)

    for alert in stored:
        if alert.state == Alert.State.PENDING:
            transaction.on_commit(lambda pk=alert.pk: enqueue(pk))
        webhooks.emit(
            alert.tenant_id,
            "alert.raised",
            {"alert_id": alert.pk, "rule": alert.rule, "integration_id": alert.integration_id, "state": alert.state},
            alert.created_at,
        )
    return stored


def on_session_finished(event, incident, now):
    """The alerts a finished session's event causes (inside the consumer's transaction); returns those raised.

    `incident` is the open incident matching this failure (its repeated-failure
    alerts are held back), or None.
    """
    integration, session = event.integration, event.session
    before = events.facts_from_data(event.data.get("before", {}))
    after = events.facts_from_data(event.data.get("after", {}))
    tenant = integration.tenant
    recipients = tenant_recipients(tenant)
    alerts = []

    unsuccessful = after.last_outcome in machine.UNSUCCESSFUL
    if unsuccessful and after.consecutive_unsuccessful >= tenant.alert_threshold():
        held = incident is not None and session is not None and incident.error_code_id == session.error_code_id
        alerts.append(
            build(
                integration,
                R.REPEATED_FAILURES,
                _iso(after.unsuccessful_since),
                now,
                recipients=recipients,
                session=session,
                state=Alert.State.HELD if held else Alert.State.PENDING,
                incident=incident if held else None,
                facts=after,
            )
        )
    if after.last_outcome == machine.OutcomeKind.AUTH_FAILED and before.auth_failing_since is None and after.auth_failing_since:
        alerts.append(
            build(
                integration,
                R.AUTH_FAILING,
                _iso(after.auth_failing_since),
                now,
                recipients=recipients,
                session=session,
                reauth=True,
                facts=after,
            )
        )
    if event.to_status == Status.CREDENTIALS_INVALID and event.from_status != Status.CREDENTIALS_INVALID:
        alerts.append(
            build(
                integration,
                R.CREDENTIALS_INVALID,
                _iso(after.auth_failing_since),
                now,
                recipients=sorted(set(recipients) | {settings.SUPPORT_EMAIL}),
                session=session,
                reauth=True,
                facts=after,
            )
        )
    if after.last_outcome in machine.SUCCESSFUL and before.consecutive_unsuccessful:
        streaks = {_iso(before.unsuccessful_since), _iso(before.auth_failing_since)}
        alerted = Alert.objects.filter(
            integration=integration,
            rule__in=(R.REPEATED_FAILURES, R.AUTH_FAILING, R.CREDENTIALS_INVALID),
            streak__in=streaks,
            state__in=(Alert.State.SENT, Alert.State.PENDING, Alert.State.SENDING, Alert.State.DIGEST),
        ).exists()
        if alerted:
            alerts.append(
                build(
                    integration,
                    R.RECOVERED,
                    _iso(before.unsuccessful_since),
                    now,
                    recipients=recipients,
                    session=session,
                    extra={"failed_in_a_row": before.consecutive_unsuccessful},
                    facts=after,
                )
            )
    return raise_alerts(alerts)


def on_status_changed(event, now):
    """The alerts a status change causes, whoever changed it: entering quality assurance tells engineering."""
    if event.to_status == Status.QUALITY_ASSURANCE and event.from_status != Status.QUALITY_ASSURANCE:
        integration = event.integration
        return raise_alerts([quality_assurance_alert(integration, event.session or integration.last_session, now)])
    return []


def quality_assurance_alert(integration, session, now):
    evidence = {}
    if session is not None:
        evidence = {
            "session_id": session.pk,
            "session_state": session.state,
            "items_seen": session.items_seen,
            "items_warnings": session.items_warnings,
            "items_failed": session.items_failed,
            "open_issues": integration.issues.filter(state="open").count(),
        }
    return build(
        integration,
        R.QUALITY_ASSURANCE,
        _iso(integration.quality_assurance_since or now),
        now,
        recipients=[settings.ENGINEERING_EMAIL],
        session=session,
        extra={"evidence": evidence},
    )


def check_clock_rules(now):
    """The rules no session triggers: credentials about to expire, no success for too long."""
    alerts = []
    expiring = Integration.objects.select_related("tenant").filter(
        deleted_at=None,
        deactivated_at=None,
        credentials_expire_at__isnull=False,
        credentials_expire_at__lte=now + settings.CREDENTIALS_EXPIRING_WARNING,
    )
    for integration in expiring:
        left = integration.credentials_expire_at - now
        alerts.append(
            build(
                integration,
                R.CREDENTIALS_EXPIRING,
                _iso(integration.credentials_expire_at),
                now,
                recipients=tenant_recipients(integration.tenant),
                reauth=True,
                extra={"expires_at": _iso(integration.credentials_expire_at), "days_left": max(0, left.days)},
            )
        )
    candidates = Integration.objects.select_related("tenant").filter(
        deleted_at=None,
        paused=False,
        status__in=(Status.ACTIVE, Status.WARNINGS),
        last_success_at__isnull=False,
    )
    for integration in candidates.filter(last_success_at__lt=now - STALE_MIN).iterator(chunk_size=500):
        factor = integration.tenant.stale_after_intervals or settings.STALE_AFTER_INTERVALS
        if integration.last_success_at >= now - integration.sync_interval * factor:
            continue
        alerts.append(
            build(
                integration,
                R.STALE,
                _iso(integration.last_success_at),
                now,
                recipients=tenant_recipients(integration.tenant),
                extra={"last_success_at": _iso(integration.last_success_at)},
            )
        )
    with transaction.atomic():
        return raise_alerts(alerts)


STALE_MIN = timedelta(minutes=1)
