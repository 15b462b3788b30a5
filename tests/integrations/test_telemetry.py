"""What a session tells the operators: the counters behind /metrics move by exactly one per finished
session, whoever finished it, and each session logs one start line and one finish line.

The syncs are real: start_sync queues the task on commit, the inline broker runs it, and the connector
talks HTTP to the live vendor simulator. The last test runs the session in a real qcluster process.
"""

import json
import os
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from integrations.models import SyncSession
from integrations.sync.finishing import finish_session
from integrations.sync.reaper import reap
from integrations.sync.starting import start_sync
from syncconsole import logs
from tests.factories import SyncSessionFactory
from tests.logs import json_log  # noqa: F401 (a fixture)
from tests.metrics import TOKEN, scrape, value

pytest_plugins = ["tests.plugins.qcluster"]

State = SyncSession.State
live_sync = pytest.mark.django_db(transaction=True)

FINISHED = "syncconsole_sessions_finished_total"
DURATION_COUNT = "syncconsole_session_duration_seconds_count"
ITEMS_SUM = "syncconsole_session_items_sum"
ITEMS_BUCKET = "syncconsole_session_items_bucket"


@pytest.fixture(autouse=True)
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN


def finished(samples, outcome, connector="simulator"):
    return value(samples, FINISHED, connector=connector, outcome=outcome)


@live_sync
def test_each_finished_session_moves_its_counter_by_exactly_one(make_integration, sync, vendor_simulator):
    before = scrape()
    clean = sync(make_integration("healthy"))
    assert (clean.state, clean.items_seen) == (State.SUCCEEDED, 120)
    after_clean = scrape()
    assert finished(after_clean, "succeeded") == finished(before, "succeeded") + 1
    assert finished(after_clean, "failed") == finished(before, "failed")
    labels = {"connector": "simulator", "outcome": "succeeded"}
    assert value(after_clean, DURATION_COUNT, **labels) == value(before, DURATION_COUNT, **labels) + 1
    assert value(after_clean, ITEMS_SUM, **labels) == value(before, ITEMS_SUM, **labels) + 120
    # 120 items: above the 100 bucket, within the 1000 one.
    assert value(after_clean, ITEMS_BUCKET, le="100.0", **labels) == value(
        before, ITEMS_BUCKET, le="100.0", **labels
    )
    assert (
        value(after_clean, ITEMS_BUCKET, le="1000.0", **labels)
        == value(before, ITEMS_BUCKET, le="1000.0", **labels) + 1
    )

    refused = sync(make_integration("invalid-key"))
    assert (refused.state, refused.error_code_id) == (State.FAILED, "AUTH_INVALID")
    after_failure = scrape()
    assert finished(after_failure, "failed") == finished(after_clean, "failed") + 1
    assert finished(after_failure, "succeeded") == finished(after_clean, "succeeded")


@pytest.mark.django_db
def test_a_finish_that_rolls_back_counts_nothing(error_catalog):
    session = SyncSessionFactory(state=State.RUNNING, started_at=timezone.now(), worker="w:1")
    before = scrape()
    with pytest.raises(RuntimeError), transaction.atomic():
        assert finish_session(session.pk, state=State.SUCCEEDED, worker="w:1") is not None
        raise RuntimeError("the transaction goes back")
    after = scrape()
    connector = session.integration.connector
    assert finished(after, "succeeded", connector) == finished(before, "succeeded", connector) == 0
    session.refresh_from_db()
    assert session.state == State.RUNNING


@pytest.mark.django_db
def test_reaped_sessions_are_counted_by_reason(error_catalog, settings):
    now = timezone.now()
    lost = SyncSessionFactory(
        state=State.RUNNING,
        started_at=now - timedelta(minutes=5),
        lease_expires_at=now - timedelta(seconds=1),
        worker="w:1",
    )
    stuck = SyncSessionFactory(
        state=State.QUEUED,
        trigger="schedule",
        queued_at=now - timedelta(seconds=settings.SYNC_QUEUED_TIMEOUT_SECONDS + 60),
    )
    before = scrape()
    assert sorted(reap(now)) == sorted([lost.pk, stuck.pk])
    after = scrape()
    reaped = "syncconsole_sessions_reaped_total"
    assert (
        value(after, reaped, reason="SYNC_LEASE_LOST") == value(before, reaped, reason="SYNC_LEASE_LOST") + 1
    )
    assert (
        value(after, reaped, reason="SYNC_NOT_STARTED")
        == value(before, reaped, reason="SYNC_NOT_STARTED") + 1
    )
    connector = lost.integration.connector
    assert finished(after, "unknown", connector) == finished(before, "unknown", connector) + 2
    # The queued one never started: no duration to observe.
    labels = {"connector": connector, "outcome": "unknown"}
    assert value(after, DURATION_COUNT, **labels) == value(before, DURATION_COUNT, **labels) + 1
    # A second pass finds nothing to end and counts nothing.
    assert reap(now) == []
    assert value(scrape(), reaped, reason="SYNC_LEASE_LOST") == value(after, reaped, reason="SYNC_LEASE_LOST")


