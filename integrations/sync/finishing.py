"""Finishing a session and applying its outcome to the integration.

Both the runner and the reaper end sessions here. The integration row and
then the session row are locked (always in that order); a session that is no
longer in the state the caller expects is left alone, so a session is
finished exactly once however many hands reach for it.
"""

import random
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from integrations import events
from integrations import status as machine
from integrations.models import Integration, IntegrationEvent, SyncSession
from integrations.services import apply_transition, facts_of
from integrations.sync import fingerprints as page_fingerprints
from integrations.sync import telemetry
from integrations.sync.records import forget_seen, mark_unseen_deleted
from issues.models import ErrorCode
from issues.recording import has_open_item_issues, record_session_failure, resolve_session_issues


class SessionLog:
    """A bounded structured log: the first entries and the most recent ones."""

    def __init__(self, limit, entries=None):
        self.limit = max(limit, 2)
        self.entries = list(entries or [])
        self.dropped = 0

    def add(self, level, message, **data):
        entry = {"at": timezone.now().isoformat(timespec="seconds"), "level": level, "message": message[:1000]}
        if data:
            entry["data"] = data
        self.entries.append(entry)
        if len(self.entries) > self.limit:
            # Keep the opening lines; drop from the middle.
            del self.entries[self.limit // 2]
            self.dropped += 1

    def as_list(self):
        if not self.dropped:
            return self.entries
        note = {"at": "", "level": "info", "message": f"{self.dropped} log entries were dropped to keep the log short."}
        half = self.limit // 2
        return [*self.entries[:half], note, *self.entries[half:]]


def next_sync_at(integration, facts, now):
    """When the scheduler should next run it: the interval, backed off while failing, with jitter."""
    interval = integration.sync_interval
    if facts.consecutive_unsuccessful:
        backoff = interval * (2 ** min(facts.consecutive_unsuccessful - 1, 16))
        interval = min(max(backoff, interval), max(settings.SYNC_BACKOFF_MAX, interval))
    jitter = interval.total_seconds() * 0.1 * random.random()
    return now + interval + timedelta(seconds=jitter)


def finish_session(
    session_id,
    *,
    state,
    code="",
    message="",
    worker=None,
    expected_states=(SyncSession.State.RUNNING,),
    counters=None,
    items_total=None,
    log=None,
    cursor=None,
    full_complete=False,
    item_type="item",
    lease_expired_by=None,
    issues_opened=(),
    issues_resolved=(),
    fingerprints=None,
    now=None,
):
    """End the session in `state` and apply the outcome; None if it was not ours to end.

    `lease_expired_by` is the reaper's condition: the session is ended only if
    its lease, read under the row lock, had run out by then. A worker that
    renewed its lease after the reaper listed the session keeps it.
    """
    now = now or timezone.now()
    integration_id = SyncSession.objects.values_list("integration_id", flat=True).get(pk=session_id)
    with transaction.atomic():
        integration = Integration.objects.select_for_update().get(pk=integration_id)
        session = SyncSession.objects.select_for_update().get(pk=session_id)
        if session.state not in expected_states or (worker and session.worker != worker):
            return None
        if lease_expired_by is not None and (
            session.lease_expires_at is None or session.lease_expires_at >= lease_expired_by
        ):
            return None
        fields = {**(counters or {})}
        if full_complete:
            if fingerprints is not None:
                fingerprints.flush()
            fields["items_deleted"] = mark_unseen_deleted(integration, session, item_type, now)
        forget_seen(session_id)
        log_entries = list(session.log or []) if log is None else log.as_list()
        if log is not None:
            log.add("info" if not code else "error", f"Finished: {state}{f' ({code})' if code else ''}.")
            log_entries = log.as_list()
        SyncSession.objects.filter(pk=session_id).update(
            state=state,
            finished_at=now,
            error_code_id=code or None,
            error_message=message,
            lease_expires_at=None,
            items_total=items_total if items_total is not None else session.items_total,
            log=log_entries,
            **fields,
        )
        session.refresh_from_db()
        page_fingerprints.settle(integration, session, fingerprints, full_complete=full_complete)

        if state in (SyncSession.State.SUCCEEDED, SyncSession.State.WARNINGS):
            if cursor:
                integration.sync_cursor = cursor[:200]
            resolve_session_issues(integration, now)
        elif state in (SyncSession.State.FAILED, SyncSession.State.UNKNOWN) and code:
            record_session_failure(integration, session, code, message or code, now)

        auth_error = bool(code) and ErrorCode.objects.filter(pk=code, category=ErrorCode.Category.AUTH).exists()
        outcome_state = state
        if state == SyncSession.State.SUCCEEDED and has_open_item_issues(integration):
            # A quick sync that met none of the bad items has not fixed them:
            # the integration still has warnings.
            outcome_state = SyncSession.State.WARNINGS
        outcome = machine.Outcome(outcome_state, now, code, auth_error=auth_error)
        before = facts_of(integration)
        transition = machine.on_session_finished(before, integration.status, outcome, settings.CREDENTIALS_INVALID_AFTER)
        integration.last_session = session
        if state in (SyncSession.State.SUCCEEDED, SyncSession.State.WARNINGS):
            integration.last_success_at = now
        integration.next_sync_at = next_sync_at(integration, transition.facts, now)
        apply_transition(integration, transition, now=now, session=session)
        # What alerts and webhooks react to, once this commits.
        events.write([finished_event(integration, session, before, transition, code, now, issues_opened, issues_resolved)])
        # Last: the tally rows every finish of this connector and outcome updates are held the shortest.
        telemetry.session_finished(session, integration)
    return session


def finished_event(integration, session, before, transition, code, now, opened, resolved):
    """The session_finished timeline event: the facts before and after, and the issues it opened and resolved."""
    return IntegrationEvent(
        integration=integration,
        kind=IntegrationEvent.Kind.SESSION_FINISHED,
        from_status=transition.previous_status,
        to_status=transition.status,
        note=f"{session.get_state_display()}{f' ({code})' if code else ''}.",
        session=session,
        created_at=now,
        data={
            "before": events.facts_data(before),
            "after": events.facts_data(transition.facts),
            "reason": transition.reason,
            "issues_opened": sorted(opened)[:100],
            "issues_opened_count": len(opened),
            "issues_resolved": sorted(resolved)[:100],
            "issues_resolved_count": len(resolved),
        },
    )
