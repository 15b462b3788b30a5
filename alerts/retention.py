"""What retention may purge of this app's rows (integrations.retention runs it; registered in apps.py).

Alerts: sent, failed or held ones past RETENTION_DAYS_ALERTS, except the
newest of each integration and rule: the (integration, rule, streak) unique
constraint is what stops a streak's alert from being raised again, and the
recovery rule looks for it. Webhook deliveries: delivered or given up, past
RETENTION_DAYS_WEBHOOK_DELIVERIES.
"""

from django.db.models import Exists, OuterRef

from alerts.models import Alert, WebhookDelivery
from integrations import retention

FINISHED_ALERT_STATES = (Alert.State.SENT, Alert.State.FAILED, Alert.State.HELD)


def finished_alerts(cutoff):
    newer = Alert.objects.filter(
        integration=OuterRef("integration"), rule=OuterRef("rule"), pk__gt=OuterRef("pk")
    )
    return Alert.objects.filter(created_at__lt=cutoff, state__in=FINISHED_ALERT_STATES).filter(Exists(newer))


def finished_deliveries(cutoff):
    return WebhookDelivery.objects.filter(created_at__lt=cutoff).exclude(state=WebhookDelivery.State.PENDING)


def register():
    retention.register(retention.Kind("alerts", "RETENTION_DAYS_ALERTS", Alert, finished_alerts))
    retention.register(
        retention.Kind(
            "webhook deliveries", "RETENTION_DAYS_WEBHOOK_DELIVERIES", WebhookDelivery, finished_deliveries
        )
    )
