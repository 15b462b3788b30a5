"""The scheduler: queue the integrations that are due, spread over time.

Each integration's next_sync_at is set when its session finishes (the
interval, backed off while failing, plus jitter), so due times drift apart
instead of all landing on the same tick. A tick takes at most
SYNC_SCHEDULER_BATCH due integrations in a fixed number of queries: one
SELECT, one bulk INSERT of sessions (the one-open-session constraint skips
integrations already syncing), one SELECT of their ids and one UPDATE; then one broker enqueue per
session (for the Redis broker, no database query at all).
"""

import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from integrations.models import Integration, SyncSession
from integrations.sync.starting import enqueue_session

logger = logging.getLogger(__name__)


def due_integrations(now):
    open_session = SyncSession.objects.filter(integration=OuterRef("pk"), state__in=SyncSession.OPEN_STATES)
    return (
        Integration.objects.filter(next_sync_at__lte=now, paused=False, mapping_complete=True)
        .exclude(status__in=Integration.NOT_SCHEDULED)
        .exclude(Exists(open_session))
        .order_by("next_sync_at")
    )


def enqueue_all(session_ids):
    """Enqueue each session's task, then record the task ids in one UPDATE."""
    task_ids = {pk: enqueue_session(pk, save_task_id=False) for pk in session_ids}
    SyncSession.objects.bulk_update(
        [SyncSession(pk=pk, task_id=str(task_id)) for pk, task_id in task_ids.items()], ["task_id"], batch_size=1000
    )


def tick(now=None):
    """Queue due integrations; returns the new session ids."""
    now = now or timezone.now()
    with transaction.atomic():
        due = list(due_integrations(now).values_list("pk", flat=True)[: settings.SYNC_SCHEDULER_BATCH])
        if not due:
            return []
        SyncSession.objects.bulk_create(
            [
                SyncSession(
                    integration_id=pk,
                    kind=SyncSession.Kind.QUICK,
                    trigger=SyncSession.Trigger.SCHEDULE,
                    queued_at=now,
                )
                for pk in due
            ],
            ignore_conflicts=True,
        )
        # The rows ignore_conflicts returns carry no ids: read back what this
        # tick queued.
        ids = list(
            SyncSession.objects.filter(
                integration_id__in=due, state=SyncSession.State.QUEUED, queued_at=now, trigger=SyncSession.Trigger.SCHEDULE
            ).values_list("pk", flat=True)
        )
        Integration.objects.filter(pk__in=due).update(next_sync_at=None)
        transaction.on_commit(lambda: enqueue_all(ids))
    logger.info("scheduler queued %d session(s) of %d due", len(ids), len(due))
    return ids
