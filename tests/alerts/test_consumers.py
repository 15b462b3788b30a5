"""The event consumers: every committed event handled once per consumer, and a short scan however long the history.

Each consumer keeps a starting point (EventConsumer.since_event_id) that
moves past events it has handled once they are older than SETTLE, when no
writing transaction can still commit an event with a smaller id.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts import consumers
from alerts.models import EventConsumer, EventReceipt
from integrations.models import Integration, IntegrationEvent
from tests.factories import IntegrationFactory

pytestmark = pytest.mark.django_db
Consumer = EventReceipt.Consumer


def status_changed(integration, at):
    return IntegrationEvent.objects.create(
        integration=integration,
        kind=IntegrationEvent.Kind.STATUS_CHANGED,
        from_status=Integration.Status.ACTIVE,
        to_status=Integration.Status.FAILING,
        created_at=at,
        data={"reason": "test"},
    )


def test_every_event_is_handled_once_and_the_starting_point_moves_past_settled_ones(error_catalog):
    now = timezone.now()
    integration = IntegrationFactory(status=Integration.Status.FAILING)
    EventConsumer.objects.update_or_create(name=Consumer.WEBHOOKS, defaults={"since_event_id": 0})
    old = [status_changed(integration, now - timedelta(hours=2, minutes=n)) for n in range(3)]
    recent = status_changed(integration, now - timedelta(minutes=1))

    assert consumers.consume(Consumer.WEBHOOKS, now=now) == 4
    assert consumers.consume(Consumer.WEBHOOKS, now=now) == 0  # nothing twice
    assert EventReceipt.objects.filter(consumer=Consumer.WEBHOOKS).count() == 4

    since = EventConsumer.objects.get(name=Consumer.WEBHOOKS).since_event_id
    assert since == max(e.pk for e in old)  # past the settled events, not past the recent one
    assert since < recent.pk
    # Only what came after the starting point is looked at again.
    assert list(consumers.pending(Consumer.WEBHOOKS, now).values_list("pk", flat=True)) == []
    later = status_changed(integration, now)
    assert list(consumers.pending(Consumer.WEBHOOKS, now).values_list("pk", flat=True)) == [later.pk]


def test_a_settled_event_not_handled_yet_holds_the_starting_point_back(error_catalog):
    now = timezone.now()
    integration = IntegrationFactory(status=Integration.Status.FAILING)
    EventConsumer.objects.update_or_create(name=Consumer.ALERTS, defaults={"since_event_id": 0})
    first = status_changed(integration, now - timedelta(hours=1))
    second = status_changed(integration, now - timedelta(minutes=30))
    # The first one was handled; the second never was (its kick was lost).
    EventReceipt.objects.create(event=first, consumer=Consumer.ALERTS, handled_at=now)

    consumers.advance(Consumer.ALERTS, now)
    assert EventConsumer.objects.get(name=Consumer.ALERTS).since_event_id == second.pk - 1

    assert consumers.consume(Consumer.ALERTS, now=now) == 1
    assert EventConsumer.objects.get(name=Consumer.ALERTS).since_event_id == second.pk


def test_events_older_than_the_lookback_are_not_taken_up(error_catalog):
    now = timezone.now()
    integration = IntegrationFactory(status=Integration.Status.FAILING)
    EventConsumer.objects.update_or_create(name=Consumer.ALERTS, defaults={"since_event_id": 0})
    stale = status_changed(integration, now - consumers.LOOKBACK - timedelta(minutes=1))

    assert consumers.consume(Consumer.ALERTS, now=now) == 0
    assert not EventReceipt.objects.filter(event=stale).exists()
    assert EventConsumer.objects.get(name=Consumer.ALERTS).since_event_id == stale.pk
