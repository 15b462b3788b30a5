"""What /metrics shows of alerts and webhooks.

Tallies (`integrations.tallies`), written in the transaction that records
the fact: an alert email sent (its delivery lag, from raised to sent), an
alert email that failed, a webhook attempt (its latency, delivered or
failed), a webhook delivery given up. Gauges read when scraped, each a
count on an index capped at COUNT_CAP, or one indexed MIN.
"""

from django.db.models import Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from alerts.models import Alert, WebhookDelivery
from integrations.metrics import COUNT_CAP, capped_count
from integrations.tallies import TallyCounter, TallyHistogram

ALERT_DELIVERY_LAG = TallyHistogram(
    "syncconsole_alert_delivery_lag_seconds",
    "From an alert being raised to its email being sent (digests included), by rule.",
    ["rule"],
    buckets=(5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400),
)
ALERT_SEND_FAILURES = TallyCounter(
    "syncconsole_alert_send_failures_total",
    "Alert emails (single or digest) the SMTP server refused or could not take; each is retried.",
)
WEBHOOK_ATTEMPT_SECONDS = TallyHistogram(
    "syncconsole_webhook_attempt_duration_seconds",
    "Latency of each webhook delivery attempt, by result: delivered (a 2xx answer) or failed.",
    ["result"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
WEBHOOKS_GIVEN_UP = TallyCounter(
    "syncconsole_webhook_deliveries_given_up_total",
    "Webhook deliveries that failed WEBHOOK_MAX_ATTEMPTS times and are not retried any more.",
)


def alerts_sent(alerts, now):
    """Observe the delivery lag of alerts just marked sent; inside that transaction."""
    for alert in alerts:
        ALERT_DELIVERY_LAG.observe(max((now - alert.created_at).total_seconds(), 0), rule=alert.rule)


def webhook_attempted(*, delivered, latency_ms, gave_up):
    """Count one delivery attempt; inside the transaction that records its outcome."""
    WEBHOOK_ATTEMPT_SECONDS.observe(latency_ms / 1000, result="delivered" if delivered else "failed")
    if gave_up:
        WEBHOOKS_GIVEN_UP.inc()


class AlertsCollector:
    """Gauges of alerts waiting and webhook deliveries pending, read when /metrics is scraped."""

    def collect(self):
        now = timezone.now()
        by_state = GaugeMetricFamily(
            "syncconsole_alerts", f"Alerts by state (counted up to {COUNT_CAP} per state).", labels=["state"]
        )
        for state in Alert.State.values:
            by_state.add_metric([state], capped_count(Alert.objects.filter(state=state)))
        yield by_state
        first = (
            Alert.objects.filter(state=Alert.State.PENDING)
            .order_by()
            .aggregate(first=Min("created_at"))["first"]
        )
        yield GaugeMetricFamily(
            "syncconsole_alerts_oldest_pending_age_seconds",
            "How long the oldest alert waiting to be sent (pending) has waited; 0 when none waits.",
            value=max((now - first).total_seconds(), 0) if first else 0,
        )
        yield GaugeMetricFamily(
            "syncconsole_webhook_deliveries_pending",
            f"Webhook deliveries waiting for their first or next attempt (counted up to {COUNT_CAP}).",
            value=capped_count(WebhookDelivery.objects.filter(state=WebhookDelivery.State.PENDING)),
        )
