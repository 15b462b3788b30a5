"""State changes of integrations: status transitions, actions, events.

Every status change goes through `apply_transition`, which writes the row and
the IntegrationEvent together; callers hold the row locked
(`select_for_update`) inside a transaction so two transitions never interleave.
"""

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit import services as audit
from audit.models import AuditRecord
from integrations import events as events_module
from integrations import status as machine
from integrations.models import Integration, IntegrationEvent

ACTION_EVENTS = {
    machine.Action.DEACTIVATE: IntegrationEvent.Kind.DEACTIVATED,
    machine.Action.REACTIVATE: IntegrationEvent.Kind.REACTIVATED,
    machine.Action.DELETE: IntegrationEvent.Kind.DELETED,
    machine.Action.RESTORE: IntegrationEvent.Kind.RESTORED,
    machine.Action.ENTER_QA: IntegrationEvent.Kind.QA_ENTERED,
    machine.Action.RELEASE_QA: IntegrationEvent.Kind.QA_RELEASED,
    machine.Action.CREDENTIALS_UPDATED: IntegrationEvent.Kind.CREDENTIALS_UPDATED,
    machine.Action.CREDENTIALS_REVOKED: IntegrationEvent.Kind.CREDENTIALS_REVOKED,
    machine.Action.MAPPING_COMPLETED: IntegrationEvent.Kind.MAPPING_CHANGED,
    machine.Action.MAPPING_INCOMPLETE: IntegrationEvent.Kind.MAPPING_CHANGED,
}


def facts_of(integration):
    return machine.Facts(
        deleted=integration.deleted_at is not None,
        inactive=integration.deactivated_at is not None,
        quality_assurance=integration.quality_assurance_since is not None,
        mapping_complete=integration.mapping_complete,
        first_sync_finished=integration.first_sync_finished_at is not None,
        ever_succeeded=integration.last_success_at is not None,
        last_outcome=integration.last_outcome,
        last_outcome_at=integration.last_outcome_at,
        last_error_code=integration.last_error_code,
        consecutive_unsuccessful=integration.consecutive_unsuccessful,
        unsuccessful_since=integration.unsuccessful_since,
        auth_failing_since=integration.auth_failing_since,
        credentials_revoked=integration.credentials_revoked_at is not None,
    )


def _stamp(current, flag, now):
    """Keep the first time a flag was set; clear it when unset."""
    if not flag:
        return None
    return current or now


def apply_transition(integration, transition, *, now, actor=None, note="", session=None, event_kind=None):
    """Write the transition's facts and status to the row, and the timeline.

    Writes an event of `event_kind` (the action taken) when given, and a
    status_changed event whenever the status changed.
    """
    facts = transition.facts
    integration.deleted_at = _stamp(integration.deleted_at, facts.deleted, now)
    integration.deactivated_at = _stamp(integration.deactivated_at, facts.inactive, now)
    if not facts.inactive:
        integration.deactivated_for_inactivity = False
    integration.quality_assurance_since = _stamp(integration.quality_assurance_since, facts.quality_assurance, now)
    integration.mapping_complete = facts.mapping_complete
    integration.first_sync_finished_at = _stamp(integration.first_sync_finished_at, facts.first_sync_finished, now)
    integration.last_outcome = facts.last_outcome
    integration.last_outcome_at = facts.last_outcome_at
    integration.last_error_code = facts.last_error_code
    integration.consecutive_unsuccessful = facts.consecutive_unsuccessful
    integration.unsuccessful_since = facts.unsuccessful_since
    integration.auth_failing_since = facts.auth_failing_since
    integration.credentials_revoked_at = _stamp(integration.credentials_revoked_at, facts.credentials_revoked, now)
    integration.status_reason = transition.reason
    if transition.changed:
        integration.status = transition.status
        integration.status_changed_at = now
    integration.save()

    events = []
    if event_kind:
        events.append(
            IntegrationEvent(
                integration=integration,
                kind=event_kind,
                actor=actor,
                from_status=transition.previous_status,
                to_status=transition.status,
                note=note,
                session=session,
                created_at=now,
            )
        )
    if transition.changed:
        events.append(
            IntegrationEvent(
                integration=integration,
                kind=IntegrationEvent.Kind.STATUS_CHANGED,
                actor=actor,
                from_status=transition.previous_status,
                to_status=transition.status,
                note=transition.reason if not note else f"{transition.reason} {note}",
                session=session,
                created_at=now,
                data={"reason": transition.reason, "action": str(event_kind or "")},
            )
        )
    events_module.write(events)
    return transition


