"""The scheduler at scale (every due integration in one tick, in batches, within a time budget, one
broker round trip per batch, an index scan whatever the statistics) and the reaper of queued
sessions (a moving backlog is never reaped, a stuck or passed-over session is)."""

import json
import os
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.signing import SignedPackage

from integrations.models import Integration, SyncSession
from integrations.sync import scheduler
from integrations.sync.broker import BatchedBroker
from integrations.sync.reaper import reap
from tests.factories import IntegrationFactory, SyncSessionFactory, TenantFactory

Status = Integration.Status
State = SyncSession.State
Trigger = SyncSession.Trigger

REDIS_DB = 13  # this module's own Redis database, flushed before and after


def make_due(count, at, tenant=None, status=Status.ACTIVE):
    """`count` integrations the scheduler may queue, due at `at` or up to ten minutes before."""
    tenant = tenant or TenantFactory()
    return Integration.objects.bulk_create(
        [
            Integration(
                tenant=tenant,
                connector="simulator",
                name=f"Due {n:05d}",
                status=status,
                mapping_complete=True,
                next_sync_at=at - timedelta(seconds=n % 600),
            )
            for n in range(count)
        ],
        batch_size=5000,
    )


def business_queries(queries):
    """The SQL of the captured queries, without transaction statements."""
    return [
        q["sql"]
        for q in queries.captured_queries
        if not q["sql"].upper().startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "BEGIN", "COMMIT", "ROLLBACK"))
    ]


# -- one tick queues everything due ---------------------------------------------------


@pytest.mark.django_db
def test_one_tick_queues_every_due_integration_in_batches(django_capture_on_commit_callbacks):
    now = timezone.now()
    due = make_due(250, now)
    paused = IntegrationFactory(status=Status.ACTIVE, next_sync_at=now - timedelta(hours=1), paused=True)

    with django_capture_on_commit_callbacks() as callbacks:
        ids = scheduler.tick(now=now, batch_size=100)

    assert len(ids) == 250
    assert sorted(SyncSession.objects.filter(pk__in=ids).values_list("integration_id", flat=True)) == sorted(
        i.pk for i in due
    )
    assert not Integration.objects.filter(pk__in=[i.pk for i in due], next_sync_at__isnull=False).exists()
    assert not paused.sessions.exists()
    assert len(callbacks) == 3  # one broker round trip per batch
    with django_capture_on_commit_callbacks():
        assert scheduler.tick(now=now, batch_size=100) == []


@pytest.mark.django_db
def test_a_batch_costs_the_same_queries_however_many_batches(django_capture_on_commit_callbacks):
    """Queries grow with the number of batches, never with the rows in them."""
    tenant = TenantFactory()
    now = timezone.now()

    def tick_queries(count, at):
        make_due(count, at, tenant=tenant)
        with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks():
            assert len(scheduler.tick(now=at, batch_size=50)) == count
        return business_queries(queries)

    one = tick_queries(50, now)  # one full batch, then a SELECT that finds nothing
    four = tick_queries(200, now + timedelta(seconds=1))

    per_batch = len(one) - 1
    assert per_batch == 3, one  # SELECT due, INSERT sessions returning their ids, UPDATE next_sync_at
    assert len(four) == 4 * per_batch + 1
    assert all("LIMIT 50" in sql for sql in four if "next_sync_at <=" in sql)


@pytest.mark.django_db
def test_a_tick_stops_when_its_time_is_up_and_the_next_goes_on_most_overdue_first(
    django_capture_on_commit_callbacks,
):
    now = timezone.now()
    tenant = TenantFactory()
    oldest = [
        IntegrationFactory(tenant=tenant, status=Status.ACTIVE, next_sync_at=now - timedelta(hours=h))
        for h in (5, 4)
    ]
    newer = [
        IntegrationFactory(tenant=tenant, status=Status.FAILING, next_sync_at=now - timedelta(minutes=m))
        for m in (3, 2, 1)
    ]

    with django_capture_on_commit_callbacks():
        first = scheduler.tick(now=now, batch_size=2, budget_seconds=0)
    assert sorted(
        SyncSession.objects.filter(pk__in=first).values_list("integration_id", flat=True)
    ) == sorted(i.pk for i in oldest)
    with django_capture_on_commit_callbacks():
        rest = scheduler.tick(now=now, batch_size=2)
    assert sorted(SyncSession.objects.filter(pk__in=rest).values_list("integration_id", flat=True)) == sorted(
        i.pk for i in newer
    )


