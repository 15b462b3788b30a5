"""The dashboard's charts and error codes: sessions per hour by outcome (24 hours, 7 days), failing
integrations over time, the codes sessions ended with in the last 24 hours.

A fixed number of queries whatever the data size, each an aggregate over an
index range:

- sessions: those finished in the last 7 days (the `finished_at` index),
  counted per UTC hour and state in the database (date_trunc): at most
  168 x 5 rows come back. The 24-hour chart is the last 24 of them. The hours
  that are over (settled) are read once an hour and cached, the last hour or
  so every RECENT_SECONDS (`settled_and_recent`). Without the cache the
  200,000 sessions of docs/SCALING.md's dataset cost about 140 ms to count
  on every request.
- error codes: (code, tenant) pairs of the last 24 hours' sessions, the same way.
- failing integrations: the number in a failing status (failing, unknown,
  authentication failing, credentials invalid) at the end of each hour,
  worked back from today's count per status (the dashboard's tiles already
  read it) and the status changes of the last 7 days (the events'
  `created_at` index), counted per hour and (from, to) status. An
  integration purged within the week takes its events with it, so the hours
  before its purge may show one less.

Hours are UTC hours (no daylight-saving gaps or repeats), labelled in the
current time zone. templates/admin/dashboard/_hourly_chart.html draws them.
"""

from dataclasses import dataclass, field
from datetime import UTC, timedelta

from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Q
from django.db.models.functions import Trunc
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe

from integrations.admin.common import SESSION_COLOURS
from integrations.models import Integration, IntegrationEvent, SyncSession
from integrations.statuses import DECLARATIONS
from integrations.words import counted
from syncconsole.charts import nice_ceiling, num

HOUR = timedelta(hours=1)
SETTLING = timedelta(minutes=5)  # after its end, nothing finishes in an hour any more (see settled_and_recent)
RECENT_SECONDS = 30  # how far behind the charts' last hour may be
WEEK_HOURS = 168
DAY_HOURS = 24
Status = Integration.Status
State = SyncSession.State
OUTCOMES = (State.SUCCEEDED, State.WARNINGS, State.FAILED, State.UNKNOWN, State.CANCELLED)
FAILING = (Status.FAILING, Status.UNKNOWN, Status.AUTH_FAILING, Status.CREDENTIALS_INVALID)


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    colour: str


@dataclass(frozen=True)
class Segment:
    y: str
    height: str
    colour: str


@dataclass(frozen=True)
class Bar:
    x: str
    width: str
    segments: tuple
    title: str


@dataclass
class HourlyChart:
    """A stacked bar per hour, oldest left, with its axes; coordinates formatted for SVG."""

    title: str
    total_words: str
    series: list
    bars: list = field(default_factory=list)
    ticks: list = field(default_factory=list)
    width: str = "720"
    height: str = "170"
    plot_top: str = "8"
    plot_bottom: str = "140"
    plot_height: str = "132"
    left: str = "36"
    right: str = "716"
    top_label: str = "0"
    mid_y: str = "74"
    mid_label: str = "0"
    label_y: str = "156"
    empty: bool = True

    def bars_svg(self):
        """The bars as SVG markup: 168 hours of stacked rects are written here rather than by template
        loops, which cost tens of milliseconds per chart. Coordinates and colours are ours; titles escaped."""
        parts = []
        for bar in self.bars:
            parts.append(
                f'<g class="sc-hour"><title>{escape(bar.title)}</title>'
                f'<rect x="{bar.x}" y="{self.plot_top}" width="{bar.width}" height="{self.plot_height}" fill="transparent"/>'
            )
            parts.extend(
                f'<rect class="sc-bar" x="{bar.x}" y="{s.y}" width="{bar.width}" height="{s.height}" fill="{s.colour}"/>'
                for s in bar.segments
            )
            parts.append("</g>")
        return mark_safe("".join(parts))  # noqa: S308 (every value is a number or colour of ours, or escaped)


def hour_floor(moment):
    moment = moment.astimezone(UTC)
    return moment.replace(minute=0, second=0, microsecond=0)


def hour_starts(now, hours):
    """The starts of the last `hours` UTC hours, the current one last."""
    last = hour_floor(now)
    return [last - HOUR * (hours - 1 - i) for i in range(hours)]


