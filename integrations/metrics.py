"""The gauges /metrics reads from integrations: queues, workers, statuses, open issues.

Each is a handful of small queries whatever the size of the tables: counts
on indexes, capped at COUNT_CAP (a gauge at the cap means "at least that
many"), and the total of open issues from the counts each integration keeps
(`Integration.open_issue_count`), never a COUNT over the issues table.
"""

from django.db.models import Count, Min, Sum
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from integrations.models import Integration, SyncSession
from integrations.sync import heartbeats
from integrations.sync.reaper import queues
from issues.models import ErrorCode, SyncIssue

# Counting further than this costs more than the number is worth to a graph or an alert.
COUNT_CAP = 10_000


def capped_count(queryset, *order):
    """How many rows, up to COUNT_CAP: `order` names the index to walk (none: the planner's choice)."""
    return queryset.order_by(*order)[:COUNT_CAP].count()


class IntegrationsCollector:
    """Gauges of sessions, integrations and issues, read when /metrics is scraped."""

    def collect(self):
        now = timezone.now()
        yield from self.queue_families(now)
        yield from self.worker_families(now)
        yield self.status_family()
        yield from self.issue_families()

    def worker_families(self, now):
        live = GaugeMetricFamily(
            "syncconsole_workers_live",
            "Worker processes of the cluster whose heartbeat is younger than WORKER_DEAD_AFTER_SECONDS.",
            labels=["cluster"],
        )
        age = GaugeMetricFamily(
            "syncconsole_worker_last_beat_age_seconds",
            "Since the cluster's latest worker heartbeat (no sample: no worker beat within a day).",
            labels=["cluster"],
        )
        fallback = GaugeMetricFamily(
            "syncconsole_urgent_fallback_active",
            "1 while no urgent worker has beaten for URGENT_FALLBACK_SECONDS: people's syncs go to the "
            "default cluster.",
        )
        clusters = heartbeats.liveness(now)
        for cluster in clusters:
            live.add_metric([cluster.name], cluster.live_workers)
            if cluster.last_beat_at is not None:
                age.add_metric([cluster.name], max((now - cluster.last_beat_at).total_seconds(), 0))
        fallback.add_metric([], int(any(cluster.falls_back for cluster in clusters)))
        return live, age, fallback

    def queue_families(self, now):
        queued = GaugeMetricFamily(
            "syncconsole_queue_sessions",
            f"Queued sessions waiting for a worker, by cluster (counted up to {COUNT_CAP}).",
            labels=["cluster"],
        )
        oldest = GaugeMetricFamily(
            "syncconsole_queue_oldest_age_seconds",
            "How long the oldest queued session of the cluster has waited (0 when none waits).",
            labels=["cluster"],
        )
        running = GaugeMetricFamily(
            "syncconsole_sessions_running",
            f"Running sessions, by the cluster that runs them (counted up to {COUNT_CAP}).",
            labels=["cluster"],
        )
        for cluster, members in queues():
            sessions = SyncSession.objects.filter(members)
            waiting = sessions.filter(state=SyncSession.State.QUEUED)
            queued.add_metric([cluster], capped_count(waiting))
            first = waiting.order_by().aggregate(first=Min("queued_at"))["first"]
            oldest.add_metric([cluster], max((now - first).total_seconds(), 0) if first else 0)
            running.add_metric([cluster], capped_count(sessions.filter(state=SyncSession.State.RUNNING)))
        return queued, oldest, running

    def status_family(self):
        family = GaugeMetricFamily(
            "syncconsole_integrations", "Integrations by status (deleted ones included).", labels=["status"]
        )
        counts = dict(Integration.objects.order_by().values_list("status").annotate(n=Count("pk")))
        for status in Integration.Status.values:
            family.add_metric([status], counts.get(status, 0))
        return family

    def issue_families(self):
        stored = Integration.objects.aggregate(total=Sum("open_issue_count"))["total"]
        yield GaugeMetricFamily(
            "syncconsole_open_issues_stored",
            "Open issues of every integration, from the count each integration keeps.",
            value=stored or 0,
        )
        by_code = GaugeMetricFamily(
            "syncconsole_open_issues",
            f"Open issues by error code (counted up to {COUNT_CAP} per code).",
            labels=["code"],
        )
        open_issues = SyncIssue.objects.filter(state=SyncIssue.State.OPEN)
        for code in ErrorCode.objects.order_by("code").values_list("code", flat=True):
            # Newest first on the index (error_code, last_seen_at): open issues are the recently
            # seen ones, so the cap is reached before the code's resolved history is read.
            by_code.add_metric([code], capped_count(open_issues.filter(error_code_id=code), "-last_seen_at"))
        yield by_code
