"""The reaper (abandoned sessions end as unknown) and the scheduler (due integrations get one queued session)."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations.models import Integration, IntegrationEvent, SyncedRecord, SyncSession
from integrations.sync import reaper, scheduler
from integrations.sync.finishing import finish_session
from integrations.sync.prefetch import PageFeed
from integrations.sync.reaper import reap
from integrations.sync.runner import LeaseLost, SessionRun, claim, run_session
from integrations.sync.starting import start_sync
from issues.models import SyncIssue
from tests.factories import IntegrationFactory, SyncSessionFactory, TenantFactory

Status = Integration.Status
State = SyncSession.State


def active_integration(**kwargs):
    earlier = timezone.now() - timedelta(days=1)
    return IntegrationFactory(
        status=Status.ACTIVE,
        first_sync_finished_at=earlier,
        last_outcome=Integration.Outcome.SUCCEEDED,
        last_outcome_at=earlier,
        last_success_at=earlier,
        **kwargs,
    )


def running_session(integration, *, lease_expires_at, **kwargs):
    started = lease_expires_at - timedelta(seconds=settings.SYNC_LEASE_SECONDS)
    return SyncSessionFactory(
        integration=integration,
        state=State.RUNNING,
        queued_at=started,
        started_at=started,
        heartbeat_at=started,
        lease_expires_at=lease_expires_at,
        worker="worker-1:123",
        **kwargs,
    )


# -- the reaper ------------------------------------------------------------------------


@pytest.mark.django_db
def test_running_session_whose_lease_ran_out_ends_unknown(error_catalog):
    now = timezone.now()
    integration = active_integration()
    lost = running_session(integration, lease_expires_at=now - timedelta(seconds=1), items_seen=300, pages=3)
    alive = running_session(active_integration(), lease_expires_at=now + timedelta(seconds=30))

    assert reap(now=now) == [lost.pk]

    lost.refresh_from_db()
    assert lost.state == State.UNKNOWN
    assert lost.error_code_id == "SYNC_LEASE_LOST"
    assert "lease expired" in lost.error_message
    assert lost.finished_at == now
    assert lost.lease_expires_at is None
    assert (lost.items_seen, lost.pages) == (300, 3)  # what the worker reported is kept
    assert "Lease expired" in lost.log[-2]["message"]
    integration.refresh_from_db()
    assert integration.status == Status.UNKNOWN
    assert integration.last_session_id == lost.pk
    assert integration.last_error_code == "SYNC_LEASE_LOST"
    assert integration.consecutive_unsuccessful == 1
    assert integration.next_sync_at > now
    event = IntegrationEvent.objects.get(integration=integration, kind=IntegrationEvent.Kind.STATUS_CHANGED)
    assert (event.from_status, event.to_status, event.session_id) == (Status.ACTIVE, Status.UNKNOWN, lost.pk)
    issue = SyncIssue.objects.get(integration=integration)
    assert (issue.error_code_id, issue.state, issue.external_id) == ("SYNC_LEASE_LOST", "open", "")

    alive.refresh_from_db()
    assert alive.state == State.RUNNING
    assert alive.finished_at is None
    assert alive.integration.status == Status.ACTIVE

    # Ended once: a second pass finds nothing, and the integration can sync again.
    assert reap(now=now) == []
    assert start_sync(integration, enqueue=False).state == State.QUEUED


@pytest.mark.django_db
def test_queued_session_nobody_picked_up_ends_unknown(error_catalog):
    now = timezone.now()
    timeout = timedelta(seconds=settings.SYNC_QUEUED_TIMEOUT_SECONDS)
    integration = active_integration()
    stale = SyncSessionFactory(integration=integration, queued_at=now - timeout - timedelta(seconds=1))
    recent = SyncSessionFactory(
        integration=active_integration(), queued_at=now - timeout + timedelta(minutes=1)
    )

    assert reap(now=now) == [stale.pk]

    stale.refresh_from_db()
    assert stale.state == State.UNKNOWN
    assert stale.error_code_id == "SYNC_NOT_STARTED"
    assert stale.started_at is None
    assert stale.finished_at == now
    integration.refresh_from_db()
    assert integration.status == Status.UNKNOWN
    assert integration.last_error_code == "SYNC_NOT_STARTED"
    recent.refresh_from_db()
    assert recent.state == State.QUEUED
    assert recent.finished_at is None


@pytest.mark.django_db
def test_a_reaped_session_is_not_the_runners_any_more(error_catalog):
    integration = active_integration(credentials={"api_key": "good-key"})
    session = SyncSessionFactory(integration=integration)
    now = timezone.now()
    assert claim(session.pk, "worker-1:123", now) == 1
    run = SessionRun(SyncSession.objects.select_related("integration").get(pk=session.pk), "worker-1:123")

    later = now + timedelta(seconds=settings.SYNC_LEASE_SECONDS + 1)
    assert reap(now=later) == [session.pk]

    with pytest.raises(LeaseLost):
        run.heartbeat(now)
    # Finishing it as the runner would is refused, and it cannot be claimed again.
    assert finish_session(session.pk, state=State.SUCCEEDED, worker="worker-1:123") is None
    assert claim(session.pk, "worker-2:456", now) == 0
    session.refresh_from_db()
    assert (session.state, session.error_code_id) == (State.UNKNOWN, "SYNC_LEASE_LOST")
    assert session.finished_at == later


@pytest.mark.django_db
def test_a_lease_renewed_after_the_reaper_listed_the_session_is_kept(error_catalog, monkeypatch):
    """The reaper reads expired leases without locks; the worker renews before the reaper ends it."""
    now = timezone.now()
    integration = active_integration()
    session = running_session(integration, lease_expires_at=now - timedelta(seconds=1))
    run = SessionRun(SyncSession.objects.select_related("integration").get(pk=session.pk), "worker-1:123")
    real_finish = reaper.finish_session

    def renew_then_finish(*args, **kwargs):
        run.heartbeat(timezone.now())
        return real_finish(*args, **kwargs)

    monkeypatch.setattr(reaper, "finish_session", renew_then_finish)

    assert reap(now=now) == []

    session.refresh_from_db()
    assert session.state == State.RUNNING
    assert session.finished_at is None
    assert session.lease_expires_at > now
    integration.refresh_from_db()
    assert integration.status == Status.ACTIVE
    run.heartbeat(timezone.now())  # still the worker's


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_worker_renewing_its_lease_concurrently_is_never_reaped(error_catalog, monkeypatch):
    """Reaper and worker on their own connections, the renewal landing inside the reaper's window.

    Each round starts with a lease that just ran out (a worker that paused).
    The reaper lists it, waits a little (widening the window between its
    unlocked read and its locked finish), then ends it; the worker renews its
    lease at some moment around that. Either may win, but a worker whose
    renewal succeeded must find its session still running.
    """
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serialises writers, so the two never overlap")
    import random
    import threading
    import time

    from django.db import connections

    real_finish = reaper.finish_session

    def slow_finish(*args, **kwargs):
        time.sleep(0.05)
        return real_finish(*args, **kwargs)

    monkeypatch.setattr(reaper, "finish_session", slow_finish)
    kept = reaped = 0
    for round_number in range(12):
        integration = active_integration()
        session = running_session(integration, lease_expires_at=timezone.now() - timedelta(milliseconds=1))
        run = SessionRun(SyncSession.objects.select_related("integration").get(pk=session.pk), "worker-1:123")
        barrier = threading.Barrier(2, timeout=20)
        outcome = {}

        def worker(delay=random.uniform(0.0, 0.08)):
            try:
                barrier.wait()
                time.sleep(delay)
                try:
                    run.heartbeat(timezone.now())
                    outcome["renewed"] = True
                except LeaseLost:
                    outcome["renewed"] = False
            finally:
                connections.close_all()

        def reaper_thread():
            try:
                barrier.wait()
                outcome["reaped"] = reap()
            finally:
                connections.close_all()

        threads = [threading.Thread(target=worker), threading.Thread(target=reaper_thread)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not any(thread.is_alive() for thread in threads), "a thread hung"

        session.refresh_from_db()
        if outcome["renewed"]:
            assert session.state == State.RUNNING, f"round {round_number}: a renewed session was reaped"
            assert session.pk not in outcome["reaped"]
            kept += 1
        else:
            assert (session.state, session.error_code_id) == (State.UNKNOWN, "SYNC_LEASE_LOST")
            assert outcome["reaped"] == [session.pk]
            reaped += 1
        SyncSession.objects.filter(pk=session.pk).update(state=State.CANCELLED, lease_expires_at=None)
    # The renewal landed after the reaper's read in some rounds: the race was really run.
    assert kept > 0


@pytest.mark.django_db
def test_runner_reaped_between_pages_stops_without_finishing_again(make_integration, monkeypatch, settings):
    settings.SYNC_BATCH_PAGES = 1  # a transaction per page
    integration = make_integration("big-3000", page_size=500)
    session = start_sync(integration, kind=SyncSession.Kind.FULL, enqueue=False)
    reaped_at = timezone.now() + timedelta(hours=1)
    reaped = []
    real_get = PageFeed.get
    asked = []

    def stalling_get(feed, until=None):
        # The engine asks for the next page between transactions, in its own
        # thread (the feed's thread never touches the database).
        asked.append(until)
        if len(asked) == 2:
            # Page 1 is written and its lease extended; the worker now stalls until the reaper gives up on it.
            reaped.extend(reap(now=reaped_at))
        return real_get(feed, until=until)

    monkeypatch.setattr(PageFeed, "get", stalling_get)

    assert run_session(session.pk) is None

    assert reaped == [session.pk]
    session.refresh_from_db()
    assert session.state == State.UNKNOWN
    assert session.error_code_id == "SYNC_LEASE_LOST"
    assert session.finished_at == reaped_at
    # Page 1 stays; page 2, written after the reaper ended the session, was rolled back.
    assert (session.pages, session.items_seen, session.items_created) == (1, 500, 500)
    assert SyncedRecord.objects.filter(integration=integration).count() == 500
    integration.refresh_from_db()
    assert integration.status == Status.UNKNOWN
    assert integration.last_session_id == session.pk
    assert integration.sync_cursor == ""
    assert list(
        IntegrationEvent.objects.filter(
            integration=integration, kind=IntegrationEvent.Kind.STATUS_CHANGED
        ).values_list("from_status", "to_status")
    ) == [(Status.SETUP, Status.UNKNOWN)]


@pytest.mark.django_db
def test_a_transaction_of_several_pages_that_lost_its_lease_writes_none_of_them(make_integration, monkeypatch, settings):
    settings.SYNC_BATCH_PAGES = 5
    settings.SYNC_BATCH_SECONDS = 600
    integration = make_integration("big-3000", page_size=300)
    session = start_sync(integration, kind=SyncSession.Kind.FULL, enqueue=False)
    reaped_at = timezone.now() + timedelta(hours=1)
    real_get = PageFeed.get
    asked, heartbeats = [], []

    def get_after_the_reaper(feed, until=None):
        asked.append(until)
        if len(asked) == 2:
            # Pages 1-5 are committed with their lease; the reaper gives up on the session now.
            reap(now=reaped_at)
        return real_get(feed, until=until)

    def counted_heartbeat(run, now):
        heartbeats.append(now)
        return real_heartbeat(run, now)

    real_heartbeat = SessionRun.heartbeat
    monkeypatch.setattr(PageFeed, "get", get_after_the_reaper)
    # Every page read joins the transaction in hand, up to SYNC_BATCH_PAGES: two transactions of five.
    monkeypatch.setattr(PageFeed, "ready", lambda feed: real_get(feed))
    monkeypatch.setattr(SessionRun, "heartbeat", counted_heartbeat)

    assert run_session(session.pk) is None

    assert len(heartbeats) == 2
    session.refresh_from_db()
    assert (session.state, session.error_code_id, session.finished_at) == (State.UNKNOWN, "SYNC_LEASE_LOST", reaped_at)
    # The first transaction's five pages and its counters stay; none of the second's five.
    assert (session.pages, session.items_seen, session.items_created) == (5, 1500, 1500)
    records = SyncedRecord.objects.filter(integration=integration)
    assert records.count() == 1500
    assert set(records.values_list("external_id", flat=True)) == {f"item-{n:07d}" for n in range(1, 1501)}


@pytest.mark.django_db
def test_a_session_runs_once_however_often_its_task_is_delivered(make_integration):
    integration = make_integration("healthy")
    session = start_sync(integration, enqueue=False)

    first = run_session(session.pk)
    assert first.state == State.SUCCEEDED
    assert run_session(session.pk) is None

    session.refresh_from_db()
    assert (session.state, session.items_created) == (State.SUCCEEDED, 120)
    assert session.finished_at == first.finished_at
    assert SyncedRecord.objects.filter(integration=integration).count() == 120


# -- the scheduler ---------------------------------------------------------------------


@pytest.mark.django_db
def test_tick_queues_one_schedule_session_per_due_integration(
    django_capture_on_commit_callbacks, monkeypatch
):
    now = timezone.now()
    past = now - timedelta(minutes=5)
    due = [
        active_integration(next_sync_at=past),
        IntegrationFactory(status=Status.WARNINGS, next_sync_at=past),
        IntegrationFactory(status=Status.FAILING, next_sync_at=past - timedelta(hours=1)),
        IntegrationFactory(status=Status.UNKNOWN, next_sync_at=past),
        IntegrationFactory(status=Status.AUTH_FAILING, next_sync_at=now),
    ]
    syncing = active_integration(next_sync_at=past)
    SyncSessionFactory(integration=syncing, state=State.RUNNING, queued_at=past)
    skipped = [
        active_integration(next_sync_at=past, paused=True),
        IntegrationFactory(status=Status.SETUP, next_sync_at=past),
        IntegrationFactory(status=Status.QUALITY_ASSURANCE, next_sync_at=past),
        IntegrationFactory(status=Status.INACTIVE, next_sync_at=past),
        IntegrationFactory(status=Status.DELETED, next_sync_at=past),
        IntegrationFactory(status=Status.CREDENTIALS_INVALID, next_sync_at=past),
        IntegrationFactory(status=Status.ACTIVE, next_sync_at=past, mapping_complete=False),
        active_integration(next_sync_at=now + timedelta(minutes=1)),
        active_integration(next_sync_at=None),
    ]

    with django_capture_on_commit_callbacks() as callbacks:
        ids = scheduler.tick(now=now)

    sessions = SyncSession.objects.filter(pk__in=ids)
    assert sorted(sessions.values_list("integration_id", flat=True)) == sorted(i.pk for i in due)
    for integration in due:
        session = SyncSession.objects.get(integration=integration)
        assert (session.state, session.kind, session.trigger) == (State.QUEUED, "quick", "schedule")
        assert session.queued_at == now
        integration.refresh_from_db()
        assert integration.next_sync_at is None
    for integration in skipped:
        assert not integration.sessions.exists()
        before = integration.next_sync_at
        integration.refresh_from_db()
        assert integration.next_sync_at == before
    assert syncing.sessions.count() == 1

    # The tasks go to the broker once the sessions are committed: one callback, every session, not urgent.
    assert len(callbacks) == 1
    enqueued = []
    monkeypatch.setattr(scheduler, "enqueue_session", lambda pk, urgent=False, **_: enqueued.append((pk, urgent)) or f"task-{pk}")
    callbacks[0]()
    assert sorted(enqueued) == sorted((pk, False) for pk in ids)

    # Nothing is due twice.
    with django_capture_on_commit_callbacks():
        assert scheduler.tick(now=now + timedelta(seconds=1)) == []


@pytest.mark.django_db
def test_tick_costs_the_same_queries_for_5_and_200_due_integrations(django_capture_on_commit_callbacks):
    tenant = TenantFactory()
    now = timezone.now()

    def tick_queries(count, at):
        IntegrationFactory.create_batch(
            count, tenant=tenant, status=Status.ACTIVE, next_sync_at=at - timedelta(minutes=1)
        )
        # The commit callback is captured, not run: with the inline broker of the tests it would run
        # every session right here. The broker's own tables (django_q_*) are left out of the count:
        # the ORM broker writes one row per task, the Redis broker none.
        with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks():
            ids = scheduler.tick(now=at)
        assert len(ids) == count
        return [q["sql"] for q in queries.captured_queries if "django_q_" not in q["sql"]]

    few = tick_queries(5, now)
    many = tick_queries(200, now + timedelta(seconds=1))

    assert len(many) == len(few), [sql[:70] for sql in many]


@pytest.mark.django_db(transaction=True)
def test_scheduled_sessions_run_and_come_due_again(simulator_settings, error_catalog):
    past = timezone.now() - timedelta(minutes=1)

    def simulated(**kwargs):
        return IntegrationFactory(
            status=Status.ACTIVE,
            settings=simulator_settings("healthy"),
            credentials={"api_key": "good-key"},
            **kwargs,
        )

    due = [simulated(next_sync_at=past) for _ in range(3)]
    paused = simulated(next_sync_at=past, paused=True)

    ids = scheduler.tick()

    assert len(ids) == 3
    for integration in due:
        session = integration.sessions.get()
        assert session.trigger == SyncSession.Trigger.SCHEDULE
        assert session.state == State.SUCCEEDED
        assert session.items_created == 120
        assert session.task_id
        integration.refresh_from_db()
        assert integration.status == Status.ACTIVE
        assert integration.next_sync_at >= session.finished_at + integration.sync_interval
    assert not paused.sessions.exists()
