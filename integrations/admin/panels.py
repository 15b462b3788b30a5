"""What the integration page shows above the form: why this status, checks, history.

Each function takes what it needs and returns plain data for the template;
the queries are bounded (a fixed number per page, whatever the data size).
"""

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings

from integrations import credential_checks
from integrations import status as machine
from integrations.admin.common import duration_words, natural_duration, relative
from integrations.admin.history import history_svg  # noqa: F401 (the portal's General tab draws it too)
from integrations.connectors.base import get_connector_class
from integrations.models import Integration, SyncSession
from integrations.services import facts_of
from integrations.statuses import declaration
from integrations.words import counted, status_label

Status = Integration.Status


@dataclass
class WhyStatus:
    rule: str
    evidence: list = field(default_factory=list)
    next_steps: list = field(default_factory=list)


def _next_sync_line(integration, now):
    if integration.paused:
        return f"Scheduled syncs are paused: {integration.paused_reason or 'by staff'}."
    if integration.next_sync_at:
        backed_off = " (backed off while failing)" if integration.consecutive_unsuccessful else ""
        if integration.next_sync_at <= now:
            return f"Next scheduled sync: due now{backed_off}."
        return f"Next scheduled sync in {duration_words(integration.next_sync_at - now)}{backed_off}."
    return "No scheduled sync is due yet."


def _alert_line(integration):
    threshold = integration.tenant.alert_threshold()
    remaining = threshold - integration.consecutive_unsuccessful
    if remaining > 0:
        return f"{remaining} more unsuccessful sync{'s' if remaining != 1 else ''} until the repeated-failure alert."
    return f"The repeated-failure alert threshold ({threshold} in a row) has been reached."


def _session_evidence(why, integration, now, last_session, open_session):
    """What every status shows: the last and the open session, a pause, the customer's headline."""
    if last_session is not None:
        why.evidence.append(
            f"Last session {last_session.pk}: {last_session.get_state_display()}"
            + (f" ({last_session.error_code_id})" if last_session.error_code_id else "")
            + (f", finished {relative(last_session.finished_at, now)}" if last_session.finished_at else "")
            + "."
        )
    if open_session is not None:
        why.evidence.append(f"Session {open_session.pk} is {open_session.get_state_display().lower()} now.")
    if integration.paused:
        why.evidence.append(f"Syncs are paused: {integration.paused_reason or 'by staff'}.")
    why.evidence.append(f"The customer reads: \u201c{declaration(integration.status).headline}\u201d.")


# One function per status family: each fills the rule, its evidence and the next steps.
# ``mapping`` is (unmapped_accounts, total_accounts).


def _why_deleted(why, integration, now, mapping):
    purge_at = integration.deleted_at + settings.DELETED_RETENTION
    why.rule = "Deleted by staff; deleted outranks every other status."
    why.evidence.append(f"Deleted {relative(integration.deleted_at, now)}.")
    why.next_steps.append(
        f"Purged with its sessions, records and issues in {duration_words(purge_at - now)} unless restored."
    )


def _why_inactive(why, integration, now, mapping):
    why.rule = "Switched off; no syncs run."
    why.evidence.append(f"Deactivated {relative(integration.deactivated_at, now)}.")
    why.next_steps.append("Nothing runs until someone reactivates it.")


def _why_credentials_invalid(why, integration, now, mapping):
    if integration.credentials_revoked_at:
        why.rule = "Credentials were revoked by staff."
    else:
        why.rule = (
            f"Every sync for {duration_words(settings.CREDENTIALS_INVALID_AFTER)} failed on authentication "
            "with no other outcome in between."
        )
        why.evidence.append(
            f"Authentication failing since {relative(integration.auth_failing_since, now)}; "
            f"{integration.consecutive_unsuccessful} unsuccessful in a row."
        )
    why.next_steps.append("Syncs are paused until new credentials are saved: send a re-authentication link.")


def _why_quality_assurance(why, integration, now, mapping):
    why.rule = "Under quality assurance: the first sync had problems, or staff moved it here."
    if integration.quality_assurance_reason:
        why.evidence.append(f"Reason: {integration.quality_assurance_reason}")
    owner = integration.quality_assurance_owner
    why.evidence.append(
        f"Since {relative(integration.quality_assurance_since, now)}; owner {owner or 'nobody yet'}"
        + (f"; due {integration.quality_assurance_due:%Y-%m-%d}" if integration.quality_assurance_due else "")
        + "."
    )
    why.next_steps.append("Scheduled syncs are paused; staff may run it. Release it to resume (a sync is queued).")


def _why_setup(why, integration, now, mapping):
    unmapped_accounts, total_accounts = mapping
    if not integration.mapping_complete:
        why.rule = "Account mapping is incomplete: every sync is refused with MAPPING_INCOMPLETE."
        why.evidence.append(
            f"{unmapped_accounts} of {counted(total_accounts, 'vendor account')} not mapped or ignored yet."
        )
        why.next_steps.append("The first sync is queued as soon as the mapping is complete.")
    else:
        why.rule = "Waiting for the first sync to finish."
        why.next_steps.append(
            "Its outcome decides: clean \u2192 Active; item issues or a non-auth failure \u2192 Quality assurance; "
            "an auth failure \u2192 Authentication failing."
        )