def settled_and_recent(name, start, now, read):
    """read(since, until) rows: those of the settled hours (from `start`) cached for the hour, the recent ones for
    RECENT_SECONDS.

    A session's `finished_at` is stamped before its transaction commits, so an
    hour is settled SETTLING after it ends: nothing will finish in it any more,
    and its numbers are read once (per cache: Redis in production, shared by
    every web process). The recent ones (at most an hour and SETTLING) are read
    again when RECENT_SECONDS have passed, so the charts are that far behind at
    most. Both reads are ranges of the `finished_at` index.
    """
    settled = hour_floor(now - SETTLING)
    # Named after the database too: the numbers belong to it, whoever else shares the cache.
    key = f"dashboard:{connection.settings_dict['NAME']}:{name}:{start.isoformat()}:{settled.isoformat()}"
    rows = cache.get(key)
    if rows is None:
        rows = read(start, settled)
        cache.set(key, rows, timeout=int((HOUR + SETTLING).total_seconds()) * 2)
    recent = cache.get(f"{key}:recent")
    if recent is None:
        recent = read(settled, None)
        cache.set(f"{key}:recent", recent, timeout=RECENT_SECONDS)
    return [*rows, *recent]


def _finished(since, until):
    sessions = SyncSession.objects.filter(finished_at__gte=since)
    return sessions if until is None else sessions.filter(finished_at__lt=until)


def sessions_per_hour(now):
    """{hour start (UTC): {state: sessions finished in that hour}} for the last 7 days.

    One GROUP BY (hour, state) over the recent hours, and one over the settled
    ones when the cache does not hold them yet (`settled_and_recent`).
    """

    def read(since, until):
        return list(
            _finished(since, until)
            .annotate(hour=Trunc("finished_at", "hour", tzinfo=UTC))
            .values("hour", "state")
            .annotate(n=Count("pk"))
            .order_by()
        )

    found = {}
    for row in settled_and_recent("sessions-per-hour", hour_starts(now, WEEK_HOURS)[0], now, read):
        hour = found.setdefault(hour_floor(row["hour"]), {})
        hour[row["state"]] = hour.get(row["state"], 0) + row["n"]
    return found


def top_codes(now, limit=10):
    """The error codes sessions ended with in the last 24 hours, most sessions first, with the tenants hit.

    Read as (code, tenant) pairs, so that the settled hours can be cached and the
    recent ones added: [{"error_code", "error_code__title", "sessions", "tenants"}].
    """

    def read(since, until):
        return list(
            _finished(since, until)
            .filter(error_code__isnull=False)
            .values("error_code", "error_code__title", "integration__tenant_id")
            .annotate(n=Count("pk"))
            .order_by()
        )

    codes = {}
    for row in settled_and_recent("top-codes", hour_starts(now, DAY_HOURS)[0], now, read):
        code = codes.setdefault(
            row["error_code"],
            {"error_code": row["error_code"], "error_code__title": row["error_code__title"], "sessions": 0, "tenants": set()},
        )
        code["sessions"] += row["n"]
        code["tenants"].add(row["integration__tenant_id"])
    ranked = sorted(codes.values(), key=lambda code: (-code["sessions"], code["error_code"]))[:limit]
    return [{**code, "tenants": len(code["tenants"])} for code in ranked]