@live_sync
def test_a_session_logs_one_start_and_one_finish_line_with_its_ids(make_integration, sync, json_log):
    integration = make_integration("warnings")
    with logs.context(request_id="req-sync-42"):
        session = sync(integration)
    assert session.state == State.WARNINGS
    ids = {"session": session.pk, "integration": integration.pk, "tenant": integration.tenant_id}
    started = json_log.events("session_started", session=session.pk)
    ended = json_log.events("session_finished", session=session.pk)
    assert len(started) == 1 and len(ended) == 1, json_log.text[-3000:]
    for line in started + ended:
        assert {key: line[key] for key in ids} == ids
        assert line["request_id"] == "req-sync-42"  # the task carries the id of what queued it
        assert line["logger"] == "integrations.sessions"
    assert (started[0]["kind"], started[0]["trigger"], started[0]["connector"]) == (
        "full",
        "staff",
        "simulator",
    )
    line = ended[0]
    assert line["level"] == "INFO"
    assert (line["outcome"], line["error_code"]) == ("warnings", "")
    assert line["items_seen"] == session.items_seen == 121
    assert line["items_created"] == session.items_created
    assert line["items_warnings"] == session.items_warnings > 0
    assert line["pages"] == session.pages and line["http_requests"] == session.http_requests
    assert line["duration_seconds"] >= 0
    # Every line logged while the session ran carries its ids.
    during = [entry for entry in json_log.lines() if entry.get("session") == session.pk]
    assert len(during) >= 2
    assert all(
        entry.get("integration") == integration.pk and entry.get("tenant") == integration.tenant_id
        for entry in during
    )


@live_sync
def test_a_failed_session_logs_its_finish_as_a_warning_with_its_code(make_integration, sync, json_log):
    session = sync(make_integration("forbidden"))
    [line] = json_log.events("session_finished", session=session.pk)
    assert (line["level"], line["outcome"], line["error_code"]) == ("WARNING", "failed", "AUTH_FORBIDDEN")
    assert len(json_log.events("session_started", session=session.pk)) == 1


@pytest.mark.django_db
def test_a_reaped_session_logs_its_finish_once(error_catalog, json_log):
    now = timezone.now()
    lost = SyncSessionFactory(
        state=State.RUNNING,
        started_at=now - timedelta(minutes=5),
        lease_expires_at=now - timedelta(seconds=1),
        worker="w:1",
    )
    with django_on_commit_immediately():
        reap(now)
        reap(now)
    [line] = json_log.events("session_finished", session=lost.pk)
    assert (line["outcome"], line["error_code"]) == ("unknown", "SYNC_LEASE_LOST")
    assert json_log.events("session_started", session=lost.pk) == []  # it started elsewhere, long ago


class django_on_commit_immediately:
    """Inside the test's transaction, on_commit callbacks would never run: run them as the outer block ends."""

    def __enter__(self):
        from django.test import TestCase

        self._context = TestCase.captureOnCommitCallbacks(execute=True)
        return self._context.__enter__()

    def __exit__(self, *exc):
        return self._context.__exit__(*exc)


# -- across processes (PostgreSQL, a real qcluster) -----------------------------------------------


@pytest.fixture
def orm_broker(monkeypatch):
    """From now on this process enqueues to the ORM broker, which the qcluster subprocess reads."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr(Conf, "ORM", "default")


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL: a qcluster process shares the test database"
)
@live_sync
def test_a_session_finished_by_a_worker_process_counts_in_the_web_process(
    make_integration, vendor_simulator, qcluster_factory, orm_broker
):
    """The counter is the database's: the process answering /metrics never ran the session."""
    integration = make_integration("healthy")
    before = scrape()
    cluster = qcluster_factory(
        env={"LOG_FORMAT": "json", "Q_WORKERS": 1, "VENDOR_SIMULATOR_URL": vendor_simulator.base_url}
    )
    with logs.context(request_id="req-from-the-web"):
        session = start_sync(integration, kind=SyncSession.Kind.FULL, trigger=SyncSession.Trigger.SCHEDULE)
    deadline = time.monotonic() + 60
    while session.state not in SyncSession.FINISHED_STATES and time.monotonic() < deadline:
        time.sleep(0.2)
        session.refresh_from_db()
    assert session.state == State.SUCCEEDED, cluster.log()[-3000:]
    assert session.worker.rsplit(":", 1)[1] != str(os.getpid())
    after = scrape()
    assert finished(after, "succeeded") == finished(before, "succeeded") + 1
    # The worker's own lines: JSON, with the session's ids and the request id that queued it.
    lines = [json.loads(line) for line in cluster.log().splitlines() if line.startswith("{")]
    mine = [line for line in lines if line.get("session") == session.pk and line.get("event")]
    assert [line["event"] for line in mine] == ["session_started", "session_finished"], cluster.log()[-3000:]
    assert {line["request_id"] for line in mine} == {"req-from-the-web"}
    assert {(line["tenant"], line["integration"]) for line in mine} == {
        (integration.tenant_id, integration.pk)
    }
