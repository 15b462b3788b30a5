"""A tenant admin's say over an integration's schedule: pause, resume, and the sync interval within bounds.

Staff set the bounds per tenant (`Tenant.min_sync_interval_minutes`,
`max_sync_interval_minutes`, in the console) and may pause any integration
or give it any interval from its page; a tenant admin acts in the portal
(portal/views_controls.py) within those bounds. Pause and resume are the
staff's own `services.set_paused`, with the customer as the actor; a pause
by support is lifted by support only. Each change is checked against the
member's tenant and role under the integration's row lock, and written on
the timeline and in the audit trail in the same transaction. A refusal
changes nothing and says why, with the HTTP status it answers.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from audit import services as audit
from audit.models import AuditRecord
from integrations import services
from integrations import status as machine
from integrations.models import Integration, IntegrationEvent, Membership
from integrations.sync.finishing import next_sync_at
from integrations.words import duration_words


class Refused(Exception):
    """A change refused: `message` for the person, `status` the HTTP answer.

    400 wrong input, 403 not theirs to change, 404 not an integration of
    theirs, 409 not possible in its state.
    """

    def __init__(self, message, status):
        super().__init__(message)
        self.message = message
        self.status = status


def interval_bounds(tenant):
    """(shortest, longest) interval, in minutes, the tenant's admins may choose."""
    return tenant.min_sync_interval_minutes, tenant.max_sync_interval_minutes


def interval_words(minutes):
    return duration_words(timedelta(minutes=minutes), parts=3)


@dataclass(frozen=True)
class Schedule:
    """What the General tab shows of the schedule and offers to change (no query: the tenant is loaded)."""

    every: str  # "1 hour"
    minutes: int
    shortest: int
    longest: int
    shortest_words: str
    longest_words: str
    paused: bool
    paused_by_customer: bool
    paused_reason: str
    switched_off: bool


