"""Alerts and webhooks react to committed integration events, each event at least once per consumer.

`integrations.events` announces events after their transaction commits; the
kick queues `consume` for each consumer (the every-minute schedule catches
up whatever a lost kick or a killed worker left). `consume` reads the events
of the kinds it handles that have no receipt of its own, oldest first, and
handles each in one transaction together with inserting its receipt: a
second worker reaching the same event fails on the receipt's unique
constraint and rolls back, so what an event causes happens once.
"""

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from alerts import incidents, rules, webhooks
from alerts.models import EventConsumer, EventReceipt
from integrations.models import IntegrationEvent
from syncconsole import logs

logger = logging.getLogger(__name__)
Consumer = EventReceipt.Consumer
Kind = IntegrationEvent.Kind

BATCH = 200
# Events older than this without a receipt are not taken up any more: a day
# of outage later, an alert about it helps nobody.
LOOKBACK = timedelta(days=1)
# An event's id is taken when it is written, but it becomes visible when its
# transaction commits, so a smaller id can appear after a larger one. The
# consumer's starting point only moves past events older than this, which
# every writing transaction has long committed or rolled back by then.
SETTLE = timedelta(minutes=10)


def handle_for_alerts(event, now):
    """Alerts (and incident bookkeeping) an event causes; returns what was done, in words."""
    if event.kind == Kind.SESSION_FINISHED:
        incident = incidents.on_session_finished(event.integration, event.session, now) if event.session else None
        raised = rules.on_session_finished(event, incident, now)
    elif event.kind == Kind.STATUS_CHANGED:
        raised = rules.on_status_changed(event, now)
    else:
        raised = []
    return ", ".join(f"{alert.rule} alert" for alert in raised) or "no alert"


def handle_for_webhooks(event, now):
    """Webhook deliveries an event causes; returns what was done, in words."""
    ids = webhooks.on_event(event, now)
    return f"{len(ids)} deliveries" if ids else "no endpoint wants it"


HANDLERS = {
    Consumer.ALERTS: ((Kind.SESSION_FINISHED, Kind.STATUS_CHANGED), handle_for_alerts),
    Consumer.WEBHOOKS: ((Kind.SESSION_FINISHED, Kind.STATUS_CHANGED), handle_for_webhooks),
}


def pending(consumer, now):
    """The events `consumer` has not handled yet, oldest first."""
    kinds, _ = HANDLERS[consumer]
    since = EventConsumer.objects.filter(name=consumer).values_list("since_event_id", flat=True).first() or 0
    handled = EventReceipt.objects.filter(consumer=consumer, event=OuterRef("pk"))
    return (
        IntegrationEvent.objects.filter(pk__gt=since, kind__in=kinds, created_at__gte=now - LOOKBACK)
        .exclude(Exists(handled))
        .select_related("integration__tenant", "session__error_code")
        .order_by("pk")
    )


def consume(consumer, *, limit=BATCH, now=None):
    """Handle up to `limit` pending events for `consumer`; returns how many this call handled."""
    _, handle = HANDLERS[consumer]
    done = 0
    for event in list(pending(consumer, now or timezone.now())[:limit]):
        at = now or timezone.now()
        ids = {"integration": event.integration_id, "session": event.session_id}
        with logs.context(tenant=event.integration.tenant_id, **ids), transaction.atomic():
            try:
                with transaction.atomic():
                    receipt = EventReceipt.objects.create(event=event, consumer=consumer, handled_at=at)
            except IntegrityError:
                continue  # another worker handled it first
            receipt.outcome = handle(event, at)[:300]
            receipt.save(update_fields=["outcome"])
        done += 1
    if done:
        logger.info("%s handled %d event(s)", consumer, done)
    advance(consumer, now or timezone.now())
    return done


def advance(consumer, now):
    """Move the consumer's starting point past settled events it has handled, so `pending` stays a short scan."""
    state, _ = EventConsumer.objects.get_or_create(name=consumer)
    settled_before = now - SETTLE
    first_unhandled = pending(consumer, now).filter(created_at__lt=settled_before).values_list("pk", flat=True).first()
    if first_unhandled is not None:
        new_since = first_unhandled - 1
    else:
        new_since = (
            IntegrationEvent.objects.filter(pk__gt=state.since_event_id, created_at__lt=settled_before)
            .order_by("-pk")
            .values_list("pk", flat=True)
            .first()
        )
    if new_since is not None and new_since > state.since_event_id:
        EventConsumer.objects.filter(name=consumer, since_event_id__lt=new_since).update(since_event_id=new_since)


def consume_all(now=None):
    """Every consumer until nothing is pending (in batches)."""
    total = 0
    for consumer in HANDLERS:
        while True:
            handled = consume(consumer, now=now)
            total += handled
            if handled < BATCH:
                break
    return total