@pytest.mark.django_db
def test_an_integration_that_started_syncing_after_the_select_is_skipped_without_an_error():
    now = timezone.now()
    syncing, due = make_due(2, now)
    person = SyncSessionFactory(integration=syncing, state=State.QUEUED, trigger=Trigger.CUSTOMER)

    with connection.cursor() as cursor:
        cursor.execute(*scheduler.insert_sql([syncing.pk, due.pk], now))
        ids = [row[0] for row in cursor.fetchall()]

    assert list(SyncSession.objects.filter(pk__in=ids).values_list("integration_id", "trigger")) == [
        (due.pk, Trigger.SCHEDULE)
    ]
    assert list(syncing.sessions.values_list("pk", flat=True)) == [person.pk]


def test_the_due_index_holds_exactly_what_the_scheduler_may_queue():
    index = next(i for i in Integration._meta.indexes if i.name == "integration_due")
    negated = next(child for child in index.condition.children if getattr(child, "negated", False))
    assert negated.children == [("status__in", list(Integration.NOT_SCHEDULED))]
    sql, _ = scheduler.due_sql(timezone.now(), 10)
    for status in Integration.NOT_SCHEDULED:
        assert f"'{status}'" in sql


# -- one broker round trip per batch --------------------------------------------------


@pytest.fixture
def real_orm_broker(monkeypatch):
    """Tasks go to the ORM broker instead of running inline (tests/settings.py runs them inline)."""
    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr(Conf, "ORM", "default")


@pytest.mark.django_db
def test_a_batch_reaches_the_orm_broker_in_one_insert(real_orm_broker, django_capture_on_commit_callbacks):
    now = timezone.now()
    make_due(120, now)
    with django_capture_on_commit_callbacks() as callbacks:
        ids = scheduler.tick(now=now, batch_size=60)
    assert len(callbacks) == 2

    with CaptureQueriesContext(connection) as queries:
        for callback in callbacks:
            callback()

    sql = business_queries(queries)
    assert len([q for q in sql if q.startswith("INSERT") and "django_q_ormq" in q]) == 2
    assert len([q for q in sql if q.startswith("UPDATE") and "task_id" in q]) == 2
    assert len(sql) == 4, sql
    packages = [SignedPackage.loads(payload) for payload in OrmQ.objects.values_list("payload", flat=True)]
    assert sorted(p["args"][0] for p in packages) == sorted(ids)
    assert {p["func"] for p in packages} == {"integrations.tasks.run_session"}
    assert {row.key for row in OrmQ.objects.all()} == {settings.Q_CLUSTER["name"]}
    task_ids = dict(SyncSession.objects.filter(pk__in=ids).values_list("pk", "task_id"))
    assert task_ids == {p["args"][0]: p["id"] for p in packages}


