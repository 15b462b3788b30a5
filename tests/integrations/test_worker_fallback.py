"""The urgent fallback: people's syncs go to the default cluster when no urgent worker is alive.

integrations/sync/starting.py decides where a new session goes, sync/fallback.py
moves the ones already waiting on the urgent queue, and the reaper and the
queue position follow a session that fell back. The first tests run on any
database with the real ORM broker in this process (tasks land in the
django_q_ormq table, nothing runs them); the last ones start real qcluster
processes (PostgreSQL) and watch a person's sync start with only the default
cluster alive.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_q.models import OrmQ, Task

from integrations import tasks
from integrations.models import Integration, SyncSession, WorkerHeartbeat
from integrations.sync import fallback, heartbeats, reaper
from integrations.sync.starting import AlreadySyncing, queue_position, start_sync
from tests.factories import IntegrationFactory, SyncSessionFactory
from tests.integrations.test_cluster_faults import (  # noqa: F401 (fixtures)
    catalog,
    cluster_env,
    no_schedules,
    real_broker,
    simulator_integration,
    wait_for,
)

pytest_plugins = ["tests.plugins.simulator", "tests.plugins.qcluster"]

Status = Integration.Status
State = SyncSession.State
Trigger = SyncSession.Trigger
DEFAULT_QUEUE = "syncconsole"
URGENT_QUEUE = "urgent"


@pytest.fixture
def orm_broker(real_broker):  # noqa: F811
    """Tasks go to the ORM broker's table of the test database instead of running inline."""
    real_broker()


def tasks_on(queue):
    """The (function, args) of the tasks waiting on a cluster's queue, oldest first."""
    rows = OrmQ.objects.filter(key=queue).order_by("pk")
    return [(row.task["func"], list(row.task["args"])) for row in rows]


def run_task(session):
    return ("integrations.tasks.run_session", [session.pk])


def urgent_beat(seconds_ago):
    now = timezone.now()
    heartbeats.beat(URGENT_QUEUE, "worker-host", 4242, now - timedelta(seconds=seconds_ago))


# -- where a new person's sync goes ---------------------------------------------------------------


@pytest.mark.django_db
def test_with_a_live_urgent_worker_a_persons_sync_goes_to_the_urgent_queue(
    orm_broker, django_capture_on_commit_callbacks
):
    urgent_beat(seconds_ago=2)
    with django_capture_on_commit_callbacks(execute=True):
        session = start_sync(IntegrationFactory(status=Status.ACTIVE), trigger=Trigger.STAFF)

    session.refresh_from_db()
    assert session.fell_back is False
    assert tasks_on(URGENT_QUEUE) == [run_task(session)]
    assert tasks_on(DEFAULT_QUEUE) == []


@pytest.mark.django_db
@pytest.mark.parametrize("last_beat", ["never", "too long ago"])
def test_without_a_recent_urgent_heartbeat_it_goes_to_the_default_cluster(
    orm_broker, django_capture_on_commit_callbacks, settings, last_beat
):
    settings.URGENT_FALLBACK_SECONDS = 60
    if last_beat == "too long ago":
        urgent_beat(seconds_ago=61)
    integration = IntegrationFactory(status=Status.ACTIVE)
    with django_capture_on_commit_callbacks(execute=True):
        session = start_sync(integration, trigger=Trigger.CUSTOMER)

    session.refresh_from_db()
    assert session.fell_back is True
    assert tasks_on(DEFAULT_QUEUE) == [run_task(session)]
    assert tasks_on(URGENT_QUEUE) == []
    assert session.task_id == OrmQ.objects.get(key=DEFAULT_QUEUE).task["id"]
    # Where it stands says so: it waits in the default queue.
    with pytest.raises(AlreadySyncing) as already:
        start_sync(integration, trigger=Trigger.API)
    assert "next in the syncconsole queue" in already.value.message


