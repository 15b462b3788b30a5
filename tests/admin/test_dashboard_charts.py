"""The dashboard's charts (syncconsole/activity.py): sessions per hour by outcome, failing integrations over time.

The numbers are checked against sessions and status changes placed in known
hours; the page is checked for the three SVG charts with a bar per hour and
a title on each; the queries are checked to be aggregates over a time range
that never count the issues.
"""

import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations.models import Integration, IntegrationEvent, SyncSession
from issues.models import SyncIssue
from syncconsole import activity
from tests.factories import IntegrationEventFactory, IntegrationFactory, SyncIssueFactory, SyncSessionFactory

Status = Integration.Status
State = SyncSession.State
pytestmark = pytest.mark.django_db


def finished(integration, state, ago, now):
    at = now - ago
    return SyncSessionFactory(
        integration=integration,
        state=state,
        error_code_id="VENDOR_TIMEOUT" if state == State.FAILED else None,
        queued_at=at - timedelta(seconds=5),
        started_at=at - timedelta(seconds=4),
        finished_at=at,
    )


def test_sessions_are_counted_per_hour_and_outcome(error_catalog):
    now = activity.hour_floor(timezone.now()) + timedelta(minutes=30)  # a minute ago is this hour
    integration = IntegrationFactory()
    for state in (State.SUCCEEDED, State.SUCCEEDED, State.FAILED):
        finished(integration, state, timedelta(minutes=1), now)
    finished(integration, State.WARNINGS, timedelta(hours=3), now)
    finished(integration, State.UNKNOWN, timedelta(days=3), now)
    finished(integration, State.SUCCEEDED, timedelta(days=8), now)  # before the week
    SyncSessionFactory(integration=integration, state=State.RUNNING, started_at=now)  # not finished

    counts = activity.sessions_per_hour(now)

    assert counts[activity.hour_floor(now - timedelta(minutes=1))] == {"succeeded": 2, "failed": 1}
    assert counts[activity.hour_floor(now - timedelta(hours=3))] == {"warnings": 1}
    assert counts[activity.hour_floor(now - timedelta(days=3))] == {"unknown": 1}
    assert sum(sum(hour.values()) for hour in counts.values()) == 5

    charts = activity.activity(now, {})
    assert len(charts["day"].bars) == 24 and len(charts["week"].bars) == 168
    assert charts["day"].total_words == "4 sessions"
    assert charts["week"].total_words == "5 sessions"
    newest = charts["day"].bars[-1]
    assert newest.title.endswith(": 2 succeeded, 1 failed")
    assert [s.colour for s in newest.segments] == ["#15803d", "#b91c1c"]  # stacked by outcome, succeeded first
    assert charts["day"].bars[0].title.endswith(": no sessions")


def test_failing_integrations_are_worked_back_from_today_and_the_status_changes(error_catalog):
    now = timezone.now()
    still_failing = IntegrationFactory(status=Status.FAILING)
    recovered = IntegrationFactory(status=Status.ACTIVE)
    IntegrationFactory(status=Status.AUTH_FAILING)  # failing for longer than the week: no event in it

    def changed(integration, from_status, to_status, ago):
        IntegrationEventFactory(
            integration=integration,
            kind=IntegrationEvent.Kind.STATUS_CHANGED,
            from_status=from_status,
            to_status=to_status,
            created_at=now - ago,
        )

    changed(recovered, Status.ACTIVE, Status.FAILING, timedelta(hours=5))
    changed(still_failing, Status.ACTIVE, Status.FAILING, timedelta(hours=3))
    changed(recovered, Status.FAILING, Status.ACTIVE, timedelta(hours=2))
    changed(recovered, Status.SETUP, Status.ACTIVE, timedelta(hours=30))  # not about failing

    status_counts = {Status.FAILING: 1, Status.AUTH_FAILING: 1, Status.ACTIVE: 1}
    failing = activity.failing_per_hour(now, status_counts)

    def at_end_of_hour(ago):
        return failing[activity.hour_floor(now - ago)]

    nothing_else = {"unknown": 0, "credentials_invalid": 0}
    assert at_end_of_hour(timedelta(hours=6)) == {"failing": 0, "auth_failing": 1, **nothing_else}
    assert at_end_of_hour(timedelta(hours=5))["failing"] == 1  # the one that recovered
    assert at_end_of_hour(timedelta(hours=3))["failing"] == 2
    assert at_end_of_hour(timedelta(hours=2))["failing"] == 1
    assert at_end_of_hour(timedelta(0)) == {"failing": 1, "auth_failing": 1, **nothing_else}
    assert len(failing) == 168