@pytest.fixture
def redis_db13(monkeypatch):
    """The Redis broker on database 13 of the local (or REDIS_URL's) server, flushed before and after."""
    from tests.plugins.qcluster import redis_url_with_db

    url = redis_url_with_db(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0", REDIS_DB)
    client = redis.from_url(url)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        client.close()
        pytest.skip(f"needs Redis at {url}: {exc}")
    client.flushdb()
    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr(Conf, "ORM", None)
    monkeypatch.setattr(Conf, "DJANGO_REDIS", None)
    monkeypatch.setattr(Conf, "REDIS", url)
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


@pytest.mark.redis
@pytest.mark.django_db
def test_a_batch_reaches_the_redis_broker_in_one_command(redis_db13, monkeypatch):
    sessions = [SyncSessionFactory(integration=IntegrationFactory(status=Status.ACTIVE)) for _ in range(40)]
    commands = []
    real_execute = redis.Redis.execute_command

    def counting(self, *args, **options):
        commands.append(args[0])
        return real_execute(self, *args, **options)

    monkeypatch.setattr(redis.Redis, "execute_command", counting)

    scheduler.enqueue_all([s.pk for s in sessions])

    assert commands == ["RPUSH"]
    queue = f"django_q:{settings.Q_CLUSTER['name']}:q"
    packages = [SignedPackage.loads(p.decode()) for p in redis_db13.lrange(queue, 0, -1)]
    assert [p["args"][0] for p in packages] == [s.pk for s in sessions]
    for session in sessions:
        session.refresh_from_db()
        assert session.task_id == next(p["id"] for p in packages if p["args"][0] == session.pk)


@pytest.mark.django_db
def test_the_batched_broker_sends_nothing_when_tasks_run_inline():
    broker = BatchedBroker()
    assert broker.flush() == 0


# -- the due query's plan ----------------------------------------------------------------


def explain(sql, params):
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    return plan if isinstance(plan, list) else json.loads(plan)


def plan_nodes(node):
    yield node
    for child in node.get("Plans", ()):
        yield from plan_nodes(child)


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_due_query_is_an_index_scan_whatever_the_statistics_say():
    """Statistics taken when a handful of integrations existed, none due, no session open; then
    20,000 due integrations, 10,000 of them with an open session, and 30,000 finished sessions."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL=postgres://...): planner statistics and EXPLAIN")
    integrations = Integration._meta.db_table
    sessions = SyncSession._meta.db_table
    now = timezone.now()
    tenant = TenantFactory()
    with connection.cursor() as cursor:
        for table in (integrations, sessions):
            cursor.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = off)")
    early = make_due(40, now + timedelta(days=1), tenant=tenant)
    SyncSession.objects.bulk_create(
        [SyncSession(integration=i, state=State.SUCCEEDED, queued_at=now, finished_at=now) for i in early]
    )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {integrations}")
        cursor.execute(f"ANALYZE {sessions}")

    due = make_due(20_000, now, tenant=tenant)
    SyncSession.objects.bulk_create(
        [
            SyncSession(integration=i, state=State.RUNNING, trigger=Trigger.STAFF, queued_at=now)
            for i in due[::2]
        ],
        batch_size=5000,
    )
    SyncSession.objects.bulk_create(
        [
            SyncSession(integration=i, state=State.SUCCEEDED, queued_at=now, finished_at=now)
            for i in due[1::2] + due[::2] + due[1::2]
        ],
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [integrations])
        assert cursor.fetchone()[0] < 100  # the statistics describe the table before the inserts

    plan = explain(*scheduler.due_sql(now, settings.SYNC_SCHEDULER_BATCH))
    nodes = list(plan_nodes(plan[0]["Plan"]))
    on_integrations = [n for n in nodes if n.get("Relation Name") == integrations]
    on_sessions = [n for n in nodes if n.get("Relation Name") == sessions]
    # Served by the partial index: an index scan, or (when earlier tests left other page counts
    # behind) a bitmap heap scan fed by a bitmap index scan of the same index; never a table scan.
    kinds = [n["Node Type"] for n in on_integrations]
    assert kinds in (["Index Scan"], ["Index Only Scan"], ["Bitmap Heap Scan"]), nodes
    if kinds == ["Bitmap Heap Scan"]:
        bitmap = [n for n in nodes if n["Node Type"] == "Bitmap Index Scan" and n.get("Index Name") == "integration_due"]
        assert bitmap, nodes
    else:
        assert on_integrations[0]["Index Name"] == "integration_due"
    # The open-session check is a lookup per due row in the open-session index, never a join or a scan.
    assert on_sessions and all(
        n.get("Index Name") == "one_open_session_per_integration" for n in on_sessions
    ), nodes
    assert not any("Join" in n["Node Type"] or n["Node Type"] == "Seq Scan" for n in nodes), nodes

    with connection.cursor() as cursor:
        cursor.execute(*scheduler.due_sql(now, settings.SYNC_SCHEDULER_BATCH))
        found = [row[0] for row in cursor.fetchall()]
    assert len(found) == settings.SYNC_SCHEDULER_BATCH
    assert set(found) <= {i.pk for i in due[1::2]}

    # Inserting a batch's sessions reads no table: the ids come with the statement.
    nodes = list(plan_nodes(explain(*scheduler.insert_sql(found, now))[0]["Plan"]))
    assert not any(n.get("Relation Name") and n["Node Type"] != "ModifyTable" for n in nodes), nodes


# -- the reaper and a long queue --------------------------------------------------------


def queued(at, trigger=Trigger.SCHEDULE):
    return SyncSessionFactory(
        integration=IntegrationFactory(status=Status.ACTIVE), queued_at=at, trigger=trigger
    )


def claimed(queued_at, started_at, *, finished=True, trigger=Trigger.SCHEDULE):
    return SyncSessionFactory(
        integration=IntegrationFactory(status=Status.ACTIVE),
        trigger=trigger,
        queued_at=queued_at,
        started_at=started_at,
        state=State.SUCCEEDED if finished else State.RUNNING,
        finished_at=started_at + timedelta(seconds=5) if finished else None,
        lease_expires_at=None if finished else started_at + timedelta(hours=1),
    )


@pytest.mark.django_db
def test_a_long_backlog_that_workers_get_through_is_never_reaped(error_catalog):
    now = timezone.now()
    timeout = timedelta(seconds=settings.SYNC_QUEUED_TIMEOUT_SECONDS)
    tick_at = now - 2 * timeout  # one tick queued a backlog that has waited twice the timeout
    backlog = [queued(tick_at) for _ in range(3)]
    claimed(tick_at, now - timedelta(minutes=1))  # the workers are still on it
    claimed(tick_at, now - timedelta(seconds=10), finished=False)

    assert reap(now=now) == []
    assert {s.state for s in SyncSession.objects.filter(pk__in=[s.pk for s in backlog])} == {State.QUEUED}


@pytest.mark.django_db
def test_a_stuck_queue_is_reaped(error_catalog):
    now = timezone.now()
    timeout = timedelta(seconds=settings.SYNC_QUEUED_TIMEOUT_SECONDS)
    waiting = [queued(now - timeout - timedelta(minutes=m)) for m in (1, 30)]
    claimed(
        now - 3 * timeout, now - timeout - timedelta(seconds=1)
    )  # the last claim is older than the timeout
    recent = queued(now - timedelta(minutes=5))

    assert sorted(reap(now=now)) == sorted(s.pk for s in waiting)
    for session in waiting:
        session.refresh_from_db()
        assert (session.state, session.error_code_id) == (State.UNKNOWN, "SYNC_NOT_STARTED")
        assert "no worker of the syncconsole queue" in session.error_message
    recent.refresh_from_db()
    assert recent.state == State.QUEUED


@pytest.mark.django_db
def test_a_session_the_moving_queue_went_past_long_ago_is_reaped(error_catalog):
    """Its task was lost (the Redis broker keeps no receipts): sessions queued an hour after it already ran."""
    now = timezone.now()
    timeout = timedelta(seconds=settings.SYNC_QUEUED_TIMEOUT_SECONDS)
    lost = queued(now - 3 * timeout)
    waiting = queued(now - timeout - timedelta(minutes=30))
    claimed(now - timeout - timedelta(minutes=20), now - timedelta(minutes=2))

    assert reap(now=now) == [lost.pk]
    lost.refresh_from_db()
    assert (lost.state, lost.error_code_id) == (State.UNKNOWN, "SYNC_NOT_STARTED")
    assert "task was lost" in lost.error_message
    waiting.refresh_from_db()
    assert waiting.state == State.QUEUED


@pytest.mark.django_db
def test_each_cluster_is_judged_by_its_own_workers(error_catalog):
    """The default workers getting through the scheduled backlog say nothing about the urgent queue."""
    now = timezone.now()
    timeout = timedelta(seconds=settings.SYNC_QUEUED_TIMEOUT_SECONDS)
    scheduled = queued(now - 2 * timeout)
    person = queued(now - 2 * timeout, trigger=Trigger.CUSTOMER)
    claimed(now - 2 * timeout, now - timedelta(minutes=1))  # a scheduled session: the default queue moves

    assert reap(now=now) == [person.pk]
    person.refresh_from_db()
    assert "no worker of the urgent queue" in person.error_message
    scheduled.refresh_from_db()
    assert scheduled.state == State.QUEUED

    claimed(now - 2 * timeout, now - timedelta(minutes=1), trigger=Trigger.STAFF)
    another = queued(now - 2 * timeout, trigger=Trigger.API)
    assert reap(now=now) == []
    another.refresh_from_db()
    assert another.state == State.QUEUED
