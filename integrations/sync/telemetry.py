"""What a session tells the operators: one start line, one finish line, and the tallies behind /metrics.

`finishing.finish_session` ends every session exactly once (runner, reaper,
cancellation alike); it calls `session_finished` in its transaction, so the
counters move by exactly one per finished session whichever process
finished it, and the finish line is written once that transaction commits.
The runner writes the start line when its claim succeeded.
"""

import logging

from django.db import transaction

from integrations.models import SyncSession
from integrations.tallies import TallyCounter, TallyHistogram

logger = logging.getLogger("integrations.sessions")

SESSIONS_FINISHED = TallyCounter(
    "syncconsole_sessions_finished_total",
    "Sessions finished, by connector and outcome (the session's final state).",
    ["connector", "outcome"],
)
SESSION_DURATION = TallyHistogram(
    "syncconsole_session_duration_seconds",
    "From a session's start to its finish, by connector and outcome (sessions that never started are "
    "not observed).",
    ["connector", "outcome"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 10800),
)
SESSION_ITEMS = TallyHistogram(
    "syncconsole_session_items",
    "Items a finished session read from the vendor (items_seen), by connector and outcome.",
    ["connector", "outcome"],
    buckets=(0, 10, 100, 1000, 10_000, 100_000, 1_000_000),
)
SESSIONS_REAPED = TallyCounter(
    "syncconsole_sessions_reaped_total",
    "Sessions the reaper ended, by reason: SYNC_LEASE_LOST (the worker stopped reporting) "
    "or SYNC_NOT_STARTED (no worker picked it up).",
    ["reason"],
)



def session_finished(session, integration):
    """Count the finished `session` (its row as finished); inside finish_session's transaction."""
    labels = {"connector": integration.connector, "outcome": session.state}
    SESSIONS_FINISHED.inc(**labels)
    if session.started_at is not None and session.finished_at is not None:
        SESSION_DURATION.observe(max((session.finished_at - session.started_at).total_seconds(), 0), **labels)
    SESSION_ITEMS.observe(session.items_seen, **labels)
    transaction.on_commit(lambda: log_finished(session, integration.connector, integration.tenant_id))


def session_reaped(reason):
    """Count a session the reaper ended; inside the transaction that ended it."""
    SESSIONS_REAPED.inc(reason=reason)


def log_started(session, worker):
    logger.info(
        "session %s started: %s sync, trigger %s, on %s",
        session.pk,
        session.kind,
        session.trigger,
        worker,
        extra={
            "event": "session_started",
            "session": session.pk,
            "integration": session.integration_id,
            "tenant": session.integration.tenant_id,
            "connector": session.integration.connector,
            "kind": session.kind,
            "trigger": session.trigger,
            "worker": worker,
        },
    )


def log_finished(session, connector, tenant_id):
    counters = {name: getattr(session, name) for name in SyncSession.COUNTERS}
    duration = session.duration
    logger.log(
        logging.WARNING if session.state in ("failed", "unknown") else logging.INFO,
        "session %s finished: %s%s, %s items seen",
        session.pk,
        session.state,
        f" ({session.error_code_id})" if session.error_code_id else "",
        session.items_seen,
        extra={
            "event": "session_finished",
            "session": session.pk,
            "integration": session.integration_id,
            "tenant": tenant_id,
            "connector": connector,
            "outcome": session.state,
            "error_code": session.error_code_id or "",
            "duration_seconds": duration.total_seconds() if duration is not None else None,
            **counters,
        },
    )
