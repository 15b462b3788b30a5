from django.apps import AppConfig


class AlertsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "alerts"
    verbose_name = "Alerts, incidents and webhooks"

    def ready(self):
        from alerts import panels, retention
        from integrations import events
        from integrations.admin import page_panels

        events.subscribe(kick_consumers)
        retention.register()
        # The integration page shows each alert's delivery (integrations never imports alerts).
        page_panels.register(panels.delivery_panel)

        from alerts import metrics
        from syncconsole import metrics as exposition

        exposition.register("alerts", metrics.AlertsCollector())


def kick_consumers():
    """After a commit that wrote events: react to them now (on the urgent cluster, ahead of the sync backlog)."""
    from django.conf import settings
    from django_q.tasks import async_task

    async_task("alerts.tasks.consume_events", cluster=settings.URGENT_CLUSTER, group="events", task_name="consume-events")
