"""What /metrics counts of alerts and webhooks, written with the facts: emails sent (and how late), emails the
SMTP server refused, webhook attempts (and how long they took), deliveries given up.

Against a real SMTP server (tests/plugins/smtp.py) and a real local HTTP receiver.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts import delivery, webhooks
from alerts.models import Alert, WebhookDelivery
from tests.alerts.test_delivery import raise_one
from tests.alerts.test_webhooks import Receiver, emit_one
from tests.factories import IntegrationFactory
from tests.metrics import TOKEN, scrape, value

live = pytest.mark.django_db(transaction=True)
R = Alert.Rule


@pytest.fixture(autouse=True)
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN


@pytest.fixture
def receiver(settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.WEBHOOK_BACKOFF_SECONDS = 0
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    r = Receiver()
    yield r
    r.close()


@live
def test_a_sent_alert_observes_its_delivery_lag_and_a_refused_one_counts_a_failure(
    alert_tenant, smtp_server, error_catalog
):
    tenant = alert_tenant()
    integration = IntegrationFactory(tenant=tenant, status="credentials_invalid")
    lag = "syncconsole_alert_delivery_lag_seconds"
    failures = "syncconsole_alert_send_failures_total"
    before = scrape()

    smtp_server.stop()
    raised_at = timezone.now()
    alert = raise_one(
        integration, R.CREDENTIALS_INVALID, raised_at
    )  # not digested: it goes at once, and fails
    alert.refresh_from_db()
    assert alert.state == Alert.State.PENDING and alert.last_error
    refused = scrape()
    assert value(refused, failures) == value(before, failures) + 1
    assert value(refused, f"{lag}_count", rule="credentials_invalid") == value(
        before, f"{lag}_count", rule="credentials_invalid"
    )

    smtp_server.start()
    sent_at = raised_at + timedelta(minutes=3)
    assert delivery.deliver_due(now=sent_at)["sent"] == 1
    after = scrape()
    labels = {"rule": "credentials_invalid"}
    assert value(after, f"{lag}_count", **labels) == value(before, f"{lag}_count", **labels) + 1
    assert value(after, f"{lag}_sum", **labels) - value(before, f"{lag}_sum", **labels) == pytest.approx(
        180, abs=1
    )
    # Three minutes: above the 120 s bucket, within the 300 s one.
    assert value(after, f"{lag}_bucket", le="120.0", **labels) == value(
        before, f"{lag}_bucket", le="120.0", **labels
    )
    assert (
        value(after, f"{lag}_bucket", le="300.0", **labels)
        == value(before, f"{lag}_bucket", le="300.0", **labels) + 1
    )
    assert value(after, failures) == value(refused, failures)


@live
def test_webhook_attempts_are_timed_by_result_and_given_up_deliveries_counted(receiver, alert_tenant):
    tenant = alert_tenant()
    webhooks.create_endpoint(tenant, receiver.url)
    attempts = "syncconsole_webhook_attempt_duration_seconds_count"
    given_up = "syncconsole_webhook_deliveries_given_up_total"
    before = scrape()

    delivered = emit_one(tenant)  # sent after commit, answered 200
    delivered.refresh_from_db()
    assert delivered.state == WebhookDelivery.State.SUCCEEDED
    receiver.script = [500, 503]
    failing = emit_one(tenant)
    failing.refresh_from_db()
    assert failing.state == WebhookDelivery.State.PENDING
    assert webhooks.deliver(failing.pk, now=timezone.now()) == WebhookDelivery.State.FAILED

    after = scrape()
    assert value(after, attempts, result="delivered") == value(before, attempts, result="delivered") + 1
    assert value(after, attempts, result="failed") == value(before, attempts, result="failed") + 2
    assert value(after, given_up) == value(before, given_up) + 1
    bucket = "syncconsole_webhook_attempt_duration_seconds_bucket"
    # A local receiver answers within 5 s: every attempt is in that bucket.
    assert value(after, bucket, result="failed", le="5.0") == value(after, attempts, result="failed")
    assert value(after, "syncconsole_webhook_deliveries_pending") == 0
