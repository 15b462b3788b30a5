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

from audit import services as audit
from audit.models import AuditRecord
from integrations import status as machine
from integrations.models import AccountMapping, Integration, IntegrationEvent, SyncSession, Tenant
from integrations.services import perform_action, record_event
from integrations.sync.starting import SyncRefused, start_sync
from integrations.words import counted


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
        verb = "needs" if state.unmapped == 1 else "need"
        return f"Mapping saved; {counted(state.unmapped, 'vendor account')} still {verb} a target or to be ignored."
    if integration.first_sync_finished_at is None and not integration.sessions.exists():
        try:
            trigger = SyncSession.Trigger.STAFF if actor is not None and actor.is_staff else SyncSession.Trigger.CUSTOMER
            start_sync(integration, kind=SyncSession.Kind.FULL, trigger=trigger, requested_by=actor)
        except SyncRefused as exc:
            return f"Mapping complete, but the first sync could not start: {exc.message}"
        return "Mapping complete: the first sync has started."
    return "Mapping saved."


def set_new_account_choice(tenant, choice, *, actor=None):
    """The tenant's choice for vendor accounts found after setup (Tenant.NewVendorAccounts); recorded when it changes."""
    if choice not in Tenant.NewVendorAccounts.values:
        raise ValueError(f"Unknown choice {choice!r}.")
    with transaction.atomic():
        locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
        if locked.new_vendor_accounts == choice:
            return False
        before = locked.new_vendor_accounts
        Tenant.objects.filter(pk=tenant.pk).update(new_vendor_accounts=choice)
        audit.record(
            AuditRecord.Action.CUSTOMER_ACTION,
            tenant=tenant,
            target=tenant.name,
            actor=actor,
            changes={"new_vendor_accounts": [before, choice]},
        )
    tenant.new_vendor_accounts = choice
    return True


def new_account_issues(integration):
    """{vendor account id: open NEW_VENDOR_ACCOUNT issue} for the mapping page."""
    from issues.models import SyncIssue

    issues = SyncIssue.objects.filter(integration=integration, state=SyncIssue.State.OPEN, error_code_id="NEW_VENDOR_ACCOUNT")
    return {issue.details.get("vendor_account_id"): issue for issue in issues.only("details", "first_seen_at")}
