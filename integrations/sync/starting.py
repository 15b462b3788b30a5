"""Starting a sync: refuse what cannot run, create the queued session, queue its task.

The one-open-session constraint decides races: of concurrent requests for one
integration exactly one inserts its session, the others get AlreadySyncing
with the session that is running.

A person's sync goes to the urgent cluster, unless no urgent worker has
beaten for URGENT_FALLBACK_SECONDS (`heartbeats.urgent_fallback_active`):
then it goes to the default cluster and is marked `fell_back`, so that its
queue position, the reaper and a put-back task follow it there.
"""

import logging
from functools import partial

from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import Q
from django.db.models.constants import OnConflict
from django.db.models.sql import InsertQuery
from django.utils import timezone
from django_q.conf import Conf
from django_q.tasks import async_task

from integrations.models import Integration, IntegrationEvent, SyncSession
from integrations.statuses import STAFF_TRIGGERS, declaration
from integrations.sync import heartbeats

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
    """The integration has an open session; the message says where it stands (see `standing`)."""

    http_status = 409

    def __init__(self, session, *, now=None):
        when = session.started_at or session.queued_at
        self.queue_position = queue_position(session)
        super().__init__(
            f"Already syncing: session {session.pk} is {session.state} since {when:%Y-%m-%d %H:%M:%S} UTC"
            f"{standing(session, self.queue_position, now=now)}.",
            code="ALREADY_SYNCING",
            session=session,
        )


# Counting further than this would cost more than the number is worth.
QUEUE_POSITION_CAP = 1000


def queue_position(session):
    """A queued session's place in its cluster's queue (1 = next), or None if it is not queued.

    The sessions of its cluster's queue (`queue_members`) queued before it,
    counted on the state index and capped at QUEUE_POSITION_CAP: past the cap
    the answer is QUEUE_POSITION_CAP + 1.
    """
    if session.state != SyncSession.State.QUEUED:
        return None
    ahead = SyncSession.objects.filter(
        queue_members(session_queue(session)), state=SyncSession.State.QUEUED, queued_at__lt=session.queued_at
    ).order_by()[:QUEUE_POSITION_CAP]
    return ahead.count() + 1


def standing(session, position, *, now=None):
    """Where an open session stands, as the end of a sentence: its queue position or its progress."""
    if position is not None:
        queue = session_queue(session)
        if position > QUEUE_POSITION_CAP:
            return f", more than {QUEUE_POSITION_CAP} sessions ahead of it in the {queue} queue"
        if position == 1:
            return f", next in the {queue} queue"
        return f", position {position} in the {queue} queue ({position - 1} ahead of it)"
    if session.state != SyncSession.State.RUNNING or session.started_at is None:
        return ""
    elapsed = max(0, int(((now or timezone.now()) - session.started_at).total_seconds()))
    if session.items_total:
        progress = f"{session.items_seen:,} of {session.items_total:,} items"
    else:
        progress = f"{session.items_seen:,} items"
    return f" (started {elapsed} s ago), {progress} so far"


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
    session = SyncSession(
        integration=integration,
        kind=kind,
        trigger=trigger,
        requested_by=requested_by,
        queued_at=now,
        fell_back=enqueue and falls_back(trigger, now),
    )
    with transaction.atomic():
        inserted = insert_unless_open(session)
        if inserted and trigger in PERSON_TRIGGERS:
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
    if not inserted:  # raised out here, the block above commits rather than rolls back: it wrote nothing
        raise already_syncing(integration, now=now)
    if enqueue:
        urgent = trigger in PERSON_TRIGGERS and not session.fell_back
        if session.fell_back:
            logger.warning("no urgent worker alive: session %s goes to the default cluster", session.pk)
        transaction.on_commit(partial(enqueue_session, session.pk, urgent=urgent))
    return session


def insert_unless_open(session):
    """Insert the session unless its integration has an open one; True if it went in (and has its pk).

    The expected conflict takes no error path: INSERT ... ON CONFLICT DO
    NOTHING on PostgreSQL, INSERT OR IGNORE on SQLite, both honouring the
    conditional unique constraint, the same statement `bulk_create(...,
    ignore_conflicts=True)` sends, which does not say whether the row went in.
    The cursor's row count does. No IntegrityError, no rolled-back savepoint,
    no ERROR line in the server's log; a second request waits for the first's
    transaction and then inserts nothing.
    """
    db = router.db_for_write(SyncSession)
    fields = [field for field in SyncSession._meta.local_concrete_fields if not field.primary_key]
    query = InsertQuery(SyncSession, on_conflict=OnConflict.IGNORE)
    query.insert_values(fields, [session])
    with connections[db].cursor() as cursor:
        for sql, params in query.get_compiler(using=db).as_sql():
            cursor.execute(sql, params)
        if cursor.rowcount != 1:
            return False
    # The one open session of the integration is the one this transaction inserted.
    session.pk = (
        SyncSession.objects.using(db)
        .filter(integration=session.integration_id, state__in=SyncSession.OPEN_STATES)
        .values_list("pk", flat=True)
        .get()
    )
    session._state.adding, session._state.db = False, db
    return True


def already_syncing(integration, *, now=None):
    """The refusal for an integration whose insert met an open session: AlreadySyncing with that session."""
    running = SyncSession.objects.filter(integration=integration, state__in=SyncSession.OPEN_STATES).first()
    if running is None:  # it finished between our insert and this read
        return SyncRefused("Another sync just finished; try again.", code="ALREADY_SYNCING")
    return AlreadySyncing(running, now=now)


def queue_for(trigger):
    """The cluster whose workers run a session of this trigger: a person's syncs go to the urgent one.

    Unless it fell back (`session_queue` says where a given session is).
    """
    return settings.URGENT_CLUSTER if trigger in PERSON_TRIGGERS else settings.Q_CLUSTER["name"]


def session_queue(session):
    """The cluster whose queue holds this session's task."""
    return settings.Q_CLUSTER["name"] if session.fell_back else queue_for(session.trigger)


def queue_members(queue):
    """A Q() of the sessions whose tasks the named cluster's queue holds (see `session_queue`)."""
    triggers = [trigger for trigger in SyncSession.Trigger.values if queue_for(trigger) == queue]
    members = Q(trigger__in=triggers, fell_back=False)
    if queue == settings.Q_CLUSTER["name"]:
        members |= Q(fell_back=True)
    return members


def falls_back(trigger, now):
    """Whether a new session of this trigger goes to the default cluster instead of the urgent one.

    Only a person's sync, only with a real broker (inline tasks have no
    cluster to miss), only when no urgent worker beat within URGENT_FALLBACK_SECONDS.
    """
    return trigger in PERSON_TRIGGERS and not Conf.SYNC and heartbeats.urgent_fallback_active(now)


def enqueue_session(session_id, *, urgent=False, save_task_id=True, broker=None):
    """Queue the task that runs a session; a person's syncs go to the urgent cluster.

    `broker` (a `sync.broker.BatchedBroker`) collects the task to send it with others.
    """
    options = {"task_name": f"sync-session-{session_id}", "group": "sync"}
    if urgent:
        options["cluster"] = settings.URGENT_CLUSTER
    if broker is not None:
        options["broker"] = broker
    task_id = async_task(RUN_SESSION_TASK, session_id, **options)
    if save_task_id:
        SyncSession.objects.filter(pk=session_id, task_id="").update(task_id=str(task_id))
    return task_id