def perform_action(integration_id, action, *, actor=None, note="", now=None):
    """Apply a person's action to an integration; IllegalTransition if refused.

    Locks the row so the check and the change see the same state.
    """
    now = now or timezone.now()
    action = machine.Action(action)
    with transaction.atomic():
        integration = Integration.objects.select_for_update().get(pk=integration_id)
        transition = machine.on_action(
            facts_of(integration), integration.status, action, settings.CREDENTIALS_INVALID_AFTER
        )
        if action == machine.Action.CREDENTIALS_REVOKED:
            integration.set_credentials({}, set_at=None)
            audit.record(
                AuditRecord.Action.CREDENTIALS_CHANGED,
                tenant=integration.tenant_id,
                target=str(integration),
                actor=actor,
                changes={"integration_id": integration.pk, "how": "revoked", "note": note[:500]},
                now=now,
            )
        elif actor is not None and not actor.is_staff and action != machine.Action.CREDENTIALS_UPDATED:
            # Staff actions are recorded through the admin's log (audit.taps).
            audit.record(
                AuditRecord.Action.CUSTOMER_ACTION,
                tenant=integration.tenant_id,
                target=str(integration),
                actor=actor,
                changes={"integration_id": integration.pk, "action": str(action), "note": note[:500]},
                now=now,
            )
        apply_transition(
            integration, transition, now=now, actor=actor, note=note, event_kind=ACTION_EVENTS[action]
        )
    return integration


def record_event(integration, kind, *, actor=None, note="", session=None, now=None):
    return IntegrationEvent.objects.create(
        integration=integration,
        kind=kind,
        actor=actor,
        note=note,
        session=session,
        from_status=integration.status,
        to_status=integration.status,
        created_at=now or timezone.now(),
    )


def enter_quality_assurance(integration_id, *, actor, reason, owner=None, due=None, now=None):
    now = now or timezone.now()
    with transaction.atomic():
        integration = perform_action(integration_id, machine.Action.ENTER_QA, actor=actor, note=reason, now=now)
        Integration.objects.filter(pk=integration_id).update(
            quality_assurance_owner=owner, quality_assurance_reason=reason[:500], quality_assurance_due=due
        )
    integration.refresh_from_db()
    return integration


def release_quality_assurance(integration_id, *, actor, note, now=None):
    """Leave QA and queue a sync so the status reflects the vendor again.

    Returns (integration, session or None, why no session).
    """
    from integrations.models import SyncSession
    from integrations.sync.starting import SyncRefused, start_sync

    with transaction.atomic():
        integration = perform_action(integration_id, machine.Action.RELEASE_QA, actor=actor, note=note, now=now)
        Integration.objects.filter(pk=integration_id).update(
            quality_assurance_owner=None, quality_assurance_reason="", quality_assurance_due=None
        )
    integration.refresh_from_db()
    try:
        session = start_sync(integration, kind=SyncSession.Kind.QUICK, trigger=SyncSession.Trigger.STAFF, requested_by=actor)
    except SyncRefused as exc:
        return integration, None, exc.message  # already syncing, or paused: the release itself stands
    return integration, session, ""


def set_paused(integration_id, paused, *, actor, reason="", now=None):
    """Pause or resume scheduled syncs; IllegalTransition if it already is so.

    A pause by someone who is not staff (a tenant admin in the portal) is
    marked as the customer's: they may lift it themselves (schedule_controls).
    """
    now = now or timezone.now()
    with transaction.atomic():
        integration = Integration.objects.select_for_update().get(pk=integration_id)
        if integration.paused == paused:
            raise machine.IllegalTransition("Syncs are already paused." if paused else "Syncs are not paused.")
        if integration.deleted_at:
            raise machine.IllegalTransition("The integration is deleted.")
        integration.paused = paused
        integration.paused_reason = reason[:500] if paused else ""
        integration.paused_by_customer = paused and actor is not None and not actor.is_staff
        integration.save(update_fields=["paused", "paused_reason", "paused_by_customer"])
        record_event(
            integration,
            IntegrationEvent.Kind.PAUSED if paused else IntegrationEvent.Kind.RESUMED,
            actor=actor,
            note=reason,
            now=now,
        )
    return integration


def store_rotated_credentials(integration, credentials):
    """Save credentials the vendor rotated (an OAuth2 refresh token) at once, encrypted; False if newer ones won.

    The vendor may already refuse the old refresh token, so this runs in its
    own transaction as soon as the new one arrives. Credentials a person
    saved after `integration` was read are newer than the rotation and stay.
    Callers that hold a session take its row lock first.
    """
    with transaction.atomic():
        locked = Integration.objects.select_for_update().get(pk=integration.pk)
        if locked.credentials_ciphertext != integration.credentials_ciphertext:
            return False
        locked.set_credentials(credentials, set_at=locked.credentials_set_at, expire_at=locked.credentials_expire_at)
        locked.save(update_fields=["credentials_ciphertext", "credentials_set_at", "credentials_expire_at"])
    integration.credentials_ciphertext = locked.credentials_ciphertext
    return True


def purge_deleted(now=None):
    """Delete for good the integrations deleted more than DELETED_RETENTION ago, with all they own."""
    now = now or timezone.now()
    expired = Integration.objects.filter(deleted_at__lt=now - settings.DELETED_RETENTION)
    ids = list(expired.values_list("pk", flat=True))
    for pk in ids:
        with transaction.atomic():
            Integration.objects.filter(pk=pk, deleted_at__lt=now - settings.DELETED_RETENTION).delete()
    return ids