def _why_auth_failing(why, integration, now, mapping):
    why.rule = "The last sync failed on authentication."
    if integration.auth_failing_since:
        why.evidence.append(f"Authentication failing since {relative(integration.auth_failing_since, now)}.")
        facts = facts_of(integration)
        left = machine.countdown_to_credentials_invalid(facts, settings.CREDENTIALS_INVALID_AFTER, now)
        why.next_steps.append(
            f"{duration_words(left)} until \u201c{status_label(Status.CREDENTIALS_INVALID)}\u201d "
            "(syncs paused) if authentication keeps failing."
        )
    else:
        why.evidence.append("New credentials were saved since; the next sync checks them.")
    why.next_steps.append(_alert_line(integration))
    why.next_steps.append(_next_sync_line(integration, now))


def _why_unsuccessful(why, integration, now, mapping):
    """Failing or unknown: the streak counts toward the alert."""
    streak = integration.consecutive_unsuccessful
    since = integration.unsuccessful_since
    why.rule = (
        "The last sync did not complete."
        if integration.status == Status.FAILING
        else "The engine could not confirm a clean success or a clean failure."
    )
    why.evidence.append(f"{streak} unsuccessful in a row" + (f", since {relative(since, now)}." if since else "."))
    why.next_steps.append(_alert_line(integration))
    why.next_steps.append(_next_sync_line(integration, now))


def _why_warnings(why, integration, now, mapping):
    why.rule = "The last sync succeeded, but some items have issues."
    why.next_steps.append("Issues resolve themselves when their items sync cleanly.")
    why.next_steps.append(_next_sync_line(integration, now))


def _why_active(why, integration, now, mapping):
    why.rule = "The last sync succeeded cleanly."
    why.next_steps.append(_next_sync_line(integration, now))


_WHY_BY_STATUS = {
    Status.DELETED: _why_deleted,
    Status.INACTIVE: _why_inactive,
    Status.CREDENTIALS_INVALID: _why_credentials_invalid,
    Status.QUALITY_ASSURANCE: _why_quality_assurance,
    Status.SETUP: _why_setup,
    Status.AUTH_FAILING: _why_auth_failing,
    Status.FAILING: _why_unsuccessful,
    Status.UNKNOWN: _why_unsuccessful,
    Status.WARNINGS: _why_warnings,
}


def why_status(integration, *, now, last_session=None, open_session=None, unmapped_accounts=0, total_accounts=0):
    """The rule that put the integration in its status, the evidence, and what happens next."""
    why = WhyStatus(rule=integration.status_reason or "")
    _session_evidence(why, integration, now, last_session, open_session)
    fill = _WHY_BY_STATUS.get(integration.status, _why_active)
    fill(why, integration, now, (unmapped_accounts, total_accounts))
    return why


@dataclass
class Check:
    level: str  # ok, warn, bad, info
    text: str


def checks(integration, *, now, recent_sessions, connector_failures, unmapped_accounts, total_accounts):
    """The support playbook, computed."""
    found = []
    try:
        connector_class = get_connector_class(integration.connector)
    except KeyError:
        return [Check("bad", f"Connector '{integration.connector}' is not installed.")]
    lifetime = connector_class.token_lifetime
    if not integration.has_credentials:
        found.append(Check("bad", "No credentials are stored."))
    elif integration.credentials_set_at:
        age = now - integration.credentials_set_at
        if lifetime:
            left = integration.credentials_set_at + lifetime - now
            level = "bad" if left <= timedelta(0) else "warn" if left <= timedelta(days=7) else "ok"
            found.append(
                Check(
                    level,
                    f"Credentials are {duration_words(age, 1)} old; {connector_class.label} forces re-authentication "
                    f"every {lifetime.days} days"
                    + (f": {duration_words(left, 1)} left." if left > timedelta(0) else ": past due."),
                )
            )
        else:
            found.append(Check("info", f"Credentials are {duration_words(age, 1)} old."))
        found.extend(Check("warn", shared.text()) for shared in credential_checks.for_integration(integration))
    if total_accounts:
        found.append(
            Check(
                "ok" if not unmapped_accounts else "bad",
                f"Mapping: {total_accounts - unmapped_accounts} of {counted(total_accounts, 'vendor account')} "
                "mapped or ignored.",
            )
        )
    else:
        found.append(Check("info", "No vendor accounts discovered yet."))
    if connector_failures:
        found.append(
            Check(
                "warn",
                f"{counted(connector_failures, f'other {connector_class.label} integration')} failed in the "
                "last hour: a vendor-side problem?",
            )
        )
    else:
        found.append(Check("ok", f"No other {connector_class.label} integration failed in the last hour."))
    waits = sum(s.rate_limited_waits for s in recent_sessions)
    if waits:
        found.append(
            Check(
                "warn",
                f"Rate limiting seen: {counted(waits, 'wait')} in the last {counted(len(recent_sessions), 'session')}.",
            )
        )
    queued = [s.started_at - s.queued_at for s in recent_sessions if s.started_at]
    if queued:
        worst = max(queued)
        level = "warn" if worst > timedelta(minutes=5) else "ok"
        found.append(Check(level, f"Longest time queued in recent sessions: {natural_duration(worst)}."))
    return found


def connector_failures_last_hour(integration, now):
    return (
        SyncSession.objects.filter(
            integration__connector=integration.connector,
            state__in=(SyncSession.State.FAILED, SyncSession.State.UNKNOWN),
            finished_at__gte=now - timedelta(hours=1),
        )
        .exclude(integration=integration)
        .values("integration")
        .distinct()
        .count()
    )


def unmapped_counts(integration):
    mappings = list(integration.account_mappings.all())
    unmapped = sum(1 for m in mappings if not m.is_mapped)
    return unmapped, len(mappings), mappings
