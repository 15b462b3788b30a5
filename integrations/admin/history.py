"""An integration's sync history as a chart: the console's integration page and the portal's General tab.

One bar per finished session, placed on a time axis at the moment it
finished and coloured by its outcome. Bar height is the duration on a
square-root scale above a minimum, so that a run of half a second is still
a visible bar next to one of ten minutes; a dot gives the items seen (right
axis). Every bar has a <title> saying what it was in words.
templates/_history_svg.html draws it.
"""

import math
from dataclasses import dataclass
from datetime import timedelta

from django.template.loader import render_to_string
from django.utils import timezone

from integrations.admin.common import SESSION_COLOURS
from integrations.words import counted, items_with_issues, natural_duration
from syncconsole.charts import TimeScale, num

HISTORY_TEMPLATE = "_history_svg.html"
MIN_BAR = 6  # px: the height of the fastest run
LEFT, RIGHT, TOP = 48, 12, 8  # px: the duration axis, the right margin, headroom


@dataclass(frozen=True)
class HistoryBar:
    """One finished session; coordinates already formatted for SVG attributes."""

    x: str
    y: str
    width: str
    height: str
    colour: str
    dot_x: str
    dot_y: str
    title: str  # plain text; the template escapes it


@dataclass(frozen=True)
class LegendEntry:
    x: str
    colour: str
    label: str


def bar_title(session):
    """What one bar says on hover: the outcome, when, how long, how many items."""
    finished = timezone.localtime(session.finished_at)
    parts = [f"Session {session.pk}: {session.get_state_display()}"]
    if session.error_code_id:
        parts[0] += f" ({session.error_code_id})"
    parts.append(f"finished {finished:%b} {finished.day} {finished:%H:%M}")
    parts.append(f"took {natural_duration(session.duration)}")
    items = counted(session.items_seen, "item")
    troubled = items_with_issues(session)
    parts.append(f"{items}, {troubled:,} with issues" if troubled else items)
    return " · ".join(parts)


def spread(xs, gap, left, right):
    """Positions at least `gap` apart, each as close to its wish as the others allow (xs sorted)."""
    placed = []
    for x in xs:
        placed.append(max(x, placed[-1] + gap) if placed else max(x, left))
    for i in range(len(placed) - 1, -1, -1):  # pushed past the right edge: back to the left
        limit = right if i == len(placed) - 1 else placed[i + 1] - gap
        placed[i] = min(placed[i], limit)
    return placed


def history_chart(sessions, width=1000, height=140):
    """The numbers behind the history chart (oldest left), or None without a finished session."""
    sessions = sorted((s for s in sessions if s.finished_at), key=lambda s: (s.finished_at, s.pk))
    if not sessions:
        return None
    plot_bottom = TOP + height
    bar_width = min(max((width - LEFT - RIGHT) / len(sessions) * 0.6, 4), 12)
    first, last = sessions[0].finished_at, sessions[-1].finished_at
    pad = max((last - first) * 0.03, timedelta(minutes=5))
    scale = TimeScale(first - pad, last + pad, LEFT + bar_width / 2, width - RIGHT - bar_width / 2)
    centres = spread([scale.x(s.finished_at) for s in sessions], bar_width + 2, scale.left, scale.right)
    # Runs under a second share a one-second scale, so that a 10 ms run is not drawn as tall as a 12 ms one.
    longest = max(max((s.duration or timedelta(0)).total_seconds() for s in sessions), 1.0)
    most_items = max(s.items_seen for s in sessions)
    bars = []
    for session, centre in zip(sessions, centres):
        seconds = (session.duration or timedelta(0)).total_seconds()
        share = math.sqrt(seconds / longest)
        bar = MIN_BAR + share * (height - MIN_BAR)
        dot = plot_bottom - (session.items_seen / most_items * (height - 4) if most_items else 0)
        bars.append(
            HistoryBar(
                x=num(centre - bar_width / 2),
                y=num(plot_bottom - bar),
                width=num(bar_width),
                height=num(bar),
                colour=SESSION_COLOURS.get(session.state, "#6b7280"),
                dot_x=num(centre),
                dot_y=num(dot),
                title=bar_title(session),
            )
        )
    return {
        "width": str(width),
        "height": str(plot_bottom + 40),  # the time axis and the legend below the bars
        "plot_top": str(TOP),
        "plot_bottom": str(plot_bottom),
        "tick_bottom": str(plot_bottom + 4),
        "axis_label_y": str(plot_bottom + 14),
        "legend_y": str(plot_bottom + 34),
        "left": str(LEFT),
        "right": str(width - RIGHT),
        "bars": bars,
        "ticks": scale.ticks(most=6),
        "longest": natural_duration(longest),
        "most_items": counted(most_items, "item"),
        **legend(sessions),
    }


def legend(sessions):
    """The outcomes that appear, in the order of the session states, then where the items dot goes."""
    present = {s.state for s in sessions}
    entries, x = [], LEFT
    for state, label in type(sessions[0]).State.choices:
        if state in present:
            entries.append(LegendEntry(num(x), SESSION_COLOURS.get(state, "#6b7280"), label))
            x += 18 + 7 * len(label)
    return {"legend": entries, "legend_dot_x": num(x + 4), "legend_dot_label_x": num(x + 10)}


def history_svg(sessions, width=1000, height=140):
    """The history chart as HTML, for the integration's console page and the portal's General tab."""
    return render_to_string(HISTORY_TEMPLATE, {"chart": history_chart(sessions, width, height)})
