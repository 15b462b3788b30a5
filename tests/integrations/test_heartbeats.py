"""Worker heartbeats: integrations/sync/heartbeats.py (rows, liveness) and sync/worker_beat.py (the thread).

The last tests start real qcluster processes (PostgreSQL): their workers beat
while one of them is busy with a slow sync, and stop beating once killed.
"""

import logging
import os
import threading
import time
from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.conf import Conf
from django_q.signals import post_spawn
from django_q.tasks import async_task

from integrations.models import SyncSession, WorkerHeartbeat
from integrations.sync import heartbeats, worker_beat
from integrations.sync.starting import enqueue_session, start_sync
from tests.integrations.test_cluster_faults import (  # noqa: F401 (fixtures)
    catalog,
    cluster_env,
    no_schedules,
    real_broker,
    simulator_integration,
    wait_for,
)

pytest_plugins = ["tests.plugins.simulator", "tests.plugins.qcluster"]


@pytest.mark.django_db
def test_a_beat_is_one_upsert_per_worker():
    now = timezone.now()
    heartbeats.beat("syncconsole", "host-a", 11, now - timedelta(seconds=5))
    with CaptureQueriesContext(connection) as queries:
        heartbeats.beat("syncconsole", "host-a", 11, now)
    assert len(queries.captured_queries) == 1
    heartbeats.beat("syncconsole", "host-a", 12, now)
    heartbeats.beat("urgent", "host-a", 11, now)

    rows = WorkerHeartbeat.objects.order_by("cluster", "pid")
    rows = rows.values_list("cluster", "host", "pid", "last_beat_at")
    assert list(rows) == [
        ("syncconsole", "host-a", 11, now),
        ("syncconsole", "host-a", 12, now),
        ("urgent", "host-a", 11, now),
    ]


@pytest.mark.django_db
def test_liveness_per_cluster_in_one_query(settings):
    settings.WORKER_DEAD_AFTER_SECONDS = 30
    settings.URGENT_FALLBACK_SECONDS = 60
    now = timezone.now()
    heartbeats.beat("syncconsole", "a", 1, now - timedelta(seconds=2))
    heartbeats.beat("syncconsole", "a", 2, now - timedelta(seconds=29))
    heartbeats.beat("syncconsole", "b", 3, now - timedelta(seconds=31))  # dead
    heartbeats.beat("urgent", "a", 4, now - timedelta(seconds=45))  # dead, but not for the fallback's 60 s

    with CaptureQueriesContext(connection) as queries:
        clusters = heartbeats.liveness(now)
    assert len(queries.captured_queries) == 1
    assert [(c.name, c.live_workers, c.alive, c.falls_back) for c in clusters] == [
        ("syncconsole", 2, True, False),
        ("urgent", 0, False, False),
    ]
    assert clusters[0].last_beat_at == now - timedelta(seconds=2)
    assert clusters[1].last_beat_at == now - timedelta(seconds=45)
    assert heartbeats.urgent_fallback_active(now) is False

    later = now + timedelta(seconds=16)  # the urgent worker silent for 61 s
    assert [c.falls_back for c in heartbeats.liveness(later)] == [False, True]
    assert heartbeats.urgent_fallback_active(later) is True
    settings.URGENT_FALLBACK_SECONDS = 0
    assert [c.falls_back for c in heartbeats.liveness(later)] == [False, False]
    assert heartbeats.urgent_fallback_active(later) is False


@pytest.mark.django_db
def test_a_cluster_that_never_beat_is_listed_dead():
    clusters = heartbeats.liveness(timezone.now())
    assert [(c.name, c.live_workers, c.last_beat_at, c.falls_back) for c in clusters] == [
        ("syncconsole", 0, None, False),
        ("urgent", 0, None, True),
    ]


@pytest.mark.django_db
def test_rows_of_workers_silent_for_a_day_are_removed():
    now = timezone.now()
    heartbeats.beat("syncconsole", "a", 1, now - timedelta(days=1, seconds=1))
    heartbeats.beat("syncconsole", "a", 2, now - timedelta(hours=23))
    assert heartbeats.clean(now) == 1
    assert list(WorkerHeartbeat.objects.values_list("pid", flat=True)) == [2]


# -- the thread ----------------------------------------------------------------------------------------


def last_beat_of(pid):
    return WorkerHeartbeat.objects.filter(pid=pid).values_list("last_beat_at", flat=True).first()


@pytest.mark.django_db(transaction=True)
def test_the_thread_beats_survives_a_failing_database_and_stops(monkeypatch, caplog):
    real_beat = heartbeats.beat
    failures = []

    def beat_failing_twice(*args):
        if len(failures) < 2:
            failures.append(args)
            raise OperationalError("server closed the connection unexpectedly")
        return real_beat(*args)

    monkeypatch.setattr(heartbeats, "beat", beat_failing_twice)
    thread = worker_beat.WorkerBeat("urgent", interval=0.05, parent_pid=os.getppid())
    with caplog.at_level(logging.INFO, logger="integrations.sync.worker_beat"):
        thread.start()
        try:
            first = wait_for(lambda: last_beat_of(thread.pid), timeout=10, what="a first beat")
            wait_for(lambda: last_beat_of(thread.pid) > first, timeout=10, what="a later beat")
        finally:
            thread.stop()
            thread.join(5)
    assert not thread.is_alive()
    assert len(failures) == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once per failing streak, not once per beat
    assert "heartbeat of urgent worker" in warnings[0].getMessage()
    assert any("works again" in r.getMessage() for r in caplog.records)
    stopped_at = last_beat_of(thread.pid)
    time.sleep(0.2)
    assert last_beat_of(thread.pid) == stopped_at


