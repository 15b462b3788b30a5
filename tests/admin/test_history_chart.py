"""The sync history chart (integrations/admin/history.py, templates/_history_svg.html).

It used to draw bar height as pure duration (a fast successful run was
invisible next to a slow one), had no time axis, and said "longest 0.0 s".
"""

import re
from datetime import timedelta

from django.utils import timezone

from integrations.admin.common import SESSION_COLOURS
from integrations.admin.history import MIN_BAR, history_chart, history_svg
from integrations.models import SyncSession

State = SyncSession.State


def session(pk, state, finished_ago, seconds, items=0, **counters):
    """An unsaved finished session: the chart reads attributes only."""
    finished_at = timezone.now() - finished_ago
    return SyncSession(
        pk=pk,
        state=state,
        queued_at=finished_at - timedelta(seconds=seconds + 1),
        started_at=finished_at - timedelta(seconds=seconds),
        finished_at=finished_at,
        items_seen=items,
        error_code_id="VENDOR_TIMEOUT" if state == State.FAILED else None,
        **counters,
    )


def history():
    return [  # newest first, as the pages read them
        session(5, State.SUCCEEDED, timedelta(minutes=5), 0.4, items=120),
        session(4, State.FAILED, timedelta(hours=1), 95, items=30),
        session(3, State.WARNINGS, timedelta(hours=2), 600, items=2000, items_failed=12, items_warnings=3),
        session(2, State.SUCCEEDED, timedelta(hours=3), 0.01, items=0),
        SyncSession(pk=1, state=State.RUNNING, queued_at=timezone.now()),  # not finished: not drawn
    ]


def test_a_fast_successful_run_is_a_visible_bar():
    chart = history_chart(history())

    heights = {bar.title.split(":")[0]: float(bar.height) for bar in chart["bars"]}
    assert heights["Session 2"] >= MIN_BAR  # 10 ms
    assert heights["Session 5"] > heights["Session 2"]  # 0.4 s
    assert heights["Session 3"] == max(heights.values())  # 10 minutes
    assert len(chart["bars"]) == 4


def test_bars_are_oldest_first_coloured_by_outcome_on_a_time_axis():
    chart = history_chart(history())

    titles = [bar.title for bar in chart["bars"]]
    assert [t.split(":")[0] for t in titles] == ["Session 2", "Session 3", "Session 4", "Session 5"]
    xs = [float(bar.x) for bar in chart["bars"]]
    assert xs == sorted(xs)
    # Time-proportional: three hours apart from the first to the last, minutes between the last two.
    assert xs[3] - xs[2] < xs[2] - xs[1]
    assert [bar.colour for bar in chart["bars"]] == [
        SESSION_COLOURS[State.SUCCEEDED],
        SESSION_COLOURS[State.WARNINGS],
        SESSION_COLOURS[State.FAILED],
        SESSION_COLOURS[State.SUCCEEDED],
    ]
    assert chart["ticks"], "a time axis with labelled ticks"
    assert all(re.fullmatch(r"\d\d:\d\d|[A-Z][a-z]{2} \d+", tick.label) for tick in chart["ticks"])


def test_every_bar_says_what_it_was_in_words():
    chart = history_chart(history())
    by_session = {bar.title.split(":")[0]: bar.title for bar in chart["bars"]}

    assert "took 10 min" in by_session["Session 3"]
    assert "2,000 items, 15 with issues" in by_session["Session 3"]
    assert "Failed (VENDOR_TIMEOUT)" in by_session["Session 4"] and "took 1 min 35 s" in by_session["Session 4"]
    assert "took 0.4 s" in by_session["Session 5"] and "120 items" in by_session["Session 5"]
    assert "took under 0.1 s" in by_session["Session 2"] and "0 items" in by_session["Session 2"]
    assert chart["longest"] == "10 min" and chart["most_items"] == "2,000 items"


def test_runs_under_a_second_are_not_drawn_as_slow_ones():
    """With nothing over a second the scale tops at a second: "longest 0.0 s" drew 10 ms as full height."""
    chart = history_chart(
        [session(2, State.SUCCEEDED, timedelta(hours=1), 0.012), session(1, State.SUCCEEDED, timedelta(hours=2), 0.010)]
    )

    assert chart["longest"] == "1.0 s"
    assert all(float(bar.height) < 30 for bar in chart["bars"])


def test_the_svg_has_a_title_on_every_bar_and_no_raw_numbers():
    html = history_svg(history(), width=1000, height=140)

    rects = re.findall(r'<rect class="sc-bar"[^>]*><title>([^<]+)</title></rect>', html)
    assert len(rects) == 4
    assert "longest 0.0 s" not in html and "0:0" not in html
    assert re.search(r'class="sc-tick-label"[^>]*>[^<]+</text>', html)
    assert "bar height: duration (top: 10 min)" in html


def test_no_finished_session_says_so():
    assert history_chart([]) is None
    assert "No finished sessions yet." in history_svg([SyncSession(pk=1, state=State.QUEUED, queued_at=timezone.now())])