@pytest.mark.django_db
def test_scheduled_syncs_and_a_fallback_switched_off_keep_their_queues(
    orm_broker, django_capture_on_commit_callbacks, settings
):
    assert not WorkerHeartbeat.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        scheduled = start_sync(IntegrationFactory(status=Status.ACTIVE), trigger=Trigger.SCHEDULE)
    settings.URGENT_FALLBACK_SECONDS = 0  # never fall back
    with django_capture_on_commit_callbacks(execute=True):
        person = start_sync(IntegrationFactory(status=Status.ACTIVE), trigger=Trigger.STAFF)

    assert SyncSession.objects.filter(fell_back=True).count() == 0
    assert tasks_on(DEFAULT_QUEUE) == [run_task(scheduled)]
    assert tasks_on(URGENT_QUEUE) == [run_task(person)]


@pytest.mark.django_db
def test_inline_tasks_never_fall_back():
    """With Q_CLUSTER["sync"] (the tests' and `--inline`'s broker) there is no cluster to miss."""
    session = start_sync(IntegrationFactory(status=Status.ACTIVE), trigger=Trigger.STAFF)
    assert session.fell_back is False
    assert not WorkerHeartbeat.objects.exists()


# -- moving the ones already waiting ----------------------------------------------------------------


def waiting_sessions(now):
    """A person's sync waiting on the urgent queue, and four sessions that must not move."""
    queued_at = now - timedelta(minutes=3)

    def session(trigger, state=State.QUEUED, **fields):
        integration = IntegrationFactory(status=Status.ACTIVE)
        return SyncSessionFactory(
            integration=integration, trigger=trigger, state=state, queued_at=queued_at, **fields
        )

    waiting = session(Trigger.CUSTOMER, task_id="urgent-task")
    others = [
        session(Trigger.STAFF, state=State.RUNNING, started_at=now),  # already running on the urgent cluster
        session(Trigger.SCHEDULE),  # on the default queue anyway
        session(Trigger.API, fell_back=True),  # moved before
        session(Trigger.STAFF, state=State.SUCCEEDED, finished_at=now),
    ]
    return waiting, others


@pytest.mark.django_db
def test_waiting_sessions_move_once_the_urgent_cluster_is_silent_for_the_fallback_time(orm_broker, settings):
    settings.URGENT_FALLBACK_SECONDS = 60
    now = timezone.now()
    waiting, others = waiting_sessions(now)
    before = {s.pk: (s.fell_back, s.task_id, s.state) for s in others}

    urgent_beat(seconds_ago=30)
    assert fallback.move_waiting(now) == []
    waiting.refresh_from_db()
    assert (waiting.fell_back, waiting.task_id) == (False, "urgent-task")

    urgent_beat(seconds_ago=61)  # the same worker's row, 61 s old: it stopped beating
    assert fallback.move_waiting(now) == [waiting.pk]

    waiting.refresh_from_db()
    assert waiting.fell_back is True
    assert waiting.state == State.QUEUED
    assert tasks_on(DEFAULT_QUEUE) == [run_task(waiting)]
    assert waiting.task_id == OrmQ.objects.get(key=DEFAULT_QUEUE).task["id"]
    after = SyncSession.objects.filter(pk__in=before)
    assert {s.pk: (s.fell_back, s.task_id, s.state) for s in after} == before
    # Once moved, it stays where it is: no second task.
    assert fallback.move_waiting(now) == []
    assert len(tasks_on(DEFAULT_QUEUE)) == 1


@pytest.mark.django_db
def test_nothing_moves_with_the_fallback_switched_off(orm_broker, settings):
    settings.URGENT_FALLBACK_SECONDS = 0
    waiting, _ = waiting_sessions(timezone.now())
    assert fallback.move_waiting() == []
    assert tasks_on(DEFAULT_QUEUE) == []


