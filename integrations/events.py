"""Events others react to: written in the transaction that changes state, announced once it commits.

Services and the engine write IntegrationEvent rows (the timeline) and never
import the apps that react to them (alerts, webhooks). A reacting app
registers a `kick` with `subscribe` when it starts; after a transaction that
wrote an announced event commits, every kick runs (it queues that app's
consumer). Consumers read committed events at least once and record, per
event and consumer, what they did, so a kick that is lost only delays them
until their periodic run.
"""

import dataclasses
from datetime import datetime

from django.db import transaction

from integrations.models import IntegrationEvent

_kicks = []


def subscribe(kick):
    """Call `kick()` after every commit that wrote announced events."""
    if kick not in _kicks:
        _kicks.append(kick)


def write(events):
    """Insert timeline events; announce them after commit if anyone reacts to their kinds."""
    if not events:
        return []
    stored = IntegrationEvent.objects.bulk_create(events)
    if any(event.kind in IntegrationEvent.ANNOUNCED_KINDS for event in events):
        transaction.on_commit(_run_kicks)
    return stored


def _run_kicks():
    for kick in list(_kicks):
        kick()


def facts_data(facts):
    """The status machine's facts as JSON (times in ISO 8601)."""
    return {
        name: value.isoformat() if isinstance(value, datetime) else value
        for name, value in dataclasses.asdict(facts).items()
    }


def facts_from_data(data):
    """The inverse of facts_data."""
    from integrations.status import Facts

    values = {}
    for f in dataclasses.fields(Facts):
        value = data.get(f.name, f.default)
        if isinstance(value, str) and f.name.endswith(("_at", "_since")) and value:
            value = datetime.fromisoformat(value)
        values[f.name] = value
    return Facts(**values)
