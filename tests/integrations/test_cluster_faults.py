"""Fault tolerance of the sync engine against real workers and a real database.

These tests start real ``manage.py qcluster`` processes (tests/plugins/qcluster.py)
on the test database, so they need PostgreSQL: SQLite serialises every writer
and cannot show a race. They run in the CI's PostgreSQL pass.

Enqueueing from the test process: tests/settings.py runs tasks inline
(Q_CLUSTER sync=True), and django-q2 reads its configuration once, at import,
into the class attributes of ``django_q.conf.Conf``; changing settings later
changes nothing. The ``real_broker`` fixture therefore patches those
attributes for the length of one test (sync off; the ORM or the Redis broker),
so that the production code paths (``enqueue_session``, ``start_sync``,
``scheduler.tick``) push real signed packages to the queues the subprocess
clusters read. Signing matches because both sides derive SECRET_KEY and the
cluster name from syncconsole.settings.
"""

import os
import threading
import time
from datetime import timedelta

import pytest
import redis
from django.db import connection, connections
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.models import OrmQ, Schedule, Task

from integrations import onboarding
from integrations.models import (
    AccountMapping,
    Integration,
    IntegrationEvent,
    SeenItem,
    SyncedRecord,
    SyncSession,
)
from integrations.sync import reaper, scheduler
from integrations.sync.runner import run_session
from integrations.sync.starting import AlreadySyncing, enqueue_session, start_sync
from tests.conftest import seed_catalog
from tests.factories import IntegrationFactory, TenantFactory

pytest_plugins = ["tests.plugins.simulator", "tests.plugins.qcluster"]

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL (set DATABASE_URL=postgres://...): real concurrent writers and "
        "qcluster subprocesses sharing the test database",
    ),
]

# Subprocesses (and racing threads) only see committed rows.
cluster_db = pytest.mark.django_db(transaction=True)

DEFAULT_QUEUE = "syncconsole"  # Q_CLUSTER["name"]
URGENT_QUEUE = "urgent"  # settings.URGENT_CLUSTER, an ALT_CLUSTERS entry
REDIS_TEST_DB = 15  # a Redis database of its own, flushed before and after


def wait_for(predicate, *, timeout, interval=0.1, what="the condition"):
    """Poll until predicate() is truthy and return its value; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"Timed out after {timeout} s waiting for {what}.")
        time.sleep(interval)


@pytest.fixture
def catalog():
    """The seeded error codes: an earlier transactional test's flush may have removed them."""
    seed_catalog()


@pytest.fixture
def no_schedules():
    """No periodic tasks: the test, not a cluster's scheduler, decides when the reaper and scheduler run."""
    Schedule.objects.all().delete()


