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
    """Pause or resume scheduled syncs; IllegalTransition if it already is so."""
    now = now or timezone.now()
    with transaction.atomic():
        integration = Integration.objects.select_for_update().get(pk=integration_id)
        if integration.paused == paused:
            raise machine.IllegalTransition("Syncs are already paused." if paused else "Syncs are not paused.")
        if integration.deleted_at:
            raise machine.IllegalTransition("The integration is deleted.")
        integration.paused = paused
        integration.paused_reason = reason[:500] if paused else ""
        integration.save(update_fields=["paused", "paused_reason"])
        record_event(
            integration,
            IntegrationEvent.Kind.PAUSED if paused else IntegrationEvent.Kind.RESUMED,
            actor=actor,
            note=reason,
            now=now,
        )
    return integration


def purge_deleted(now=None):
    """Delete for good the integrations deleted more than DELETED_RETENTION ago, with all they own."""
    now = now or timezone.now()
    expired = Integration.objects.filter(deleted_at__lt=now - settings.DELETED_RETENTION)
    ids = list(expired.values_list("pk", flat=True))
    for pk in ids:
        with transaction.atomic():
            Integration.objects.filter(pk=pk, deleted_at__lt=now - settings.DELETED_RETENTION).delete()
    return ids


def create_api_key(tenant, name, *, created_by=None):
    """A new API key: returns (ApiKey, raw key). The raw key is shown once and never stored."""
    from integrations.models import ApiKey

    raw = ApiKey.generate()
    key = ApiKey.objects.create(
        tenant=tenant, name=name, key_prefix=raw[:10], key_hash=ApiKey.hash_key(raw), created_by=created_by
    )
    audit.record(
        AuditRecord.Action.API_KEY_CREATED, tenant=tenant, target=str(key), actor=created_by, changes={"key_id": key.pk}
    )
    return key, raw


def revoke_api_key(key, *, actor=None, now=None):
    """Revoke a key; False if it already was."""
    from integrations.models import ApiKey

    revoked = bool(ApiKey.objects.filter(pk=key.pk, revoked_at=None).update(revoked_at=now or timezone.now()))
    if revoked:
        audit.record(
            AuditRecord.Action.API_KEY_REVOKED, tenant=key.tenant_id, target=str(key), actor=actor, changes={"key_id": key.pk}
        )
    return revoked


def deactivate_idle_development(now=None):
    """Switch off development tenants' integrations after DEVELOPMENT_INACTIVE_AFTER without an API request.

    Returns the integration ids it deactivated. Each gets a timeline event; the
    tenant's alert addresses and admins get one notice per tenant.
    """
    from django.core.mail import send_mail
    from django.db.models import Q

    from integrations.models import Membership, Tenant

    now = now or timezone.now()
    cutoff = now - settings.DEVELOPMENT_INACTIVE_AFTER
    idle_tenants = Tenant.objects.filter(environment=Tenant.Environment.DEVELOPMENT).filter(
        Q(last_api_request_at__lt=cutoff) | Q(last_api_request_at__isnull=True, created_at__lt=cutoff)
    )
    done = []
    for tenant in idle_tenants:
        from django.db.models import Exists, OuterRef

        recently_reactivated = IntegrationEvent.objects.filter(
            integration=OuterRef("pk"), kind=IntegrationEvent.Kind.REACTIVATED, created_at__gte=cutoff
        )
        # A reactivation by a person starts a new grace period.
        ids = list(
            Integration.objects.filter(tenant=tenant, deactivated_at=None, deleted_at=None)
            .exclude(Exists(recently_reactivated))
            .values_list("pk", flat=True)
        )
        names = []
        for pk in ids:
            note = f"No API request for {settings.DEVELOPMENT_INACTIVE_AFTER.days} days (development tenant)."
            try:
                integration = perform_action(pk, machine.Action.DEACTIVATE, note=note, now=now)
            except machine.IllegalTransition:
                continue
            Integration.objects.filter(pk=pk).update(deactivated_for_inactivity=True)
            names.append(integration.name)
            done.append(pk)
        if names:
            recipients = set(tenant.alert_email_list()) | set(
                Membership.objects.filter(tenant=tenant, role=Membership.Role.ADMIN)
                .exclude(user__email="")
                .values_list("user__email", flat=True)
            )
            if recipients:
                send_mail(
                    f"[SyncConsole] {len(names)} integration(s) of {tenant.name} switched off",
                    f"Your development tenant {tenant.name} made no API request for "
                    f"{settings.DEVELOPMENT_INACTIVE_AFTER.days} days, so these integrations were switched off:\n\n"
                    + "\n".join(f"  - {name}" for name in names)
                    + "\n\nThe next API request with one of your keys switches them on again, "
                    f"or a tenant admin can reactivate them in the portal: {settings.SITE_URL}/portal/\n",
                    None,
                    sorted(recipients),
                    fail_silently=True,
                )
    return done


def record_api_request(tenant, now=None):
    """Note the API request; reactivate integrations switched off for inactivity."""
    now = now or timezone.now()
    from integrations.models import Tenant

    Tenant.objects.filter(pk=tenant.pk).update(last_api_request_at=now)
    reactivated = []
    for pk in Integration.objects.filter(tenant=tenant, deactivated_for_inactivity=True, deleted_at=None).values_list(
        "pk", flat=True
    ):
        try:
            perform_action(pk, machine.Action.REACTIVATE, note="Reactivated by an API request.", now=now)
        except machine.IllegalTransition:
            pass
        Integration.objects.filter(pk=pk).update(deactivated_for_inactivity=False)
        reactivated.append(pk)
    return reactivated