def failing_per_hour(now, status_counts):
    """{hour start: {status: integrations in it at the end of that hour}} for the failing statuses: one query.

    `status_counts` is {status: integrations in it now}.
    """
    hours = hour_starts(now, WEEK_HOURS)
    changes = (
        IntegrationEvent.objects.filter(kind=IntegrationEvent.Kind.STATUS_CHANGED, created_at__gte=hours[0])
        .filter(Q(from_status__in=FAILING) | Q(to_status__in=FAILING))
        .annotate(hour=Trunc("created_at", "hour", tzinfo=UTC))
        .values("hour", "from_status", "to_status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    net = {}  # {hour: {status: entered - left}}
    for row in changes:
        hour = net.setdefault(hour_floor(row["hour"]), {})
        if row["to_status"] in FAILING:
            hour[row["to_status"]] = hour.get(row["to_status"], 0) + row["n"]
        if row["from_status"] in FAILING:
            hour[row["from_status"]] = hour.get(row["from_status"], 0) - row["n"]
    level = {status: status_counts.get(status, 0) for status in FAILING}
    found = {}
    for hour in reversed(hours):  # the newest hour ends now, with today's counts
        found[hour] = {status: max(n, 0) for status, n in level.items()}
        for status, change in net.get(hour, {}).items():
            level[status] -= change  # before this hour's changes: the end of the hour before
    return found


def session_series():
    return [Series(state, State(state).label, SESSION_COLOURS[state]) for state in OUTCOMES]


def failing_series():
    return [Series(status, Status(status).label, DECLARATIONS[status].badge_colour) for status in FAILING]


def _hour_span(start):
    local = timezone.localtime(start)
    end = timezone.localtime(start + HOUR)
    return f"{local:%a} {local.day} {local:%b}, {local:%H:%M}\u2013{end:%H:%M}"


def hourly_chart(title, hours, values, series, *, noun, tick_every, summary=None, width=560, height=132):
    """Stacked bars for `hours` from `values` ({hour: {series key: n}}); ticks where `tick_every` says.

    `tick_every(previous local time, local time)` -> a label for a tick at that hour, or "".
    `summary` is the words beside the title (default: the total, counted in `noun`s).
    """
    left, right, top = 36, width - 4, 8
    bottom = top + height
    totals = [sum(values.get(h, {}).get(s.key, 0) for s in series) for h in hours]
    ceiling = nice_ceiling(max(totals, default=0))
    slot = (right - left) / len(hours)
    bar_width = max(slot * 0.8, 1)
    chart = HourlyChart(
        title=title,
        total_words=summary if summary is not None else counted(sum(totals), noun),
        series=series,
        width=str(width),
        height=str(bottom + 30),
        plot_top=str(top),
        plot_bottom=str(bottom),
        plot_height=str(height),
        left=str(left),
        right=str(right),
        top_label=f"{ceiling:,}",
        mid_y=num(top + height / 2),
        mid_label=f"{ceiling // 2:,}" if ceiling % 2 == 0 else "",  # counts are whole
        label_y=str(bottom + 14),
        empty=not any(totals),
    )
    previous = None
    for i, hour in enumerate(hours):
        counts = values.get(hour, {})
        x = left + i * slot
        y = bottom
        segments = []
        for s in series:
            n = counts.get(s.key, 0)
            if n:
                h = n / ceiling * height
                y -= h
                segments.append(Segment(num(y), num(max(h, 0.5)), s.colour))
        parts = [f"{counts[s.key]:,} {s.label.lower()}" for s in series if counts.get(s.key)]
        title_text = f"{_hour_span(hour)}: " + (", ".join(parts) if parts else f"no {noun}s")
        chart.bars.append(Bar(num(x + (slot - bar_width) / 2), num(bar_width), tuple(segments), title_text))
        local = timezone.localtime(hour)
        label = tick_every(previous, local)
        if label:
            chart.ticks.append({"x": num(x), "label": label})
        previous = local
    return chart


def _every_three_hours(previous, local):
    return f"{local:%H:%M}" if local.hour % 3 == 0 and (previous is None or previous.hour != local.hour) else ""


def _every_day(previous, local):
    if previous is not None and previous.date() != local.date():
        return f"{local:%a} {local.day}"
    return ""


def activity(now, status_counts):
    """The dashboard's three charts, from two queries."""
    week = hour_starts(now, WEEK_HOURS)
    sessions = sessions_per_hour(now)
    failing = failing_per_hour(now, status_counts)
    return {
        "day": hourly_chart(
            "Sessions per hour, last 24 hours",
            week[-DAY_HOURS:],
            sessions,
            session_series(),
            noun="session",
            tick_every=_every_three_hours,
            width=400,
        ),
        "week": hourly_chart(
            "Sessions per hour, last 7 days",
            week,
            sessions,
            session_series(),
            noun="session",
            tick_every=_every_day,
            width=560,
        ),
        "failing": hourly_chart(
            "Failing integrations, last 7 days",
            week,
            failing,
            failing_series(),
            noun="failing integration",
            tick_every=_every_day,
            summary=f"{counted(sum(failing[week[-1]].values()), 'integration')} failing now",
            width=1000,
            height=100,
        ),
    }