@pytest.fixture
def redis_test_url():
    """The Redis server of REDIS_URL (or the local one), database 15, flushed before and after."""
    from tests.plugins.qcluster import redis_url_with_db

    url = redis_url_with_db(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0", REDIS_TEST_DB)
    client = redis.from_url(url)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        client.close()
        pytest.skip(f"needs Redis at {url}: {exc}")
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def real_broker(monkeypatch):
    """``real_broker(redis_url=None)``: from now on this process enqueues to a real broker."""

    def use(redis_url=None):
        monkeypatch.setattr(Conf, "SYNC", False)
        if redis_url:
            monkeypatch.setattr(Conf, "ORM", None)
            monkeypatch.setattr(Conf, "DJANGO_REDIS", None)
            monkeypatch.setattr(Conf, "REDIS", redis_url)
        else:
            monkeypatch.setattr(Conf, "ORM", "default")
        assert type(get_broker(DEFAULT_QUEUE)).__name__ == ("Redis" if redis_url else "ORM")

    return use


def cluster_env(vendor_simulator, **extra):
    env = {
        "VENDOR_SIMULATOR_URL": vendor_simulator.base_url,
        "Q_WORKERS": 1,
        "Q_URGENT_WORKERS": 1,
        "LOG_LEVEL": "INFO",
    }
    env.update(extra)
    return env


def simulator_integration(vendor_simulator, account, **settings):
    """An integration on a simulator account, set up as a person would (discovery, mapping)."""
    return onboarding.create_integration(
        TenantFactory(),
        "simulator",
        f"Simulator {account}",
        settings={"account": account, "base_url": vendor_simulator.base_url, **settings},
        credentials={"api_key": "good-key"},
        queue_first_sync=False,
    )


# -- 1. concurrent start requests ---------------------------------------------------------------


@cluster_db
def test_twenty_concurrent_starts_create_exactly_one_session():
    integration = IntegrationFactory()
    requests = 20
    barrier = threading.Barrier(requests)
    outcomes = [None] * requests

    def attempt(index):
        try:
            # Every thread has a connection of its own; the row is loaded
            # before the barrier so that the threads race on the INSERT.
            own = Integration.objects.get(pk=integration.pk)
            barrier.wait(timeout=30)
            outcomes[index] = start_sync(own, kind=SyncSession.Kind.QUICK, enqueue=False)
        except Exception as exc:  # refusals, and anything unexpected for the assertions below
            outcomes[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)

    created = [o for o in outcomes if isinstance(o, SyncSession)]
    refused = [o for o in outcomes if isinstance(o, AlreadySyncing)]
    assert [o for o in outcomes if not isinstance(o, (SyncSession, AlreadySyncing))] == []
    assert len(created) == 1
    assert len(refused) == 19
    winner = created[0]
    assert {exc.session.pk for exc in refused} == {winner.pk}
    assert {exc.code for exc in refused} == {"ALREADY_SYNCING"}
    assert {exc.http_status for exc in refused} == {409}

    sessions = SyncSession.objects.filter(integration=integration)
    assert list(sessions.values_list("pk", "state")) == [(winner.pk, SyncSession.State.QUEUED)]
    # The losers' "sync requested" events were rolled back with their inserts.
    requested = IntegrationEvent.objects.filter(
        integration=integration, kind=IntegrationEvent.Kind.SYNC_REQUESTED
    )
    assert list(requested.values_list("session_id", flat=True)) == [winner.pk]


# -- 2. a worker killed mid-sync ----------------------------------------------------------------

KILL_ITEMS = 20_000
KILL_PAGE_SIZE = 200
LEASE_SECONDS = 3
# The killed cluster locked the task's ORM queue row for Q_RETRY seconds;
# after that the next cluster is handed the same task. Q_TIMEOUT stays below
# Q_RETRY, as django-q2 requires.
KILL_RETRY_SECONDS = 10
KILL_TIMEOUT_SECONDS = 8


@cluster_db
def test_sigkilled_worker_session_is_reaped_kept_and_never_run_twice(
    vendor_simulator, qcluster_factory, real_broker, no_schedules, catalog
):
    account = f"big-{KILL_ITEMS}.sigkill"
    vendor_simulator.reset(account)
    integration = simulator_integration(vendor_simulator, account, page_size=KILL_PAGE_SIZE)
    assert integration.account_mappings.count() == 2
    env = cluster_env(
        vendor_simulator,
        SYNC_LEASE_SECONDS=LEASE_SECONDS,
        Q_RETRY=KILL_RETRY_SECONDS,
        Q_TIMEOUT=KILL_TIMEOUT_SECONDS,
    )

    real_broker()  # the ORM broker
    session = start_sync(
        integration, kind=SyncSession.Kind.FULL, trigger=SyncSession.Trigger.SCHEDULE, enqueue=False
    )
    task_id = enqueue_session(session.pk)
    session.refresh_from_db()
    assert session.task_id == task_id
    assert OrmQ.objects.filter(key=DEFAULT_QUEUE).count() == 1

    doomed = qcluster_factory(env=env)
    running = wait_for(
        lambda: SyncSession.objects.filter(
            pk=session.pk, state=SyncSession.State.RUNNING, pages__gte=5
        ).first(),
        timeout=30,
        interval=0.05,
        what="the session to be running with 5 pages written",
    )
    doomed.kill()
    killed_at = timezone.now()
    assert not doomed.running

    # The lease is still good: the reaper leaves the session alone.
    assert reaper.reap() == []
    lease_expires_at = SyncSession.objects.get(pk=session.pk).lease_expires_at
    assert lease_expires_at > killed_at

    # The reaper, polled as its schedule would run it (every 0.25 s here
    # instead of every minute), ends the session once the lease ran out.
    reaped = wait_for(reaper.reap, timeout=LEASE_SECONDS + 5, interval=0.25, what="the reaper to end it")
    assert reaped == [session.pk]
    lost = SyncSession.objects.get(pk=session.pk)
    assert lost.state == SyncSession.State.UNKNOWN
    assert lost.error_code_id == "SYNC_LEASE_LOST"
    assert lost.lease_expires_at is None
    assert lost.finished_at > lease_expires_at
    assert lost.finished_at - killed_at <= timedelta(seconds=LEASE_SECONDS + 1)
    assert lost.worker == running.worker

    # What the killed worker committed stays: each page's records and its
    # counters were written in one transaction.
    kept = SyncedRecord.objects.filter(integration=integration).count()
    assert lost.pages >= 5
    assert kept == lost.pages * KILL_PAGE_SIZE
    assert lost.items_created == kept
    assert lost.items_seen == kept
    assert kept < KILL_ITEMS
    integration.refresh_from_db()
    assert integration.last_session_id == session.pk
    assert not SyncSession.objects.filter(integration=integration, state__in=SyncSession.OPEN_STATES).exists()

    # The ORM broker still holds the task the killed worker never
    # acknowledged. Once its lock (Q_RETRY) runs out a new cluster is handed
    # it again, and the task finds its session no longer queued: it does
    # nothing, not even a request to the vendor.
    assert OrmQ.objects.filter(key=DEFAULT_QUEUE).count() == 1
    requests_before = vendor_simulator.stats(account)["requests"]["total"]
    qcluster_factory(env=env)
    redelivered = wait_for(
        lambda: Task.objects.filter(id=task_id).first(),
        timeout=KILL_RETRY_SECONDS + 20,
        interval=0.25,
        what="the redelivered task's result",
    )
    assert redelivered.name == f"sync-session-{session.pk}"
    assert list(redelivered.args) == [session.pk]
    assert redelivered.success is True
    assert redelivered.result is None  # integrations.tasks.run_session: not queued, nothing done
    assert redelivered.attempt_count == 1  # the killed attempt never reported
    # (The urgent queue may hold the event consumer the reaper's commit kicked: not this test's task.)
    wait_for(
        lambda: not OrmQ.objects.filter(key=DEFAULT_QUEUE).exists(), timeout=10, what="the task to be acknowledged"
    )
    assert vendor_simulator.stats(account)["requests"]["total"] == requests_before
    again = SyncSession.objects.get(pk=session.pk)
    fields = ("state", "started_at", "finished_at", "worker", "pages", "items_created", "items_seen")
    assert [getattr(again, f) for f in fields] == [getattr(lost, f) for f in fields]
    assert SyncedRecord.objects.filter(integration=integration).count() == kept

    # A new full sync (run here, in this process) completes with exactly the
    # account's items; what the killed worker wrote counts as unchanged.
    integration.refresh_from_db()
    fresh = start_sync(
        integration, kind=SyncSession.Kind.FULL, trigger=SyncSession.Trigger.STAFF, enqueue=False
    )
    finished = run_session(fresh.pk)
    assert finished is not None
    assert finished.state == SyncSession.State.SUCCEEDED, (finished.error_code_id, finished.error_message)
    assert finished.items_total == KILL_ITEMS
    assert finished.items_seen == KILL_ITEMS
    assert finished.pages == KILL_ITEMS // KILL_PAGE_SIZE
    assert finished.items_created == KILL_ITEMS - kept
    assert finished.items_unchanged == kept
    assert finished.items_updated == 0
    assert finished.items_deleted == 0
    records = SyncedRecord.objects.filter(integration=integration)
    assert records.count() == KILL_ITEMS
    assert records.filter(deleted=False).count() == KILL_ITEMS
    # Neither session leaves its "seen unchanged" bookkeeping behind.
    assert not SeenItem.objects.filter(session_id__in=[session.pk, fresh.pk]).exists()
    history = SyncSession.objects.filter(integration=integration).order_by("pk").values_list("pk", "state")
    assert list(history) == [(session.pk, SyncSession.State.UNKNOWN), (fresh.pk, SyncSession.State.SUCCEEDED)]
    # The killed session ran once and was handed out once more, doing nothing then.
    assert Task.objects.filter(name=f"sync-session-{session.pk}").count() == 1


# -- 3. a person's sync does not wait behind the scheduled backlog -------------------------------

BACKLOG = 1_000
STILL_QUEUED_AT_LEAST = 900


def make_backlog(vendor_simulator, count):
    """`count` active, mapped integrations on one healthy simulator account, all due."""
    tenant = TenantFactory()
    template = IntegrationFactory.build(tenant=tenant)
    template.set_credentials({"api_key": "good-key"}, set_at=timezone.now())
    due = timezone.now() - timedelta(minutes=5)
    integrations = Integration.objects.bulk_create(
        [
            Integration(
                tenant=tenant,
                connector="simulator",
                name=f"Backlog {n:04d}",
                settings={"account": "healthy.backlog", "base_url": vendor_simulator.base_url},
                credentials_ciphertext=template.credentials_ciphertext,
                credentials_set_at=template.credentials_set_at,
                status=Integration.Status.ACTIVE,
                status_changed_at=due,
                mapping_complete=True,
                next_sync_at=due,
            )
            for n in range(count)
        ]
    )
    AccountMapping.objects.bulk_create(
        [
            AccountMapping(integration=i, vendor_account_id=a, vendor_account_name=a, tenant_account=a)
            for i in integrations
            for a in ("acct-1", "acct-2")
        ]
    )
    return integrations


@pytest.fixture(params=["orm", pytest.param("redis", marks=pytest.mark.redis)])
def broker_kind(request):
    """("orm", None) or ("redis", url of a dedicated, flushed Redis database)."""
    if request.param == "redis":
        return "redis", request.getfixturevalue("redis_test_url")
    return "orm", None


@cluster_db
def test_person_sync_runs_before_the_scheduled_backlog_drains(
    broker_kind, vendor_simulator, qcluster_factory, real_broker, no_schedules, catalog, staff_user, settings
):
    kind, redis_url = broker_kind
    real_broker(redis_url)
    settings.SYNC_SCHEDULER_BATCH = 500  # one tick queues the backlog in batches, as in production
    # The urgent cluster starts late on purpose; without an urgent worker the person's sync would
    # go to the default cluster (tests/integrations/test_worker_fallback.py): not here.
    settings.URGENT_FALLBACK_SECONDS = 0

    backlog = make_backlog(vendor_simulator, BACKLOG)
    queued = scheduler.tick()
    assert scheduler.tick() == []
    assert len(queued) == BACKLOG
    scheduled = SyncSession.objects.filter(integration_id__in=[i.pk for i in backlog])
    assert set(scheduled.values_list("state", "trigger")) == {
        (SyncSession.State.QUEUED, SyncSession.Trigger.SCHEDULE)
    }
    assert scheduled.count() == BACKLOG
    assert scheduled.exclude(task_id="").count() == BACKLOG
    assert get_broker(DEFAULT_QUEUE).queue_size() == BACKLOG

    # Staff ask for a sync after the backlog was queued.
    person = simulator_integration(vendor_simulator, "healthy.person")
    session = start_sync(
        person, kind=SyncSession.Kind.QUICK, trigger=SyncSession.Trigger.STAFF, requested_by=staff_user
    )
    session.refresh_from_db()
    assert session.task_id
    assert get_broker(URGENT_QUEUE).queue_size() == 1
    assert get_broker(DEFAULT_QUEUE).queue_size() == BACKLOG

    env = cluster_env(vendor_simulator, URGENT_FALLBACK_SECONDS=0)
    qcluster_factory(redis_url=redis_url, env=env)
    # The default cluster (one worker) is busy with the backlog before the
    # urgent one (one worker) even starts.
    wait_for(
        lambda: scheduled.filter(state__in=SyncSession.FINISHED_STATES).exists(),
        timeout=30,
        what="the default cluster to finish a scheduled session",
    )
    qcluster_factory(redis_url=redis_url, cluster_name=URGENT_QUEUE, env=env)

    done = wait_for(
        lambda: SyncSession.objects.filter(pk=session.pk, state__in=SyncSession.FINISHED_STATES).first(),
        timeout=40,
        interval=0.05,
        what="the person's session to finish",
    )
    still_queued = scheduled.filter(state=SyncSession.State.QUEUED).count()
    assert done.state == SyncSession.State.SUCCEEDED, (done.error_code_id, done.error_message)
    assert done.items_created == 120
    assert still_queued > STILL_QUEUED_AT_LEAST, f"{kind}: only {still_queued} of {BACKLOG} still queued"

    # It ran on the urgent cluster; no scheduled session did.
    task = wait_for(lambda: Task.objects.filter(id=session.task_id).first(), timeout=10, what="its result")
    assert task.cluster == URGENT_QUEUE
    assert task.result == SyncSession.State.SUCCEEDED
    others = Task.objects.filter(name__startswith="sync-session-").exclude(pk=task.pk)
    backlog_clusters = set(others.values_list("cluster", flat=True))
    assert backlog_clusters <= {DEFAULT_QUEUE}
