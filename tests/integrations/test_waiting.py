"""integrations/sync/waiting.py: how long a queued sync is likely to wait, and the words for it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.models import Integration, SyncSession
from integrations.sync import waiting
from integrations.sync.starting import start_sync
from tests.factories import IntegrationFactory

Status = Integration.Status
Trigger = SyncSession.Trigger
pytestmark = pytest.mark.django_db


@pytest.fixture
def workers(settings):
    """The urgent cluster (a person's syncs) with `n` workers, the default cluster with 3."""

    def set_workers(urgent):
        settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 3, "ALT_CLUSTERS": {"urgent": {"workers": urgent}}}

    return set_workers


def session_of(trigger, state, *, queued_ago=None, ran=None, finished_ago=timedelta(minutes=5), now=None):
    """A session of a new integration: queued `queued_ago`, or finished `finished_ago` after running `ran`."""
    now = now or timezone.now()
    integration = IntegrationFactory(status=Status.ACTIVE)
    if ran is not None:
        finished = now - finished_ago
        return integration.sessions.create(
            trigger=trigger, state=state, queued_at=finished - ran, started_at=finished - ran, finished_at=finished
        )
    started = now - timedelta(seconds=30) if state == SyncSession.State.RUNNING else None
    return integration.sessions.create(
        trigger=trigger, state=state, queued_at=now - (queued_ago or timedelta(minutes=1)), started_at=started
    )


def history(trigger, seconds, **kwargs):
    for duration in seconds:
        session_of(trigger, SyncSession.State.SUCCEEDED, ran=timedelta(seconds=duration), **kwargs)


def test_busy_workers_give_the_median_times_the_sessions_in_front_over_the_workers(workers):
    workers(2)
    now = timezone.now()
    history(Trigger.CUSTOMER, (30, 90, 150))  # median 90 s
    history(Trigger.SCHEDULE, (5000, 5000, 5000))  # another cluster's sessions do not count
    history(Trigger.STAFF, (9000, 9000, 9000, 9000), finished_ago=timedelta(hours=25))  # too old to count
    session_of(Trigger.API, SyncSession.State.RUNNING)
    for minutes in (4, 3, 2):
        session_of(Trigger.CUSTOMER, SyncSession.State.QUEUED, queued_ago=timedelta(minutes=minutes))
    mine = start_sync(IntegrationFactory(status=Status.ACTIVE), trigger=Trigger.CUSTOMER, now=now, enqueue=False)

    estimate = waiting.estimate_wait(mine, now=now)

    # 3 queued before it and 1 running: 4 in front of 2 workers; it starts when the 3rd of them ends,
    # 90 s x (4 - 2 + 1) / 2 = 135 s.
    assert (estimate.queue, estimate.position, estimate.running, estimate.workers) == ("urgent", 4, 1, 2)
    assert (estimate.ahead, estimate.in_front) == (3, 4)
    assert estimate.busy
    assert estimate.minutes == 3
    assert estimate.sentence() == "Queued behind 3 other syncs while 1 other sync runs: likely to start within 3 minutes."


def test_a_free_worker_means_no_wait(workers):
    workers(2)
    history(Trigger.CUSTOMER, (600,))
    session_of(Trigger.CUSTOMER, SyncSession.State.RUNNING)
    mine = start_sync(IntegrationFactory(status=Status.ACTIVE), trigger=Trigger.CUSTOMER, enqueue=False)

    estimate = waiting.estimate_wait(mine)

    assert (estimate.in_front, estimate.busy, estimate.minutes) == (1, False, None)
    assert estimate.sentence() == "It starts in a moment."


def test_no_recent_session_promises_no_time(workers):
    workers(1)
    session_of(Trigger.CUSTOMER, SyncSession.State.RUNNING)
    mine = start_sync(IntegrationFactory(status=Status.ACTIVE), trigger=Trigger.CUSTOMER, enqueue=False)

    estimate = waiting.estimate_wait(mine)

    assert (estimate.busy, estimate.minutes) == (True, None)
    assert estimate.sentence() == "Queued while 1 other sync runs: it starts as soon as a worker is free."


