"""Starting a sync: refuse what cannot run, create the queued session, queue its task.

The one-open-session constraint decides races: of concurrent requests for one
integration exactly one inserts its session, the others get AlreadySyncing
with the session that is running.
"""

import logging
from functools import partial

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_q.tasks import async_task

from integrations.models import Integration, IntegrationEvent, SyncSession
from integrations.statuses import STAFF_TRIGGERS, declaration

logger = logging.getLogger(__name__)

RUN_SESSION_TASK = "integrations.tasks.run_session"


class SyncRefused(Exception):
    """The integration cannot sync now; `code` is an ErrorCode or a short reason."""

    http_status = 422

    def __init__(self, message, *, code="SYNC_REFUSED", session=None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.session = session


class AlreadySyncing(SyncRefused):
    http_status = 409

    def __init__(self, session):
        when = session.started_at or session.queued_at
        super().__init__(
            f"Already syncing: session {session.pk} is {session.state} since {when:%Y-%m-%d %H:%M:%S} UTC.",
            code="ALREADY_SYNCING",
            session=session,
        )


PERSON_TRIGGERS = set(SyncSession.PERSON_TRIGGERS)


def refusal_for(integration, trigger):
    """Why the integration cannot sync for this trigger, or None.

    The status's own refusal comes from its declaration (integrations.statuses);
    a deleted or switched-off integration says so before anything else, then
    an incomplete mapping, then the other statuses, then a pause by staff.
    """
    refusal = declaration(integration.status).refuses(trigger)
    if refusal is not None and integration.status in (Integration.Status.DELETED, Integration.Status.INACTIVE):
        return SyncRefused(refusal.message, code=refusal.code)
    if not integration.mapping_complete:
        return SyncRefused(
            "Account mapping is incomplete: map or ignore every vendor account first.", code="MAPPING_INCOMPLETE"
        )
    if refusal is not None:
        return SyncRefused(refusal.message, code=refusal.code)
    if integration.paused and trigger not in STAFF_TRIGGERS:
        return SyncRefused(f"Syncs are paused: {integration.paused_reason or 'by staff'}.", code="PAUSED")
    return None


def start_sync(
    integration,
    *,
    kind=SyncSession.Kind.QUICK,
    trigger=SyncSession.Trigger.STAFF,
    requested_by=None,
    now=None,
    enqueue=True,
):
    """Create a queued session and queue its task after commit; SyncRefused if it cannot run.

    enqueue=False leaves running it to the caller (`manage.py sync --inline`).
    """
    now = now or timezone.now()
    refusal = refusal_for(integration, trigger)
    if refusal:
        raise refusal
    try:
        with transaction.atomic():
            session = SyncSession.objects.create(
                integration=integration, kind=kind, trigger=trigger, requested_by=requested_by, queued_at=now
            )
            if trigger in PERSON_TRIGGERS:
                IntegrationEvent.objects.create(
                    integration=integration,
                    kind=IntegrationEvent.Kind.SYNC_REQUESTED,
                    actor=requested_by,
                    from_status=integration.status,
                    to_status=integration.status,
                    note=f"{session.get_kind_display()} sync requested ({session.get_trigger_display()}).",
                    session=session,
                    created_at=now,
                )
    except IntegrityError:
        running = SyncSession.objects.filter(integration=integration, state__in=SyncSession.OPEN_STATES).first()
        if running is None:  # it finished between our insert and this read
            raise SyncRefused("Another sync just finished; try again.", code="ALREADY_SYNCING") from None
        raise AlreadySyncing(running) from None
    if enqueue:
        transaction.on_commit(partial(enqueue_session, session.pk, urgent=trigger in PERSON_TRIGGERS))
    return session


def enqueue_session(session_id, *, urgent=False, save_task_id=True):
    """Queue the task that runs a session; a person's syncs go to the urgent cluster."""
    options = {"task_name": f"sync-session-{session_id}", "group": "sync"}
    if urgent:
        options["cluster"] = settings.URGENT_CLUSTER
    task_id = async_task(RUN_SESSION_TASK, session_id, **options)
    if save_task_id:
        SyncSession.objects.filter(pk=session_id, task_id="").update(task_id=str(task_id))
    return task_id
