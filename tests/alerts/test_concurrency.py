"""One alert per (integration, rule, streak), however many workers raise it at once."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from alerts import consumers, rules, webhooks
from alerts.models import Alert, EventReceipt, WebhookDelivery
from integrations.models import Integration, IntegrationEvent
from tests.factories import IntegrationFactory

live = pytest.mark.django_db(transaction=True)
R = Alert.Rule


def run_together(target, n=2):
    """Run target(i) in n threads released by one barrier; each thread has its own connection."""
    from django.db import connections

    barrier = threading.Barrier(n, timeout=20)
    results, errors = [None] * n, []

    def work(i):
        try:
            barrier.wait()
            results[i] = target(i)
        except Exception as exc:  # reported by the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    assert not errors, errors
    return results


@pytest.fixture
def failing_integration(alert_tenant, settings):
    tenant = alert_tenant()
    integration = IntegrationFactory(tenant=tenant, status=Integration.Status.FAILING, consecutive_unsuccessful=10)
    # An endpoint that wants alert.raised: counts the webhook side of "one alert".
    webhooks.create_endpoint(tenant, "http://127.0.0.1:9/hook", ["alert.raised"])
    return integration


@pytest.mark.postgres
@live
@pytest.mark.parametrize("same_moment", [False, True], ids=["own-clock", "same-clock"])
def test_two_workers_raising_the_same_alert_at_once_make_one(failing_integration, smtp_server, same_moment):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serialises writers, so the workers never overlap")
    streak = "2026-01-01T00:00:00+00:00"
    base = timezone.now()

    def worker(i):
        integration = Integration.objects.select_related("tenant").get(pk=failing_integration.pk)
        now = base if same_moment else base + timedelta(microseconds=i + 1)
        alert = rules.build(
            integration, R.REPEATED_FAILURES, streak, now, recipients=rules.tenant_recipients(integration.tenant)
        )
        with transaction.atomic():
            stored = rules.raise_alerts([alert])
        return [a.pk for a in stored]

    results = run_together(worker)

    alert = Alert.objects.get(integration=failing_integration)
    assert (alert.rule, alert.streak, alert.state) == (R.REPEATED_FAILURES, streak, Alert.State.SENT)
    assert alert.attempts == 1
    assert len(smtp_server.messages) == 1
    assert IntegrationEvent.objects.filter(integration=failing_integration, kind=IntegrationEvent.Kind.ALERT_SENT).count() == 1
    # Exactly one worker raised it.
    assert sorted(results, key=len) == [[], [alert.pk]]
    assert WebhookDelivery.objects.filter(event="alert.raised").count() == 1


@pytest.mark.postgres
@live
def test_two_workers_consuming_the_same_event_at_once_make_one_alert(healthy_then_failing, fail_times, smtp_server):
    """The 10th failure's event, handled by two consumers side by side: one receipt, one alert, one email."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serialises writers, so the workers never overlap")
    integration = healthy_then_failing()
    fail_times(integration, 10)
    tenth = IntegrationEvent.objects.filter(integration=integration, kind=IntegrationEvent.Kind.SESSION_FINISHED).latest("pk")
    assert tenth.data["after"]["consecutive_unsuccessful"] == 10
    # Forget what the real run did, then let two workers handle the event at once.
    Alert.objects.all().delete()
    EventReceipt.objects.filter(event__integration=integration).delete()
    smtp_server.clear()

    events = IntegrationEvent.objects.filter(integration=integration, kind__in=IntegrationEvent.ANNOUNCED_KINDS)

    results = run_together(lambda i: consumers.consume(EventReceipt.Consumer.ALERTS))

    # Between them the two workers handled every event once.
    assert sum(results) == events.count()
    for event in events:
        assert EventReceipt.objects.filter(event=event, consumer=EventReceipt.Consumer.ALERTS).count() == 1
    assert Alert.objects.filter(integration=integration, rule=R.REPEATED_FAILURES).count() == 1
    assert len(smtp_server.messages) == 1


@live
def test_an_event_handled_again_raises_no_second_alert(healthy_then_failing, fail_times, smtp_server):
    """A consumer run again (or one that lost its receipts) for one streak must not raise or send twice."""
    integration = healthy_then_failing()
    webhooks.create_endpoint(integration.tenant, "http://127.0.0.1:9/hook", ["alert.raised"])

    fail_times(integration, 10)
    assert Alert.objects.filter(integration=integration).count() == 1
    assert len(smtp_server.messages) == 1

    assert consumers.consume_all() == 0  # every event already has its receipts
    EventReceipt.objects.filter(event__integration=integration).delete()
    assert consumers.consume_all() > 0  # handled once more, from the start

    assert Alert.objects.filter(integration=integration).count() == 1
    assert len(smtp_server.messages) == 1
    assert WebhookDelivery.objects.filter(event="alert.raised").count() == 1


@live
def test_raise_alerts_twice_for_one_streak_keeps_one_row(failing_integration, smtp_server):
    now = timezone.now()
    streak = "2026-01-01T00:00:00+00:00"

    def raise_once(at):
        integration = Integration.objects.select_related("tenant").get(pk=failing_integration.pk)
        alert = rules.build(integration, R.REPEATED_FAILURES, streak, at, recipients=rules.tenant_recipients(integration.tenant))
        with transaction.atomic():
            return rules.raise_alerts([alert])

    assert len(raise_once(now)) == 1
    assert raise_once(now + timedelta(seconds=1)) == []
    assert Alert.objects.filter(integration=failing_integration).count() == 1
    assert len(smtp_server.messages) == 1
