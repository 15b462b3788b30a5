"""Moving people's syncs off an urgent cluster that has no live worker.

When no urgent worker has beaten for URGENT_FALLBACK_SECONDS, new person
syncs already go to the default cluster (`starting.start_sync`); the ones
queued before are still on the urgent queue. `move_waiting` marks them
`fell_back` and queues their tasks again, on the default cluster. The task
left on the urgent queue is harmless: whichever task comes first claims the
session (the runner's conditional UPDATE queued -> running) and the other
finds it no longer queued and does nothing.

Every worker of the default cluster calls it after each heartbeat
(`sync.worker_beat`), so a waiting session moves within a few seconds of the
fallback starting, never waiting for the reaper's hour. The rows are taken
with FOR UPDATE SKIP LOCKED, so several default workers never move one
session twice; the tasks are queued inside that transaction (the ORM broker's
rows commit with the mark; a Redis push that then fails to commit leaves a
duplicate task, which does nothing), so a broker that is down moves nothing
and the next beat tries again.
"""

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.conf import Conf

from integrations.models import SyncSession
from integrations.sync import heartbeats
from integrations.sync.broker import BatchedBroker
from integrations.sync.scheduler import save_task_ids
from integrations.sync.starting import enqueue_session, queue_members

logger = logging.getLogger(__name__)

# Sessions moved per call; the next heartbeat moves the rest.
MOVE_BATCH = 500


def move_waiting(now=None):
    """Move what waits on the urgent queue to the default cluster if the fallback is on; the sessions' ids."""
    now = now or timezone.now()
    if Conf.SYNC or not heartbeats.urgent_fallback_active(now):  # inline tasks have no cluster to leave
        return []
    with transaction.atomic():
        ids = list(
            SyncSession.objects.select_for_update(skip_locked=True)
            .filter(queue_members(settings.URGENT_CLUSTER), state=SyncSession.State.QUEUED)
            .order_by("queued_at")
            .values_list("pk", flat=True)[:MOVE_BATCH]
        )
        if not ids:
            return []
        broker = BatchedBroker(settings.Q_CLUSTER["name"])
        task_ids = {pk: enqueue_session(pk, save_task_id=False, broker=broker) for pk in ids}
        broker.flush()
        save_task_ids(task_ids)
        SyncSession.objects.filter(pk__in=ids, state=SyncSession.State.QUEUED).update(fell_back=True)
    logger.warning(
        "no urgent worker beat for %g s: moved %d waiting session(s) to the %s cluster: %s",
        settings.URGENT_FALLBACK_SECONDS,
        len(ids),
        settings.Q_CLUSTER["name"],
        ids,
    )
    return ids
