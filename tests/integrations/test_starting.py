"""integrations/sync/starting.py: the one-open-session conflict without an error path, and where the open session stands."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations.models import Integration, IntegrationEvent, SyncSession
from integrations.sync.runner import claim
from integrations.sync.starting import QUEUE_POSITION_CAP, AlreadySyncing, queue_position, start_sync
from tests.factories import IntegrationFactory

Status = Integration.Status
Trigger = SyncSession.Trigger


def rollbacks(queries):
    return [query["sql"] for query in queries if "ROLLBACK" in query["sql"].upper()]


@pytest.mark.django_db
def test_bulk_create_ignore_conflicts_honours_the_conditional_constraint():
    """What insert_unless_open relies on: the database skips the second open session, on SQLite and PostgreSQL."""
    integration = IntegrationFactory(status=Status.ACTIVE)
    now = timezone.now()
    SyncSession.objects.create(integration=integration, queued_at=now)

    SyncSession.objects.bulk_create([SyncSession(integration=integration, queued_at=now)], ignore_conflicts=True)
    assert integration.sessions.count() == 1

    integration.sessions.update(state=SyncSession.State.SUCCEEDED)  # finished: outside the condition
    SyncSession.objects.bulk_create([SyncSession(integration=integration, queued_at=now)], ignore_conflicts=True)
    assert integration.sessions.count() == 2


@pytest.mark.django_db
def test_the_conflict_takes_no_error_path():
    integration = IntegrationFactory(status=Status.ACTIVE)
    first = start_sync(integration, trigger=Trigger.CUSTOMER)

    with CaptureQueriesContext(connection) as queries, pytest.raises(AlreadySyncing) as already:
        start_sync(integration, trigger=Trigger.API)

    assert already.value.session == first
    assert already.value.__context__ is None  # no IntegrityError was caught on the way
    assert rollbacks(queries.captured_queries) == []
    inserts = [query["sql"] for query in queries.captured_queries if query["sql"].startswith("INSERT")]
    assert len(inserts) == 1
    assert "ON CONFLICT DO NOTHING" in inserts[0] or "INSERT OR IGNORE" in inserts[0]
    assert integration.sessions.count() == 1
    assert IntegrationEvent.objects.filter(kind=IntegrationEvent.Kind.SYNC_REQUESTED).count() == 1


@pytest.mark.django_db
def test_the_started_session_is_the_inserted_row():
    integration = IntegrationFactory(status=Status.ACTIVE)
    integration.sessions.create(queued_at=timezone.now(), state=SyncSession.State.FAILED)

    session = start_sync(integration, trigger=Trigger.STAFF, kind=SyncSession.Kind.FULL)

    assert session.pk is not None and not session._state.adding
    stored = SyncSession.objects.get(pk=session.pk)
    assert (stored.state, stored.kind, stored.trigger) == ("queued", "full", "staff")
    event = IntegrationEvent.objects.get(kind=IntegrationEvent.Kind.SYNC_REQUESTED)
    assert event.session_id == session.pk


# -- where the open session stands ----------------------------------------------------------------


@pytest.mark.django_db
def test_a_queued_session_says_its_place_in_its_clusters_queue():
    now = timezone.now()
    # Two person syncs queued before it (the urgent queue), one after it, one
    # scheduled sync before it (the default queue, not counted) and one
    # person sync already running (not queued, not counted).
    for minutes, trigger, state in (
        (5, Trigger.CUSTOMER, "queued"),
        (4, Trigger.STAFF, "queued"),
        (3, Trigger.SCHEDULE, "queued"),
        (3, Trigger.API, "running"),
        (-1, Trigger.API, "queued"),
    ):
        IntegrationFactory(status=Status.ACTIVE).sessions.create(
            queued_at=now - timedelta(minutes=minutes), trigger=trigger, state=state
        )
    integration = IntegrationFactory(status=Status.ACTIVE)
    mine = start_sync(integration, trigger=Trigger.CUSTOMER, now=now - timedelta(minutes=2))

    with pytest.raises(AlreadySyncing) as already:
        start_sync(integration, trigger=Trigger.API)

    assert already.value.queue_position == 3
    assert f"session {mine.pk} is queued since" in already.value.message
    assert "position 3 in the urgent queue (2 ahead of it)" in already.value.message


@pytest.mark.django_db
def test_next_in_queue_and_the_cap():
    integration = IntegrationFactory(status=Status.ACTIVE)
    session = start_sync(integration, trigger=Trigger.SCHEDULE)
    with pytest.raises(AlreadySyncing) as already:
        start_sync(integration, trigger=Trigger.API)
    assert already.value.queue_position == 1
    assert "next in the syncconsole queue" in already.value.message

    others = IntegrationFactory.create_batch(3, status=Status.ACTIVE)
    SyncSession.objects.bulk_create(
        SyncSession(integration=other, trigger=Trigger.SCHEDULE, queued_at=session.queued_at - timedelta(seconds=1))
        for other in others
    )
    assert queue_position(session) == 4


@pytest.mark.django_db
def test_queue_position_is_capped(monkeypatch):
    monkeypatch.setattr("integrations.sync.starting.QUEUE_POSITION_CAP", 2)
    integration = IntegrationFactory(status=Status.ACTIVE)
    session = start_sync(integration, trigger=Trigger.CUSTOMER)
    SyncSession.objects.bulk_create(
        SyncSession(integration=other, trigger=Trigger.STAFF, queued_at=session.queued_at - timedelta(seconds=1))
        for other in IntegrationFactory.create_batch(4, status=Status.ACTIVE)
    )
    with pytest.raises(AlreadySyncing) as already:
        start_sync(integration, trigger=Trigger.API)
    assert already.value.queue_position == 3
    assert "more than 2 sessions ahead of it in the urgent queue" in already.value.message
    assert QUEUE_POSITION_CAP == 1000


@pytest.mark.django_db
def test_a_running_session_says_its_progress():
    integration = IntegrationFactory(status=Status.ACTIVE)
    session = start_sync(integration, trigger=Trigger.CUSTOMER)
    started = timezone.now() - timedelta(seconds=42)
    claim(session.pk, "worker-1:123", started)
    SyncSession.objects.filter(pk=session.pk).update(items_seen=1200, items_total=5000)

    with pytest.raises(AlreadySyncing) as already:
        start_sync(integration, trigger=Trigger.API, now=started + timedelta(seconds=42))

    assert already.value.queue_position is None
    assert f"session {session.pk} is running since" in already.value.message
    assert "(started 42 s ago), 1,200 of 5,000 items so far." in already.value.message

    SyncSession.objects.filter(pk=session.pk).update(items_total=None)
    with pytest.raises(AlreadySyncing) as already:
        start_sync(integration, trigger=Trigger.API, now=started + timedelta(seconds=50))
    assert "(started 50 s ago), 1,200 items so far." in already.value.message


# -- many concurrent requests on PostgreSQL ----------------------------------------------------


def transactions_rolled_back():
    """This database's rolled-back transactions, as the statistics have them now."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT xact_rollback FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL: real concurrent writers")
