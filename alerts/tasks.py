"""django-q2 entry points for alerts and webhooks: load by id, call a service."""

from alerts import consumers, delivery, rules, webhooks
from syncconsole import logs


def deliver_alert(alert_id):
    with logs.context(alert=alert_id):
        return delivery.deliver(alert_id)


def deliver_due_alerts():
    return delivery.deliver_due()


def check_clock_rules():
    from django.utils import timezone

    return len(rules.check_clock_rules(timezone.now()))


def consume_events():
    """React to committed integration events (alerts, incidents, webhooks)."""
    return consumers.consume_all()


def deliver_webhook(delivery_id):
    return webhooks.deliver(delivery_id)


def deliver_due_webhooks():
    from django.utils import timezone

    from alerts.models import WebhookDelivery

    now = timezone.now()
    due = WebhookDelivery.objects.filter(state=WebhookDelivery.State.PENDING, next_attempt_at__lte=now).values_list(
        "pk", flat=True
    )
    return [webhooks.deliver(pk, now) for pk in list(due[:500])]