@pytest.mark.django_db(transaction=True)
def test_an_orphaned_worker_does_not_beat():
    """Its sentinel is gone (another parent now): nothing hands it tasks, so it must not look alive."""
    thread = worker_beat.WorkerBeat("syncconsole", interval=0.05, parent_pid=os.getppid() + 100_000)
    thread.start()
    thread.join(5)
    assert not thread.is_alive()
    assert list(WorkerHeartbeat.objects.values_list("cluster", "pid")) == []


@pytest.mark.django_db(transaction=True)
def test_every_spawned_worker_starts_beating(monkeypatch):
    """IntegrationsConfig.ready connects the thread to django-q2's post_spawn, sent in each new worker."""
    monkeypatch.setattr(Conf, "SYNC", False)  # a cluster's worker, not the inline tasks of this process
    answers = post_spawn.send(sender="django_q", proc_name="Process-test")
    threads = [thread for receiver, thread in answers if receiver is worker_beat.start]
    assert len(threads) == 1
    try:
        wait_for(
            lambda: WorkerHeartbeat.objects.filter(cluster="syncconsole", pid=os.getpid()).exists(),
            timeout=10,
            what="the spawned worker's beat",
        )
    finally:
        threads[0].stop()
        threads[0].join(5)


@pytest.mark.django_db(transaction=True)
def test_inline_tasks_start_no_thread():
    """Inline tasks (the tests' broker) run through a worker loop in the caller, which sends post_spawn too."""
    assert Conf.SYNC
    before = {thread.ident for thread in threading.enumerate()}
    spawned = []
    post_spawn.connect(lambda **kwargs: spawned.append(kwargs), weak=False, dispatch_uid="test-inline-spawn")
    try:
        async_task("math.floor", 2.5)  # run here, through django-q2's worker loop
    finally:
        post_spawn.disconnect(dispatch_uid="test-inline-spawn")
    assert len(spawned) == 1
    started = [t for t in threading.enumerate() if t.ident not in before and isinstance(t, worker_beat.WorkerBeat)]
    assert started == []
    assert not WorkerHeartbeat.objects.exists()


# -- real clusters -------------------------------------------------------------------------------------

real_clusters = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL: qclusters share the test database"
)


@real_clusters
@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_busy_workers_beats_go_on_and_a_killed_clusters_stop(
    vendor_simulator, qcluster_factory, real_broker, no_schedules, catalog  # noqa: F811
):
    real_broker()
    cluster = qcluster_factory(env=cluster_env(vendor_simulator, Q_WORKERS=2, WORKER_HEARTBEAT_SECONDS=1))
    workers = wait_for(
        lambda: list(WorkerHeartbeat.objects.filter(cluster="syncconsole").values_list("host", "pid"))
        if WorkerHeartbeat.objects.filter(cluster="syncconsole").count() == 2
        else None,
        timeout=15,
        what="a heartbeat from each of the two workers",
    )
    assert {pid for _, pid in workers} <= child_pids(cluster.pid)

    # A slow sync (the simulator answers each page after 3 s) keeps one worker busy.
    integration = simulator_integration(vendor_simulator, "slow.busy-beats", page_size=40)
    session = start_sync(integration, trigger=SyncSession.Trigger.SCHEDULE, enqueue=False)
    enqueue_session(session.pk)
    running = wait_for(
        lambda: SyncSession.objects.filter(pk=session.pk, state=SyncSession.State.RUNNING).first(),
        timeout=15,
        what="the slow session to run",
    )
    busy_pid = int(running.worker.rsplit(":", 1)[1])
    seen = {WorkerHeartbeat.objects.get(pid=busy_pid).last_beat_at}
    still_running = SyncSession.objects.filter(pk=session.pk, state=SyncSession.State.RUNNING)
    while still_running.exists() and len(seen) < 4:
        time.sleep(0.5)
        seen.add(WorkerHeartbeat.objects.get(pid=busy_pid).last_beat_at)
    assert len(seen) >= 4, "the busy worker stopped beating while it ran the sync"

    cluster.kill()
    last = dict(WorkerHeartbeat.objects.values_list("pid", "last_beat_at"))
    time.sleep(3)
    assert dict(WorkerHeartbeat.objects.values_list("pid", "last_beat_at")) == last


def child_pids(parent):
    """Every process below `parent` (the qcluster's sentinel, its workers, pusher and monitor)."""
    children, found = {parent}, True
    while found:
        found = False
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) in children:
                continue
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid in children:
                children.add(int(entry))
                found = True
    return children - {parent}
