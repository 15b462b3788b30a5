from django.apps import AppConfig


class AlertsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "alerts"
    verbose_name = "Alerts, incidents and webhooks"

    def ready(self):
        from alerts import retention
        from integrations import events

        events.subscribe(kick_consumers)
        retention.register()


def kick_consumers():
    """After a commit that wrote events: react to them now (on the urgent cluster, ahead of the sync backlog)."""
    from django.conf import settings
    from django_q.tasks import async_task

    async_task("alerts.tasks.consume_events", cluster=settings.URGENT_CLUSTER, group="events", task_name="consume-events")
