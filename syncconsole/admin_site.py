"""The admin site with the support dashboard as its index page."""

from datetime import timedelta

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.db.models import Count
from django.utils import timezone


class ConsoleAdminSite(admin.AdminSite):
    site_header = "SyncConsole"
    site_title = "SyncConsole"
    index_title = "Integration sync health"
    index_template = "admin/syncconsole_index.html"
    # The dashboard lists every model; the sidebar's 300 px go to the changelists' columns (1280 px screens).
    enable_nav_sidebar = False

    def index(self, request, extra_context=None):
        extra = dict(extra_context or {})
        if request.user.is_active and request.user.is_staff:
            extra["dashboard"] = dashboard(timezone.now())
        return super().index(request, extra_context=extra)


def queue_depths():
    """Tasks waiting per django-q2 queue (default and urgent), or None when the broker is unreachable."""
    from django.conf import settings
    from django_q.brokers import get_broker

    depths = {}
    for name in (settings.Q_CLUSTER["name"], settings.URGENT_CLUSTER):
        try:
            depths[name] = get_broker(name).queue_size()
        except Exception:  # the broker being down must not break the dashboard
            depths[name] = None
    return depths


def worker_liveness(now):
    """The workers panel: each cluster's live workers and last beat, and the urgent fallback (one query)."""
    from django.conf import settings

    from integrations.sync.heartbeats import liveness

    clusters = liveness(now)
    return {
        "clusters": clusters,
        "falls_back": any(cluster.falls_back for cluster in clusters),
        "urgent": settings.URGENT_CLUSTER,
        "default": settings.Q_CLUSTER["name"],
        "fallback_seconds": settings.URGENT_FALLBACK_SECONDS,
    }


def dashboard(now):
    """Everything the index shows, in a fixed number of queries."""
    from integrations.models import Integration, SyncSession
    from syncconsole import activity

    day_ago = now - timedelta(hours=24)
    counts = dict(Integration.objects.values_list("status").annotate(n=Count("pk")).order_by())
    statuses = [(value, label, counts.get(value, 0)) for value, label in Integration.Status.choices]
    attention = list(
        Integration.objects.filter(status__in=Integration.NEEDS_ATTENTION)
        .select_related("tenant")
        .order_by("status_changed_at")[:25]
    )
    running = list(
        SyncSession.objects.filter(state__in=SyncSession.OPEN_STATES)
        .select_related("integration", "integration__tenant")
        .order_by("queued_at")[:25]
    )
    reaped = list(
        SyncSession.objects.filter(
            state=SyncSession.State.UNKNOWN,
            error_code__in=["SYNC_LEASE_LOST", "SYNC_NOT_STARTED"],
            finished_at__gte=day_ago,
        )
        .select_related("integration", "integration__tenant")
        .order_by("-finished_at")[:25]
    )
    top_codes = activity.top_codes(now)
    from alerts.models import Alert, Incident

    alerts = list(
        Alert.objects.filter(sent_at__gte=day_ago)
        .select_related("integration", "tenant")
        .order_by("-sent_at")[:25]
    )
    incidents = list(Incident.objects.filter(resolved_at=None).select_related("error_code").order_by("-opened_at")[:10])
    from issues.support.selectors import open_requests_panel

    return {
        "statuses": statuses,
        "attention": attention,
        "running": running,
        "reaped": reaped,
        "top_codes": top_codes,
        "queues": queue_depths(),
        "workers": worker_liveness(now),
        "alerts": alerts,
        "incidents": incidents,
        "requests": open_requests_panel(now),
        # Sessions per hour by outcome and failing integrations over time (syncconsole/activity.py).
        "charts": activity.activity(now, counts),
        "now": now,
    }


class ConsoleAdminConfig(AdminConfig):
    default_site = "syncconsole.admin_site.ConsoleAdminSite"