def test_one_sync_and_one_minute_are_singular_more_are_plural(workers):
    workers(1)
    history(Trigger.CUSTOMER, (20,))
    session_of(Trigger.CUSTOMER, SyncSession.State.QUEUED, queued_ago=timedelta(minutes=2))
    mine = start_sync(IntegrationFactory(status=Status.ACTIVE), trigger=Trigger.CUSTOMER, enqueue=False)

    assert waiting.estimate_wait(mine).sentence() == "Queued behind 1 other sync: likely to start within 1 minute."

    for _ in range(2):
        session_of(Trigger.CUSTOMER, SyncSession.State.RUNNING)
    assert (
        waiting.estimate_wait(mine).sentence()
        == "Queued behind 1 other sync while 2 other syncs run: likely to start within 1 minute."
    )


def test_a_wait_under_a_minute_is_within_one_minute_and_longer_ones_round_up(workers):
    workers(1)
    history(Trigger.CUSTOMER, (61,))
    session_of(Trigger.CUSTOMER, SyncSession.State.RUNNING)
    mine = start_sync(IntegrationFactory(status=Status.ACTIVE), trigger=Trigger.CUSTOMER, enqueue=False)

    assert waiting.estimate_wait(mine).minutes == 2  # 61 s is "within 2 minutes", never "within 1"


def test_past_the_counted_positions_it_says_more_than(workers, monkeypatch):
    monkeypatch.setattr("integrations.sync.starting.QUEUE_POSITION_CAP", 2)
    workers(1)
    history(Trigger.CUSTOMER, (60,))
    for minutes in (5, 4, 3, 2):
        session_of(Trigger.STAFF, SyncSession.State.QUEUED, queued_ago=timedelta(minutes=minutes))
    mine = start_sync(IntegrationFactory(status=Status.ACTIVE), trigger=Trigger.CUSTOMER, enqueue=False)

    assert waiting.estimate_wait(mine).sentence().startswith("Queued behind more than 2 other syncs: likely")


def test_a_scheduled_session_waits_on_the_default_clusters_workers(workers):
    workers(8)  # the urgent cluster's workers do not run it
    history(Trigger.SCHEDULE, (120, 120, 120))
    for minutes in (3, 2, 1):
        session_of(Trigger.SCHEDULE, SyncSession.State.QUEUED, queued_ago=timedelta(minutes=minutes))
    mine = start_sync(IntegrationFactory(status=Status.ACTIVE), trigger=Trigger.SCHEDULE, enqueue=False)

    estimate = waiting.estimate_wait(mine)

    assert (estimate.queue, estimate.workers, estimate.in_front, estimate.minutes) == ("syncconsole", 3, 3, 1)
    assert estimate.sentence() == "Queued behind 3 other syncs: likely to start within 1 minute."


def test_running_or_finished_sessions_have_no_estimate(workers):
    workers(2)
    running = session_of(Trigger.CUSTOMER, SyncSession.State.RUNNING)
    finished = session_of(Trigger.CUSTOMER, SyncSession.State.SUCCEEDED, ran=timedelta(seconds=3))

    assert waiting.estimate_wait(running) is None
    assert waiting.estimate_wait(finished) is None
    assert waiting.where_it_stands(running, None) == "It is running."
    assert waiting.where_it_stands(finished, None) == "It has already ended: succeeded."


def test_the_estimate_costs_a_fixed_number_of_queries(workers, django_assert_num_queries):
    workers(1)
    history(Trigger.CUSTOMER, [30] * 80)  # more than the sample: only the newest 50 are read
    session_of(Trigger.CUSTOMER, SyncSession.State.RUNNING)
    mine = start_sync(IntegrationFactory(status=Status.ACTIVE), trigger=Trigger.CUSTOMER, enqueue=False)

    with django_assert_num_queries(3):  # the position, the running sessions, the recent durations
        assert waiting.estimate_wait(mine).minutes == 1
