"""The trail staff leave when they look at an integration as its customer sees it ("View as customer").

Seeing a customer's pages is access to the customer's data, so each view is
written on the integration's timeline and in the audit trail (which the
tenant's admins read on their Activity page, as "SyncConsole support"), in
one transaction. The page itself is portal/views_as_customer.py.
"""

from django.db import transaction
from django.utils import timezone

from audit import services as audit
from audit.models import AuditRecord
from integrations.models import IntegrationEvent
from integrations.services import record_event

TABS = {"general": "General", "issues": "Issues"}
ROLES = {"admin": "a tenant admin", "viewer": "a viewer"}


def record_view(integration, *, actor, tab, role, now=None):
    """One timeline event and one audit record: who viewed which tab as which role."""
    now = now or timezone.now()
    what = f"the {TABS[tab]} tab as {ROLES[role]} sees it (read-only)"
    with transaction.atomic():
        event = record_event(
            integration,
            IntegrationEvent.Kind.VIEWED_AS_CUSTOMER,
            actor=actor,
            note=f"Viewed {what}.",
            now=now,
        )
        audit.record(
            AuditRecord.Action.STAFF_ACTION,
            tenant=integration.tenant_id,
            target=str(integration),
            actor=actor,
            changes={
                "integration_id": integration.pk,
                "action": "view_as_customer",
                "tab": tab,
                "role": role,
                "message": f"Viewed {integration.name}: {what}",
            },
            now=now,
        )
    return event