def schedule_of(integration):
    low, high = interval_bounds(integration.tenant)
    return Schedule(
        every=duration_words(integration.sync_interval, parts=3),
        minutes=int(integration.sync_interval.total_seconds() // 60),
        shortest=low,
        longest=high,
        shortest_words=interval_words(low),
        longest_words=interval_words(high),
        paused=integration.paused,
        paused_by_customer=integration.paused_by_customer,
        paused_reason=integration.paused_reason,
        switched_off=integration.deactivated_at is not None,
    )


def may_change(membership):
    return membership is not None and membership.role == Membership.Role.ADMIN


def check_may_change(membership, integration):
    """Refused (403) unless the member is an admin of the integration's tenant.

    The web checks it before reading the form: a viewer's input is not read.
    """
    if not may_change(membership):
        raise Refused(
            f"Only admins of {membership.tenant.name} can change the schedule of {integration.name}. "
            "Ask one of them; nothing was changed.",
            403,
        )


def _locked(integration_id, membership):
    """The integration of the member's tenant, row-locked, that a tenant admin may change now."""
    integration = Integration.objects.select_for_update().filter(pk=integration_id).first()
    if integration is None or membership is None or integration.tenant_id != membership.tenant_id:
        raise Refused("No such integration.", 404)
    if integration.deleted_at is not None:
        raise Refused("No such integration.", 404)
    integration.tenant = membership.tenant  # the same row; names the integration without a query
    check_may_change(membership, integration)
    if integration.deactivated_at is not None:
        raise Refused(
            f"{integration.name} is switched off, so it has no schedule to change. "
            "Reactivate it first (or ask our support team); nothing was changed.",
            409,
        )
    return integration


def _audit(integration, actor, action, message, now, **changes):
    audit.record(
        AuditRecord.Action.CUSTOMER_ACTION,
        tenant=integration.tenant_id,
        target=str(integration),
        actor=actor,
        changes={"integration_id": integration.pk, "action": action, "message": message, **changes},
        now=now,
    )


def pause(integration_id, *, membership, actor, now=None):
    """Hold back scheduled syncs until a tenant admin (or support) resumes them."""
    now = now or timezone.now()
    with transaction.atomic():
        integration = _locked(integration_id, membership)
        if integration.paused:
            raise Refused(f"Syncs of {integration.name} are already paused; nothing was changed.", 409)
        reason = f"by {membership.tenant.name}'s admin {actor.get_username()} in the portal"
        services.set_paused(integration.pk, True, actor=actor, reason=reason, now=now)
        _audit(integration, actor, "pause", f"Paused the scheduled syncs of {integration.name}", now)
    return f"Scheduled syncs of {integration.name} are paused. Resume them here when you are ready."


def resume(integration_id, *, membership, actor, now=None):
    """Lift a pause a tenant admin made; support's pauses stay until support lifts them."""
    now = now or timezone.now()
    with transaction.atomic():
        integration = _locked(integration_id, membership)
        if not integration.paused:
            raise Refused(f"Syncs of {integration.name} are not paused; nothing was changed.", 409)
        if not integration.paused_by_customer:
            raise Refused(
                f"Our support team paused {integration.name} "
                f"({integration.paused_reason or 'no reason given'}). "
                "Contact support to resume it; nothing was changed.",
                409,
            )
        try:
            services.set_paused(integration.pk, False, actor=actor, now=now)
        except machine.IllegalTransition as exc:  # pragma: no cover - checked above under the same lock
            raise Refused(str(exc), 409) from exc
        _audit(integration, actor, "resume", f"Resumed the scheduled syncs of {integration.name}", now)
    return f"Scheduled syncs of {integration.name} are running again."


def set_interval(integration_id, minutes, *, membership, actor, now=None):
    """Sync every `minutes` (an int within the tenant's bounds); the next scheduled sync follows at once.

    The next sync is counted from the last one's end, as the engine counts it
    (`next_sync_at`: backed off while failing, with jitter), and is never in
    the past; an integration without a next sync (setup, never run) keeps none.
    Returns the sentence to show; the same interval again changes nothing.
    """
    now = now or timezone.now()
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        raise Refused("Give the interval as a whole number of minutes; nothing was changed.", 400)
    with transaction.atomic():
        integration = _locked(integration_id, membership)
        low, high = interval_bounds(membership.tenant)
        if not low <= minutes <= high:
            raise Refused(
                f"Choose an interval from {interval_words(low)} to {interval_words(high)}: "
                f"{interval_words(minutes) if minutes > 0 else f'{minutes} minutes'} is outside what "
                f"{membership.tenant.name} may choose. Nothing was changed.",
                400,
            )
        before, after = integration.sync_interval, timedelta(minutes=minutes)
        if before == after:
            return f"{integration.name} already syncs every {interval_words(minutes)}; nothing was changed."
        integration.sync_interval = after
        if integration.next_sync_at is not None:
            since = integration.last_outcome_at or now
            following = next_sync_at(integration, services.facts_of(integration), since)
            integration.next_sync_at = max(now, following)
        integration.save(update_fields=["sync_interval", "next_sync_at"])
        change = f"every {duration_words(before, parts=3)} \u2192 every {interval_words(minutes)}"
        IntegrationEvent.objects.create(
            integration=integration,
            kind=IntegrationEvent.Kind.INTERVAL_CHANGED,
            actor=actor,
            from_status=integration.status,
            to_status=integration.status,
            note=f"Sync interval: {change}.",
            created_at=now,
            data={"from_seconds": int(before.total_seconds()), "to_seconds": minutes * 60},
        )
        _audit(
            integration,
            actor,
            "set_interval",
            f"Sync interval of {integration.name}: {change}",
            now,
            from_minutes=int(before.total_seconds() // 60),
            to_minutes=minutes,
        )
    return f"{integration.name} now syncs every {interval_words(minutes)}."