def test_the_dashboard_draws_three_charts_with_a_title_per_hour(support_client, error_catalog):
    now = timezone.now()
    integration = IntegrationFactory(status=Status.FAILING)
    finished(integration, State.SUCCEEDED, timedelta(minutes=2), now)
    finished(integration, State.FAILED, timedelta(hours=26), now)

    page = support_client.get("/admin/").content.decode()

    charts = {}
    for key in ("day", "week", "failing"):
        match = re.search(rf'<div class="sc-panel sc-chart-panel" id="sc-chart-{key}">(.*?)</div>', page, re.S)
        assert match, key
        charts[key] = match.group(1)
        assert "<svg" in charts[key]
    assert charts["day"].count("<title>") == 24 and charts["week"].count("<title>") == 168
    assert charts["failing"].count("<title>") == 168
    assert charts["day"].count('class="sc-bar"') == 1  # the hour with the success
    assert charts["week"].count('class="sc-bar"') == 2
    assert "Sessions per hour, last 24 hours" in charts["day"] and "1 session" in charts["day"]
    assert "1 integration failing now" in charts["failing"]
    # A time axis: hours in the day chart, days in the week charts.
    assert re.search(r'class="sc-tick-label"[^>]*>\d\d:00</text>', charts["day"])
    assert re.search(r'class="sc-tick-label"[^>]*>(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d+</text>', charts["week"])


def session_queries(client):
    """The GROUP BY queries over the sessions' finish times that the dashboard runs."""
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/admin/").status_code == 200
    table = SyncSession._meta.db_table
    return [q["sql"] for q in captured.captured_queries if "GROUP BY" in q["sql"] and f'"{table}"."finished_at" >=' in q["sql"]]


def test_the_charts_read_aggregates_over_a_time_range_and_never_count_the_issues(support_client, error_catalog):
    integration = IntegrationFactory(status=Status.WARNINGS)
    SyncIssueFactory.create_batch(3, integration=integration)

    with CaptureQueriesContext(connection) as captured:
        assert support_client.get("/admin/").status_code == 200

    events_table = IntegrationEvent._meta.db_table
    grouped = [q["sql"] for q in captured.captured_queries if "GROUP BY" in q["sql"]]
    changes = [sql for sql in grouped if f'"{events_table}"."created_at" >=' in sql]
    assert len(changes) == 1, grouped
    issues_table = SyncIssue._meta.db_table
    assert not [q["sql"] for q in captured.captured_queries if issues_table in q["sql"] and "COUNT(" in q["sql"].upper()]


def test_settled_hours_are_read_once_and_recent_ones_again_after_a_while(support_client, error_catalog, monkeypatch):
    now = timezone.now()
    integration = IntegrationFactory()
    finished(integration, State.FAILED, timedelta(hours=3), now)  # a settled hour

    first = session_queries(support_client)
    # Per hour and state, and the error codes' (code, tenant) pairs: the settled hours, then the recent ones.
    assert len(first) == 4, first
    assert sum('"finished_at" < ' in sql for sql in first) == 2
    assert session_queries(support_client) == []  # within RECENT_SECONDS: all from the cache

    # The recent hours kept for no time: read on every request, the settled ones still from the cache.
    cache.clear()
    monkeypatch.setattr(activity, "RECENT_SECONDS", 0)
    assert len(session_queries(support_client)) == 4
    finished(integration, State.SUCCEEDED, timedelta(seconds=1), now)
    for _ in range(2):
        again = session_queries(support_client)
        assert len(again) == 2 and not [sql for sql in again if '"finished_at" < ' in sql], again
    charts = activity.activity(timezone.now(), {})
    assert charts["day"].total_words == "2 sessions"
    assert activity.sessions_per_hour(timezone.now())[activity.hour_floor(now - timedelta(hours=3))] == {"failed": 1}
    codes = activity.top_codes(timezone.now())
    assert codes == [
        {"error_code": "VENDOR_TIMEOUT", "error_code__title": codes[0]["error_code__title"], "sessions": 1, "tenants": 1}
    ]


def test_a_session_at_the_settled_hour_is_counted_once(error_catalog):
    now = timezone.now()
    settled = activity.hour_floor(now - activity.SETTLING)
    integration = IntegrationFactory()
    for at in (settled - timedelta(microseconds=1), settled, settled + timedelta(microseconds=1)):
        SyncSessionFactory(integration=integration, state=State.SUCCEEDED, queued_at=at, started_at=at, finished_at=at)

    counts = activity.sessions_per_hour(now)

    assert sum(sum(hour.values()) for hour in counts.values()) == 3
    assert counts[settled - activity.HOUR] == {"succeeded": 1} and counts[settled] == {"succeeded": 2}
