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


def dashboard(now):
    """Everything the index shows, in a fixed number of queries."""
    from integrations.models import Integration, SyncSession

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
    top_codes = list(
        SyncSession.objects.filter(finished_at__gte=day_ago, error_code__isnull=False)
        .values("error_code", "error_code__title")
        .annotate(sessions=Count("pk"), tenants=Count("integration__tenant", distinct=True))
        .order_by("-sessions")[:10]
    )
    from alerts.models import Alert, Incident

    alerts = list(
        Alert.objects.filter(sent_at__gte=day_ago)
        .select_related("integration", "tenant")
        .order_by("-sent_at")[:25]
    )
    incidents = list(Incident.objects.filter(resolved_at=None).select_related("error_code").order_by("-opened_at")[:10])
    return {
        "statuses": statuses,
        "attention": attention,
        "running": running,
        "reaped": reaped,
        "top_codes": top_codes,
        "queues": queue_depths(),
        "alerts": alerts,
        "incidents": incidents,
        "now": now,
    }


class ConsoleAdminConfig(AdminConfig):
    default_site = "syncconsole.admin_site.ConsoleAdminSite"