@pytest.mark.django_db(transaction=True)
def test_the_task_left_on_the_urgent_queue_does_not_run_the_session_again(
    orm_broker, make_integration, django_capture_on_commit_callbacks, vendor_simulator
):
    """Both queues hold a task for a moved session: the first to claim it runs it, the other does nothing."""
    integration = make_integration("healthy")
    urgent_beat(seconds_ago=1)
    with django_capture_on_commit_callbacks(execute=True):
        session = start_sync(integration, trigger=Trigger.STAFF)
    WorkerHeartbeat.objects.update(last_beat_at=timezone.now() - timedelta(hours=1))
    assert fallback.move_waiting() == [session.pk]
    assert tasks_on(URGENT_QUEUE) == tasks_on(DEFAULT_QUEUE) == [run_task(session)]
    account = integration.settings["account"]

    assert tasks.run_session(session.pk) == State.SUCCEEDED  # the default cluster's task
    requests = vendor_simulator.stats(account)["requests"]["total"]
    finished = SyncSession.objects.get(pk=session.pk)
    assert tasks.run_session(session.pk) is None  # the urgent cluster's, later

    again = SyncSession.objects.get(pk=session.pk)
    fields = ("state", "started_at", "finished_at", "worker", "items_created", "items_seen")
    assert [getattr(again, f) for f in fields] == [getattr(finished, f) for f in fields]
    assert vendor_simulator.stats(account)["requests"]["total"] == requests


# -- the queue position and the reaper follow it ---------------------------------------------------


@pytest.mark.django_db
def test_a_fell_back_sessions_position_counts_the_default_queue():
    now = timezone.now()

    def queued(trigger, minutes_ago, **fields):
        return SyncSessionFactory(
            integration=IntegrationFactory(status=Status.ACTIVE),
            trigger=trigger,
            queued_at=now - timedelta(minutes=minutes_ago),
            **fields,
        )

    queued(Trigger.SCHEDULE, 9)
    queued(Trigger.SCHEDULE, 8)
    queued(Trigger.STAFF, 7)  # on the urgent queue: not ahead of it
    queued(Trigger.API, 6, fell_back=True)
    mine = queued(Trigger.CUSTOMER, 5, fell_back=True)
    queued(Trigger.SCHEDULE, 1)  # behind it
    assert queue_position(mine) == 4


@pytest.mark.django_db
def test_the_reaper_judges_a_fell_back_session_by_the_default_queue(catalog, settings):  # noqa: F811
    """The default workers work through a backlog queued before it: it is left to them, not reaped."""
    settings.SYNC_QUEUED_TIMEOUT_SECONDS = 3600
    now = timezone.now()
    person = SyncSessionFactory(
        integration=IntegrationFactory(status=Status.ACTIVE),
        trigger=Trigger.CUSTOMER,
        queued_at=now - timedelta(hours=2),
        fell_back=True,
    )
    # The default cluster claimed a scheduled session queued before it, five minutes ago. No urgent
    # worker claimed anything: judged by the urgent queue, it would end as not started.
    SyncSessionFactory(
        integration=IntegrationFactory(status=Status.ACTIVE),
        trigger=Trigger.SCHEDULE,
        state=State.RUNNING,
        queued_at=now - timedelta(hours=2, minutes=10),
        started_at=now - timedelta(minutes=5),
        lease_expires_at=now + timedelta(minutes=1),
    )

    assert reaper.reap(now) == []
    person.refresh_from_db()
    assert person.state == State.QUEUED


# -- real clusters -----------------------------------------------------------------------------------



def real_clusters(test):
    """PostgreSQL (qcluster subprocesses share the test database), committed rows, no periodic tasks."""
    marks = [
        pytest.mark.postgres,
        pytest.mark.slow,
        pytest.mark.skipif(
            connection.vendor != "postgresql",
            reason="needs PostgreSQL (DATABASE_URL=postgres://...): qclusters share the test database",
        ),
        pytest.mark.django_db(transaction=True),
        pytest.mark.usefixtures("no_schedules", "catalog"),
    ]
    for mark in marks:
        test = mark(test)
    return test


FALLBACK_SECONDS = 5
# The clusters beat every second, so a window of a few seconds tells a dead cluster from a live one.
FAST_BEATS = {
    "WORKER_HEARTBEAT_SECONDS": 1,
    "WORKER_DEAD_AFTER_SECONDS": 3,
    "URGENT_FALLBACK_SECONDS": FALLBACK_SECONDS,
}


@pytest.fixture
def fast_beats(settings):
    """This process reads heartbeats with the windows the clusters are started with."""
    for name, value in FAST_BEATS.items():
        setattr(settings, name, value)
    return FAST_BEATS


def started_within(session, seconds):
    return wait_for(
        lambda: SyncSession.objects.filter(pk=session.pk, started_at__isnull=False).first(),
        timeout=seconds,
        interval=0.1,
        what=f"session {session.pk} to start",
    )