@pytest.mark.django_db(transaction=True)
def test_concurrent_starts_on_postgresql_make_one_session_and_no_error():
    integration = IntegrationFactory(status=Status.ACTIVE)
    requests = 20
    barrier = threading.Barrier(requests)
    outcomes = [None] * requests
    captured = [None] * requests
    before = transactions_rolled_back()

    def attempt(index):
        try:
            own = Integration.objects.get(pk=integration.pk)
            barrier.wait(timeout=30)
            with CaptureQueriesContext(connections["default"]) as queries:
                try:
                    outcomes[index] = start_sync(own, trigger=Trigger.API, enqueue=False)
                except Exception as exc:  # noqa: BLE001 (refusals, and anything unexpected, for the assertions)
                    outcomes[index] = exc
            captured[index] = queries.captured_queries
        finally:
            connections.close_all()  # the backend ends and hands its statistics over

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)

    created = [o for o in outcomes if isinstance(o, SyncSession)]
    refused = [o for o in outcomes if isinstance(o, AlreadySyncing)]
    assert len(created) == 1, outcomes
    assert len(refused) == requests - 1, outcomes
    assert {exc.session.pk for exc in refused} == {created[0].pk}
    assert all(exc.__context__ is None for exc in refused)  # no IntegrityError on the way
    assert [sql for queries in captured for sql in rollbacks(queries)] == []
    assert list(integration.sessions.values_list("pk", flat=True)) == [created[0].pk]

    # A unique violation would have rolled back its transaction: the server counts none.
    deadline = time.monotonic() + 5
    while transactions_rolled_back() != before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert transactions_rolled_back() == before
