"""How long a queued session is likely to wait before a worker picks it up.

A person who presses "Sync now" while the workers are busy (a scheduled
window, a slow vendor holding them) is told where the sync stands and when it
is likely to start: the sessions in front of it (queued before it, and those
already running on its cluster) have to free a worker first. With `workers`
workers each taking about the median recent duration per session, the
session starts after the (in_front - workers + 1)-th of them ends:

    wait ~= median duration x (in_front - workers + 1) / workers

The median comes from the WAIT_SAMPLE_SIZE sessions finished last within
WAIT_SAMPLE_WINDOW (read newest first down the finished_at index, so the read
is bounded however many sessions exist): the cluster's own among them, or
all of them when none is the cluster's; one very long
sync does not decide the answer. The sample is read whether or not a worker
is free, so that the answer costs the same queries every time. Nothing is
estimated while a worker is free, and nothing is promised without recent
sessions to learn from.
"""

import math
from dataclasses import dataclass, replace
from datetime import timedelta
from statistics import median

from django.conf import settings
from django.utils import timezone

from integrations.models import SyncSession
from integrations.sync import starting

WAIT_SAMPLE_WINDOW = timedelta(hours=24)
WAIT_SAMPLE_SIZE = 200
WAIT_OWN_MINIMUM = 1


@dataclass(frozen=True)
class WaitEstimate:
    """Where a queued session stands in its cluster and how long it is likely to wait."""

    queue: str
    position: int  # 1 = next; starting.QUEUE_POSITION_CAP + 1 = further back than counted
    running: int  # sessions of its cluster running now
    workers: int
    minutes: int | None  # likely to start within this many minutes; None without recent sessions

    @property
    def ahead(self):
        """Sessions queued before it."""
        return self.position - 1

    @property
    def in_front(self):
        """Sessions that get a worker before it: queued before it, or running."""
        return self.ahead + self.running

    @property
    def busy(self):
        """Every worker of the cluster is taken: the session waits for one."""
        return self.in_front >= self.workers

    def sentence(self):
        """The customer's words: what is in front of the sync and when it is likely to start."""
        if not self.busy:
            return "It starts in a moment."
        if self.position > starting.QUEUE_POSITION_CAP:
            where = f"behind more than {starting.QUEUE_POSITION_CAP} other syncs"
        elif self.ahead:
            where = f"behind {self.ahead} other sync{'s' if self.ahead != 1 else ''}"
        else:
            where = ""
        if self.running:
            runs = f"{self.running} other sync{'s run' if self.running != 1 else ' runs'}"
            where = f"{where} while {runs}" if where else f"while {runs}"
        if self.minutes is None:
            return f"Queued {where}: it starts as soon as a worker is free."
        return f"Queued {where}: likely to start within {minutes_words(self.minutes)}."


def minutes_words(minutes):
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def cluster_workers(queue):
    """How many workers the named cluster runs (its settings as this process sees them)."""
    alternatives = settings.Q_CLUSTER.get("ALT_CLUSTERS", {})
    if queue in alternatives:
        return max(1, int(alternatives[queue].get("workers", settings.Q_CLUSTER["workers"])))
    return max(1, int(settings.Q_CLUSTER["workers"]))


def recent_median_seconds(queue, now):
    """The median duration of recently finished sessions (the cluster's own if enough), in seconds, or None."""
    rows = (
        SyncSession.objects.filter(finished_at__gte=now - WAIT_SAMPLE_WINDOW, started_at__isnull=False)
        .order_by("-finished_at")
        .values_list("started_at", "finished_at", "trigger", "fell_back")[:WAIT_SAMPLE_SIZE]
    )
    durations, own = [], []
    for started, finished, trigger, fell_back in rows:
        seconds = (finished - started).total_seconds()
        durations.append(seconds)
        if (settings.Q_CLUSTER["name"] if fell_back else starting.queue_for(trigger)) == queue:
            own.append(seconds)
    sample = own if len(own) >= WAIT_OWN_MINIMUM else durations
    return median(sample) if sample else None


_COUNT_IT = object()


def estimate_wait(session, *, position=_COUNT_IT, now=None):
    """The WaitEstimate of a queued session, or None when it is not queued (running, finished).

    `position`: its queue position when the caller has counted it already (AlreadySyncing has).
    """
    now = now or timezone.now()
    if position is _COUNT_IT:
        position = starting.queue_position(session)
    if position is None:
        return None
    queue = starting.session_queue(session)
    workers = cluster_workers(queue)
    running = (
        SyncSession.objects.filter(starting.queue_members(queue), state=SyncSession.State.RUNNING)
        .order_by()[: starting.QUEUE_POSITION_CAP]
        .count()
    )
    estimate = WaitEstimate(queue=queue, position=position, running=running, workers=workers, minutes=None)
    typical = recent_median_seconds(queue, now)
    if not estimate.busy or typical is None:
        return estimate
    seconds = typical * (estimate.in_front - workers + 1) / workers
    return replace(estimate, minutes=max(1, math.ceil(seconds / 60)))


def where_it_stands(session, estimate):
    """One sentence for a session just asked for: its wait while queued, else that it runs or has ended."""
    if estimate is not None:
        return estimate.sentence()
    if session.state == SyncSession.State.RUNNING:
        return "It is running."
    return f"It has already ended: {session.get_state_display().lower()}."
