"""Account mapping: one selector for its state, one service for every way a person changes it.

An integration whose discovered vendor accounts are not all mapped (to a
tenant account) or ignored is in setup, and every sync is refused. Whatever
changes the mapping — the portal's page, the admin's inline or its
AccountMapping form, a command — ends in `apply_completeness`, which keeps
`Integration.mapping_complete` equal to what the rows say, records the
change on the timeline, and queues the first sync when setup just completed.
"""

from dataclasses import dataclass

from django.db import transaction

from integrations import status as machine
from integrations.models import AccountMapping, Integration, IntegrationEvent, SyncSession
from integrations.services import perform_action, record_event
from integrations.sync.starting import SyncRefused, start_sync


@dataclass(frozen=True)
class MappingState:
    total: int
    unmapped: int

    @property
    def complete(self):
        return self.total > 0 and self.unmapped == 0


def mapping_state(integration):
    """How many vendor accounts there are and how many still need a target or to be ignored."""
    mappings = list(AccountMapping.objects.filter(integration=integration).only("tenant_account", "ignored"))
    return MappingState(total=len(mappings), unmapped=sum(1 for m in mappings if not m.is_mapped))


def save_mapping(integration, choices, *, actor=None):
    """Apply a person's mapping ({mapping id: (tenant account, ignored)}) and its consequences.

    Ids of other integrations' mappings are ignored. Returns a sentence saying what happened.
    """
    with transaction.atomic():
        mappings = {m.pk: m for m in AccountMapping.objects.select_for_update().filter(integration=integration)}
        for pk, (target, ignored) in choices.items():
            mapping = mappings.get(pk)
            if mapping is None:
                continue
            mapping.tenant_account = "" if ignored else target[:200]
            mapping.ignored = ignored
            mapping.save(update_fields=["tenant_account", "ignored"])
    return apply_completeness(integration, actor=actor)


def apply_completeness(integration, *, actor=None):
    """Make the integration's completeness agree with its mapping rows; queue the first sync when it just completed.

    Called after any change to the rows. Returns a sentence saying what happened.
    """
    with transaction.atomic():
        locked = Integration.objects.select_for_update().get(pk=integration.pk)
        state = mapping_state(locked)
        if state.complete and not locked.mapping_complete:
            perform_action(locked.pk, machine.Action.MAPPING_COMPLETED, actor=actor, note="Every vendor account mapped or ignored.")
        elif not state.complete and locked.mapping_complete:
            perform_action(locked.pk, machine.Action.MAPPING_INCOMPLETE, actor=actor, note="A vendor account is no longer mapped.")
        else:
            record_event(locked, IntegrationEvent.Kind.MAPPING_CHANGED, actor=actor, note="Account mapping edited.")
    integration.refresh_from_db()
    if not state.complete:
        return f"Mapping saved; {state.unmapped} vendor account(s) still need a target or to be ignored."
    if integration.first_sync_finished_at is None and not integration.sessions.exists():
        try:
            trigger = SyncSession.Trigger.STAFF if actor is not None and actor.is_staff else SyncSession.Trigger.CUSTOMER
            start_sync(integration, kind=SyncSession.Kind.FULL, trigger=trigger, requested_by=actor)
        except SyncRefused as exc:
            return f"Mapping complete, but the first sync could not start: {exc.message}"
        return "Mapping complete: the first sync has started."
    return "Mapping saved."
