"""The reaper: sessions nobody is looking after any more become `unknown`.

A running session whose lease ran out (its worker died, was killed or lost
the database) ends as unknown / SYNC_LEASE_LOST. A queued session waiting
longer than SYNC_QUEUED_TIMEOUT_SECONDS ends as unknown / SYNC_NOT_STARTED
only when its queue shows it will not be run: no worker of its cluster (the
urgent one for a person's syncs, the default one for the others and for a
person's sync that fell back there) claimed any session in that time (the
queue is stuck), or the workers have already claimed sessions queued that
long after it (the queue moved past it: its task was lost, the Redis broker
keeps no receipts). A long backlog that workers are getting through is left
to them, however long it waits. Either way the integration can sync again.

The list of candidates is read without locks; each one is re-checked under
its row lock in `finish_session` (still running, lease still expired; still
queued), so a worker that renews its lease or claims the session in between
keeps it.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from integrations.models import SyncSession
from integrations.sync import telemetry
from integrations.sync.finishing import SessionLog, finish_session
from integrations.sync.heartbeats import cluster_names
from integrations.sync.starting import queue_members

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
        with transaction.atomic():  # the session ended and counted as reaped together
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
                telemetry.session_reaped("SYNC_LEASE_LOST")
        if session is not None:
            ended.append(pk)
        else:
            logger.info("session %s renewed its lease before the reaper reached it; left running", pk)

    timeout = timedelta(seconds=settings.SYNC_QUEUED_TIMEOUT_SECONDS)
    for queue, members in queues():
        waiting = SyncSession.objects.filter(
            members, state=SyncSession.State.QUEUED, queued_at__lt=now - timeout
        )
        if not waiting.exists():
            continue
        frontier = claimed_frontier(members, since=now - timeout)
        if frontier is None:
            message = (
                f"Queued for more than {settings.SYNC_QUEUED_TIMEOUT_SECONDS} s; no worker of the {queue} "
                "queue picked up any session meanwhile."
            )
        else:
            waiting = waiting.filter(queued_at__lt=frontier - timeout)
            message = (
                f"Queued for more than {settings.SYNC_QUEUED_TIMEOUT_SECONDS} s; workers already ran sessions "
                "queued that long after it, so its task was lost."
            )
        never_started = waiting.values_list("pk", "log")
        for pk, log in never_started:
            entries = SessionLog(settings.SESSION_LOG_MAX_ENTRIES, log)
            entries.add("error", "No worker picked the session up.")
            with transaction.atomic():
                session = finish_session(
                    pk,
                    state=SyncSession.State.UNKNOWN,
                    code="SYNC_NOT_STARTED",
                    message=message,
                    expected_states=(SyncSession.State.QUEUED,),
                    log=entries,
                    now=now,
                )
                if session is not None:
                    telemetry.session_reaped("SYNC_NOT_STARTED")
            if session is not None:
                ended.append(pk)
    if ended:
        logger.warning("reaper ended %d abandoned session(s): %s", len(ended), ended)
    return ended


def queues():
    """(cluster name, a Q() of the sessions its queue holds), as `starting.session_queue` places them."""
    return [(name, queue_members(name)) for name in sorted(cluster_names())]


def claimed_frontier(members, *, since):
    """How far the queue got: the latest queued_at among its sessions claimed since `since`, or None.

    Claimed since then means started since then and now running or finished
    since then: two reads that each stay on an index (state; finished_at).
    """
    claimed = SyncSession.objects.filter(members, started_at__gte=since)
    latest = [
        claimed.filter(state=SyncSession.State.RUNNING).aggregate(latest=Max("queued_at"))["latest"],
        claimed.filter(finished_at__gte=since).aggregate(latest=Max("queued_at"))["latest"],
    ]
    latest = [moment for moment in latest if moment is not None]
    return max(latest) if latest else None