@real_clusters
def test_with_only_the_default_cluster_a_persons_sync_starts_within_the_fallback_time(
    vendor_simulator, qcluster_factory, real_broker, fast_beats, staff_user  # noqa: F811
):
    real_broker()  # the ORM broker, as the clusters use it
    env = cluster_env(vendor_simulator, **fast_beats)
    qcluster_factory(env=env)
    wait_for(
        lambda: WorkerHeartbeat.objects.filter(cluster=DEFAULT_QUEUE).exists(),
        timeout=15,
        what="a default beat",
    )

    # No urgent worker at all: the sync goes to the default cluster at once.
    first = simulator_integration(vendor_simulator, "healthy.fallback-first")
    session = start_sync(first, trigger=Trigger.STAFF, requested_by=staff_user)
    session.refresh_from_db()
    assert session.fell_back is True
    started = started_within(session, FALLBACK_SECONDS + 10)
    assert started.started_at - started.queued_at < timedelta(seconds=FALLBACK_SECONDS + 10)
    done = wait_for(
        lambda: SyncSession.objects.filter(pk=session.pk, state__in=SyncSession.FINISHED_STATES).first(),
        timeout=30,
        what="the first session to finish",
    )
    assert done.state == State.SUCCEEDED, (done.error_code_id, done.error_message)
    task = wait_for(lambda: Task.objects.filter(id=done.task_id).first(), timeout=10, what="the task's result")
    assert task.cluster == DEFAULT_QUEUE


@real_clusters
def test_a_session_waiting_on_a_dead_urgent_cluster_moves_and_runs_once(
    vendor_simulator, qcluster_factory, real_broker, fast_beats, staff_user  # noqa: F811
):
    real_broker()
    env = cluster_env(vendor_simulator, **fast_beats)
    qcluster_factory(env=env)
    urgent = qcluster_factory(cluster_name=URGENT_QUEUE, env=env)
    wait_for(
        lambda: WorkerHeartbeat.objects.filter(cluster=URGENT_QUEUE).exists(),
        timeout=15,
        what="an urgent beat",
    )
    urgent.kill()

    # Killed a moment ago: its last beat is recent, so the sync is queued for the urgent cluster.
    integration = simulator_integration(vendor_simulator, "healthy.fallback-waiting")
    session = start_sync(integration, trigger=Trigger.CUSTOMER, requested_by=staff_user)
    session.refresh_from_db()
    assert session.fell_back is False
    assert tasks_on(URGENT_QUEUE) == [run_task(session)]

    started = started_within(session, FALLBACK_SECONDS + 10)
    assert started.fell_back is True
    assert started.started_at - started.queued_at < timedelta(seconds=FALLBACK_SECONDS + 10)
    done = wait_for(
        lambda: SyncSession.objects.filter(pk=session.pk, state__in=SyncSession.FINISHED_STATES).first(),
        timeout=30,
        what="the moved session to finish",
    )
    assert done.state == State.SUCCEEDED, (done.error_code_id, done.error_message)
    task = wait_for(lambda: Task.objects.filter(id=done.task_id).first(), timeout=10, what="the task's result")
    assert task.cluster == DEFAULT_QUEUE
    requests = vendor_simulator.stats(integration.settings["account"])["requests"]["total"]

    # The urgent cluster comes back and takes the task still on its queue: it finds the session
    # finished and does nothing.
    qcluster_factory(cluster_name=URGENT_QUEUE, env=env)
    stale = wait_for(
        lambda: Task.objects.filter(name=f"sync-session-{session.pk}", cluster=URGENT_QUEUE).first(),
        timeout=20,
        what="the urgent cluster to run the task left on its queue",
    )
    assert stale.success is True and stale.result is None
    assert Task.objects.filter(name=f"sync-session-{session.pk}").count() == 2
    again = SyncSession.objects.get(pk=session.pk)
    fields = ("state", "started_at", "finished_at")
    assert [getattr(again, f) for f in fields] == [getattr(done, f) for f in fields]
    assert vendor_simulator.stats(integration.settings["account"])["requests"]["total"] == requests
