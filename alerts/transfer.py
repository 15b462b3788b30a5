"""Alerts' part of a tenant export (syncconsole/tenant_transfer/): the tenant's alerts, and quiet after an import.

Nothing an import brings may reach the customer from the importing
installation: an alert that was waiting to be sent lands failed (its
`last_error` says why), and every imported timeline event gets a receipt for
each consumer, so neither alerts nor webhooks react to it again.
"""

from django.utils import timezone

from alerts.consumers import HANDLERS
from alerts.models import Alert, EventReceipt
from integrations.models import IntegrationEvent
from syncconsole.tenant_transfer.kinds import Kind

UNSENT = (Alert.State.PENDING, Alert.State.SENDING, Alert.State.DIGEST)
BATCH = 1000


def _alert_lands(alert, context):
    if alert.state in UNSENT:
        alert.last_error = f"Imported from {context.source} while {alert.state}; never sent from here."
        alert.state = Alert.State.FAILED
        alert.next_attempt_at = None
        alert.lease_expires_at = None
        alert.digest_window_ends_at = None


def finish(context):
    """A receipt per imported event and consumer: the exporting installation already reacted to them."""
    now = timezone.now()
    for consumer, (kinds, _) in HANDLERS.items():
        events = IntegrationEvent.objects.filter(integration__tenant_id=context.tenant_id, kind__in=kinds)
        ids = events.order_by("pk").values_list("pk", flat=True)
        batch = []
        for event_id in ids.iterator(chunk_size=BATCH):
            batch.append(EventReceipt(event_id=event_id, consumer=consumer, outcome="imported", handled_at=now))
            if len(batch) == BATCH:
                EventReceipt.objects.bulk_create(batch)
                batch = []
        EventReceipt.objects.bulk_create(batch)


KINDS = [
    Kind(
        "alert",
        Alert,
        rows=lambda tenant: Alert.objects.filter(tenant=tenant),
        unlinked=("incident",),
        on_import=_alert_lands,
    ),
]

LEFT_OUT = {
    "alerts.WebhookEndpoint": (
        "its secret is a credential, and the importing installation must not post to the customer"
    ),
    "alerts.WebhookDelivery": "goes with its endpoint",
    "alerts.EventReceipt": "the importing installation writes its own (`finish`), so nothing reacts twice",
}
