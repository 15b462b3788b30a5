"""The reaper: sessions nobody is looking after any more become `unknown`.

A running session whose lease ran out (its worker died, was killed or lost
the database) ends as unknown / SYNC_LEASE_LOST; a queued session that no
worker picked up in SYNC_QUEUED_TIMEOUT_SECONDS (a lost task: the Redis
broker keeps no receipts) ends as unknown / SYNC_NOT_STARTED. Either way the
integration can sync again.

The list of candidates is read without locks; each one is re-checked under
its row lock in `finish_session` (still running, lease still expired), so a
worker that renews its lease in between is never ended.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from integrations.models import SyncSession
from integrations.sync.finishing import SessionLog, finish_session

logger = logging.getLogger(__name__)


def reap(now=None):
    """End abandoned sessions; returns the ids it ended."""
    now = now or timezone.now()
    ended = []
    lost = SyncSession.objects.filter(state=SyncSession.State.RUNNING, lease_expires_at__lt=now).values_list(
        "pk", "lease_expires_at", "log"
    )
    for pk, lease_expires_at, log in lost:
        entries = SessionLog(settings.SESSION_LOG_MAX_ENTRIES, log)
        entries.add("error", f"Lease expired at {lease_expires_at:%Y-%m-%d %H:%M:%S} UTC; the worker is gone.")
        session = finish_session(
            pk,
            state=SyncSession.State.UNKNOWN,
            code="SYNC_LEASE_LOST",
            message=(
                "The worker running this sync stopped reporting progress "
                f"(lease expired at {lease_expires_at:%Y-%m-%d %H:%M:%S} UTC)."
            ),
            log=entries,
            lease_expired_by=now,
            now=now,
        )
        if session is not None:
            ended.append(pk)
        else:
            logger.info("session %s renewed its lease before the reaper reached it; left running", pk)

    stale_before = now - timedelta(seconds=settings.SYNC_QUEUED_TIMEOUT_SECONDS)
    never_started = SyncSession.objects.filter(
        state=SyncSession.State.QUEUED, queued_at__lt=stale_before
    ).values_list("pk", "log")
    for pk, log in never_started:
        entries = SessionLog(settings.SESSION_LOG_MAX_ENTRIES, log)
        entries.add("error", "No worker picked the session up.")
        session = finish_session(
            pk,
            state=SyncSession.State.UNKNOWN,
            code="SYNC_NOT_STARTED",
            message=f"Queued for more than {settings.SYNC_QUEUED_TIMEOUT_SECONDS} s without a worker picking it up.",
            expected_states=(SyncSession.State.QUEUED,),
            log=entries,
            now=now,
        )
        if session is not None:
            ended.append(pk)
    if ended:
        logger.warning("reaper ended %d abandoned session(s): %s", len(ended), ended)
    return ended
