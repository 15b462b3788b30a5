"""Worker heartbeats: which qcluster has a live worker, and whether people's syncs fall back.

Every worker process of every cluster writes its heartbeat (one upsert of its
WorkerHeartbeat row) every WORKER_HEARTBEAT_SECONDS from a thread of its own
(`sync.worker_beat`), so a worker busy with a three-hour sync still beats. A
worker is live while its last beat is younger than WORKER_DEAD_AFTER_SECONDS.
The urgent cluster has failed people when no worker of it has beaten for
URGENT_FALLBACK_SECONDS: from then on their syncs go to the default cluster
(`starting.start_sync`, `fallback.move_waiting`).

The times are the writing and the reading process's clocks: `manage.py
doctor` says when a machine's clock is off.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Max, Q

from integrations.models import WorkerHeartbeat

# Rows of processes silent for longer than this are removed; until then the
# dashboard can say when a dead cluster last beat.
KEEP_FOR = timedelta(days=1)


def cluster_names():
    """The configured clusters: the default one, then the ALT_CLUSTERS (urgent)."""
    return [settings.Q_CLUSTER["name"], *settings.Q_CLUSTER.get("ALT_CLUSTERS", {})]


def beat(cluster, host, pid, now):
    """Note that a worker is alive: one INSERT ... ON CONFLICT DO UPDATE."""
    WorkerHeartbeat.objects.bulk_create(
        [WorkerHeartbeat(cluster=cluster, host=host, pid=pid, last_beat_at=now)],
        update_conflicts=True,
        unique_fields=["cluster", "host", "pid"],
        update_fields=["last_beat_at"],
    )


def clean(now):
    """Remove the rows of workers silent for KEEP_FOR; returns how many went."""
    deleted, _ = WorkerHeartbeat.objects.filter(last_beat_at__lt=now - KEEP_FOR).delete()
    return deleted


@dataclass(frozen=True)
class ClusterLiveness:
    name: str
    live_workers: int
    last_beat_at: object  # datetime or None: no worker beat within KEEP_FOR
    falls_back: bool  # the urgent cluster only: people's syncs go to the default cluster

    @property
    def alive(self):
        return self.live_workers > 0


def liveness(now):
    """A ClusterLiveness per configured cluster, in one query on a table of a few rows."""
    dead_before = now - timedelta(seconds=settings.WORKER_DEAD_AFTER_SECONDS)
    rows = {
        row["cluster"]: row
        for row in WorkerHeartbeat.objects.values("cluster")
        .annotate(last=Max("last_beat_at"), live=Count("pk", filter=Q(last_beat_at__gte=dead_before)))
        .order_by()
    }
    result = []
    for name in cluster_names():
        row = rows.get(name, {"last": None, "live": 0})
        falls_back = name == settings.URGENT_CLUSTER and silent_too_long(row["last"], now)
        result.append(ClusterLiveness(name, row["live"], row["last"], falls_back))
    return result


def silent_too_long(last_beat_at, now):
    """Whether an urgent cluster last heard of at `last_beat_at` (None: never) has failed people."""
    window = settings.URGENT_FALLBACK_SECONDS
    if not window:
        return False
    return last_beat_at is None or last_beat_at < now - timedelta(seconds=window)


def urgent_fallback_active(now):
    """No urgent worker beat within URGENT_FALLBACK_SECONDS (and the fallback is on): one indexed read."""
    if not settings.URGENT_FALLBACK_SECONDS:
        return False
    recent = now - timedelta(seconds=settings.URGENT_FALLBACK_SECONDS)
    urgent = WorkerHeartbeat.objects.filter(cluster=settings.URGENT_CLUSTER, last_beat_at__gte=recent)
    return not urgent.exists()
