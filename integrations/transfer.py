"""Integrations' part of a tenant export (syncconsole/tenant_transfer/): what goes, and how it lands.

An imported integration has no credentials (they never leave the exporting
installation), so it lands switched off (inactive): by DESIGN.md's states the
only one in which nothing runs, neither the scheduler, nor a person's sync,
nor the clock alerts, until staff save credentials and reactivate it. Setup
would not do: completing it queues the first sync at once, and a person may
retry it. Its facts (last outcome, streaks, quality assurance) stay as they
were, so that reactivating shows what the customer saw; the status reason says
where it came from. Sessions that were queued or running there can never run
here: they land cancelled.
"""

from django.conf import settings

from integrations import counters
from integrations import services
from integrations import status as machine
from integrations.models import (
    AccountMapping,
    Integration,
    IntegrationEvent,
    Membership,
    SyncedRecord,
    SyncSession,
    Tenant,
)
from syncconsole.tenant_transfer.kinds import Kind


def _tenant_lands(tenant, context):
    tenant.slug = context.slug


def _membership_lands(membership, context):
    """Members created by this import get their membership; a user who was here already does not.

    A matched user is someone of this installation: a membership would show
    them the imported tenant in the portal.
    """
    return membership.user_id in context.users_created


def _integration_lands(integration, context):
    was = integration.get_status_display()
    integration.credentials_ciphertext = ""
    integration.credentials_set_at = None
    integration.credentials_expire_at = None
    integration.deactivated_at = context.now
    integration.deactivated_for_inactivity = False
    integration.next_sync_at = None
    integration.open_issue_count = 0  # counted once the issues are in (finish)
    integration.status, reason = machine.derive(services.facts_of(integration), settings.CREDENTIALS_INVALID_AFTER)
    integration.status_changed_at = context.now
    integration.status_reason = (
        f"Imported from {context.source} without credentials (there: {was}). {reason} "
        "Save credentials, then reactivate."
    )[:500]


def _session_lands(session, context):
    if session.state in SyncSession.OPEN_STATES:
        note = f"Was {session.state} in {context.source} when exported; it cannot run here."
        session.state = SyncSession.State.CANCELLED
        session.finished_at = session.finished_at or context.now
        session.lease_expires_at = None
        session.error_message = f"{session.error_message}\n{note}".strip()


def finish(context):
    """Count the imported integrations' open issues (the stored count the lists read)."""
    Integration.objects.filter(tenant_id=context.tenant_id).update(
        open_issue_count=counters.actual_open_issue_count()
    )


KINDS = [
    Kind("tenant", Tenant, rows=lambda tenant: Tenant.objects.filter(pk=tenant.pk), on_import=_tenant_lands),
    Kind(
        "membership",
        Membership,
        rows=lambda tenant: tenant.memberships.all(),
        on_import=_membership_lands,
        skip_note="their users were here already, and a membership would show them this tenant in the portal.",
    ),
    Kind(
        "integration",
        Integration,
        rows=lambda tenant: tenant.integrations.all(),
        leave_out=("credentials_ciphertext",),
        on_import=_integration_lands,
    ),
    Kind(
        "account_mapping",
        AccountMapping,
        rows=lambda tenant: AccountMapping.objects.filter(integration__tenant=tenant),
    ),
    Kind(
        "sync_session",
        SyncSession,
        rows=lambda tenant: SyncSession.objects.filter(integration__tenant=tenant),
        on_import=_session_lands,
    ),
    Kind(
        "synced_record",
        SyncedRecord,
        rows=lambda tenant: SyncedRecord.objects.filter(integration__tenant=tenant),
        id_columns={"seen_session_id": "sync_session"},
        optional=True,
    ),
    Kind(
        "integration_event",
        IntegrationEvent,
        rows=lambda tenant: IntegrationEvent.objects.filter(integration__tenant=tenant),
    ),
]

# The tenant's models an export leaves behind, and why.
LEFT_OUT = {
    "integrations.ApiKey": "its hash would let the customer's live key into the importing installation",
    "integrations.ReauthLink": "its hash would let a live re-authentication link into the importing installation",
    "integrations.PageFingerprint": "a full sync's shortcut, rebuilt by the next full sync",
}
