"""The geometry of the server-rendered SVG charts: time axes, scales, numbers fit for SVG attributes.

The console's charts (the dashboard's sessions per hour and failing
integrations, an integration's sync history) are drawn by templates from
numbers computed here. Coordinates are formatted as strings in Python so
that they never go through the template's localisation: a decimal comma or a
thousands separator would break the SVG. Times are shown in the current time
zone (TIME_ZONE).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

# Tick steps a time axis chooses from, smallest first.
TICK_STEPS = (
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=3),
    timedelta(hours=6),
    timedelta(hours=12),
    timedelta(days=1),
    timedelta(days=2),
    timedelta(days=7),
    timedelta(days=14),
    timedelta(days=30),
)


def num(value):
    """A coordinate for an SVG attribute: at most one decimal, never a comma."""
    return f"{value:.1f}".rstrip("0").rstrip(".") if value % 1 else str(int(value))


@dataclass(frozen=True)
class Tick:
    x: str
    label: str


@dataclass(frozen=True)
class TimeScale:
    """Maps moments between `start` and `end` onto x from `left` to `right`."""

    start: datetime
    end: datetime
    left: float
    right: float

    def x(self, moment):
        span = (self.end - self.start).total_seconds() or 1
        share = (moment - self.start).total_seconds() / span
        return self.left + min(max(share, 0.0), 1.0) * (self.right - self.left)

    def ticks(self, most=7):
        """Labelled ticks at round local times: at most `most` of them, the step the smallest that fits."""
        span = self.end - self.start
        step = next((s for s in TICK_STEPS if span / s <= most), TICK_STEPS[-1])
        local_start = timezone.localtime(self.start)
        if step >= timedelta(days=1):
            first = local_start.replace(hour=0, minute=0, second=0, microsecond=0)
        else:
            midnight = local_start.replace(hour=0, minute=0, second=0, microsecond=0)
            steps = -(-(local_start - midnight) // step)  # rounded up
            first = midnight + steps * step
        ticks = []
        moment = first
        while moment <= self.end:
            if moment >= self.start:
                ticks.append(Tick(num(self.x(moment)), tick_label(moment, step)))
            moment = timezone.localtime(moment + step)
        return ticks


def tick_label(moment, step):
    """'14:00' within a day, 'Mar 14' at midnight and for steps of a day or more."""
    local = timezone.localtime(moment)
    if step >= timedelta(days=1) or (local.hour == 0 and local.minute == 0):
        return f"{local:%b} {local.day}"
    return f"{local:%H:%M}"


def nice_ceiling(value):
    """The smallest of 1, 2, 5, 10, 20, 50, ... at or above `value` (at least 1): the top of a count axis."""
    value = max(value, 1)
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            if factor * magnitude >= value:
                return factor * magnitude
        magnitude *= 10
