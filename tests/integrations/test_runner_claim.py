"""integrations/sync/runner.py, the claim: SYNC_MAX_RUNNING_PER_CONNECTOR puts a session back instead of running it."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.utils import timezone

from integrations.models import Integration, SyncSession
from integrations.sync import runner
from integrations.sync.runner import claim, run_session
from tests.factories import IntegrationFactory, SyncSessionFactory

Status = Integration.Status
State = SyncSession.State


def running(connector, count):
    for _ in range(count):
        SyncSessionFactory(
            integration=IntegrationFactory(status=Status.ACTIVE, connector=connector),
            state=State.RUNNING,
            started_at=timezone.now(),
        )


def queued(connector="simulator", trigger="customer"):
    integration = IntegrationFactory(status=Status.ACTIVE, connector=connector)
    return SyncSessionFactory(integration=integration, trigger=trigger)


@pytest.fixture
def requeued(settings, monkeypatch):
    """What put_back queues again, with the cluster's broker (not the inline one) and no pause."""
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": False}
    settings.SYNC_CONNECTOR_BUSY_DELAY_SECONDS = 0
    calls = []
    monkeypatch.setattr(runner, "enqueue_session", lambda pk, **options: calls.append((pk, options)))
    return calls


@pytest.mark.django_db
def test_a_session_of_a_connector_at_its_cap_is_put_back_not_run(settings, requeued):
    settings.SYNC_MAX_RUNNING_PER_CONNECTOR = 2
    running("simulator", 2)
    running("rest", 3)  # another connector's sessions do not count
    session = queued("simulator", trigger="customer")
    scheduled = queued("simulator", trigger="schedule")

    assert run_session(session.pk, worker="w:1") is None
    assert run_session(scheduled.pk, worker="w:1") is None

    session.refresh_from_db()
    assert (session.state, session.started_at, session.worker) == (State.QUEUED, None, "")
    assert requeued == [
        (session.pk, {"urgent": True, "save_task_id": False}),
        (scheduled.pk, {"urgent": False, "save_task_id": False}),
    ]


@pytest.mark.django_db
def test_below_the_cap_the_claim_goes_through(settings):
    settings.SYNC_MAX_RUNNING_PER_CONNECTOR = 2
    running("simulator", 1)
    running("rest", 5)
    session = queued("simulator")

    assert claim(session.pk, "w:1", timezone.now()) == 1
    session.refresh_from_db()
    assert (session.state, session.worker) == (State.RUNNING, "w:1")
    # Now at the cap: the next one of that connector waits, another connector's does not.
    assert claim(queued("simulator").pk, "w:2", timezone.now()) == 0
    settings.SYNC_MAX_RUNNING_PER_CONNECTOR = 6
    assert claim(queued("rest").pk, "w:3", timezone.now()) == 1


@pytest.mark.django_db
def test_no_cap_by_default(settings, requeued):
    assert settings.SYNC_MAX_RUNNING_PER_CONNECTOR == 0
    running("simulator", 10)
    assert claim(queued("simulator").pk, "w:1", timezone.now()) == 1
    assert requeued == []


@pytest.mark.django_db
def test_a_session_no_longer_queued_is_not_put_back(settings, requeued):
    settings.SYNC_MAX_RUNNING_PER_CONNECTOR = 1
    running("simulator", 1)
    session = queued("simulator")
    SyncSession.objects.filter(pk=session.pk).update(state=State.CANCELLED)

    assert run_session(session.pk, worker="w:1") is None
    assert requeued == []


@pytest.mark.django_db
def test_with_the_inline_broker_the_session_stays_queued(settings, monkeypatch):
    settings.SYNC_MAX_RUNNING_PER_CONNECTOR = 1
    settings.SYNC_CONNECTOR_BUSY_DELAY_SECONDS = 0
    assert settings.Q_CLUSTER["sync"]
    calls = []
    monkeypatch.setattr(runner, "enqueue_session", lambda pk, **options: calls.append(pk))
    running("simulator", 1)
    session = queued("simulator")

    assert run_session(session.pk, worker="w:1") is None
    session.refresh_from_db()
    assert session.state == State.QUEUED
    assert calls == []


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (set DATABASE_URL=postgres://...): concurrent claims")
@pytest.mark.django_db(transaction=True)
def test_workers_claiming_at_the_same_instant_never_pass_the_cap(settings):
    settings.SYNC_MAX_RUNNING_PER_CONNECTOR = 2
    sessions = [queued(connector="simulator").pk for _ in range(8)]
    start = threading.Barrier(len(sessions))

    def claim_at_once(pk):
        try:
            start.wait()
            return claim(pk, f"worker-{pk}", timezone.now())
        finally:
            connection.close()

    for _ in range(3):
        SyncSession.objects.filter(pk__in=sessions).update(state=State.QUEUED, worker="", started_at=None)
        with ThreadPoolExecutor(len(sessions)) as pool:
            claimed = list(pool.map(claim_at_once, sessions))
        assert sum(claimed) == 2
        assert SyncSession.objects.filter(state=State.RUNNING).count() == 2
