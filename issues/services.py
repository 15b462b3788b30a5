"""Changes to issues that people make: resolving, ignoring and reopening them (help requests: issues/support/).

Who may: staff with `issues.resolve_syncissue` (the Support and Engineering
groups). The one-issue changes of the issue page check it here, so that no
caller can forget, and write their audit record in the transaction that
changes the issue. The integration's open-issue count moves in that
transaction too (`issues.counts`: the integration row locked first).
"""

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit import services as audit
from audit.models import AuditRecord
from issues import counts
from issues.models import SyncIssue

State = SyncIssue.State
CLOSED_STATES = (State.RESOLVED, State.IGNORED)
RESOLVE_PERMISSION = "issues.resolve_syncissue"
MAX_NOTE = 500


class Refused(Exception):
    """A change that is not made; `message` tells the person why, `status` is the HTTP answer."""

    def __init__(self, message, status=409):
        super().__init__(message)
        self.message = message
        self.status = status


def close_issues(queryset, state, *, actor, note, now=None):
    """Resolve or ignore the open issues among `queryset`; how many changed.

    Issues already closed are left alone. Each integration's open-issue count
    goes down by the rows its update changed, in the same transaction.
    """
    if state not in CLOSED_STATES:
        raise ValueError(f"Issues are closed as resolved or ignored, not {state!r}.")
    now = now or timezone.now()
    open_issues = queryset.filter(state=State.OPEN).order_by()
    changed = 0
    with transaction.atomic():
        integration_ids = sorted(set(open_issues.values_list("integration_id", flat=True).distinct()))
        counts.lock(integration_ids)
        for integration_id in integration_ids:
            n = open_issues.filter(integration_id=integration_id).update(
                state=state, resolved_by=actor, resolved_at=now, resolution_note=note
            )
            counts.move(integration_id, -n)
            changed += n
    return changed


def require_resolver(actor):
    if not (actor.is_active and actor.is_staff and actor.has_perm(RESOLVE_PERMISSION)):
        raise PermissionDenied(
            "Resolving, ignoring and reopening issues needs the permission "
            "“Can resolve and ignore issues” (the Support and Engineering groups have it)."
        )


def clean_note(note):
    note = (note or "").strip()
    if not note:
        raise Refused("Say why in the note; nothing was changed.", status=400)
    if len(note) > MAX_NOTE:
        raise Refused(f"The note has {len(note)} characters; at most {MAX_NOTE} fit. Nothing was changed.", status=400)
    return note


def close_issue(issue_id, state, *, actor, note, now=None):
    """Resolve or ignore one open issue (the issue page); the issue as it is now.

    Refused (409) when it is not open any more: someone or a sync closed it first.
    """
    require_resolver(actor)
    note = clean_note(note)
    with transaction.atomic():
        changed = close_issues(SyncIssue.objects.filter(pk=issue_id), state, actor=actor, note=note, now=now)
        issue = SyncIssue.objects.select_related("error_code").get(pk=issue_id)
        if not changed:
            raise Refused(f"This issue is {issue.get_state_display().lower()} already; nothing was changed.")
        _audit(issue, actor, {"state": [State.OPEN, state], "note": note})
    return issue


def open_twin(issue):
    """The other open issue of the same item and code, if there is one (it keeps this one from reopening)."""
    return (
        SyncIssue.objects.filter(
            integration_id=issue.integration_id,
            item_type=issue.item_type,
            external_id=issue.external_id,
            error_code_id=issue.error_code_id,
            state=State.OPEN,
        )
        .exclude(pk=issue.pk)
        .only("pk")
        .first()
    )


def twin_refusal(twin):
    return (
        f"Issue {twin.pk} is open for the same item and code; an item has one open issue per code, "
        "so this one cannot be reopened. Nothing was changed."
    )


def reopen_issue(issue_id, *, actor, note, now=None):
    """Open a resolved or ignored issue again; the issue as it is now.

    Refused (409) when it is open already, or when another open issue holds
    its item and code (the constraint `one_open_issue_per_item_and_code`).
    Every writer of open issues locks the integration row first, so the check
    made under that lock holds until the update; the constraint stays the
    last word.
    """
    require_resolver(actor)
    note = clean_note(note)
    with transaction.atomic():
        integration_id = SyncIssue.objects.filter(pk=issue_id).values_list("integration_id", flat=True).first()
        if integration_id is None:
            raise SyncIssue.DoesNotExist(f"There is no issue {issue_id}.")
        counts.lock([integration_id])
        issue = SyncIssue.objects.select_related("error_code").get(pk=issue_id)
        if issue.state == State.OPEN:
            raise Refused("This issue is open already; nothing was changed.")
        twin = open_twin(issue)
        if twin is not None:
            raise Refused(twin_refusal(twin))
        before = issue.state
        try:
            with transaction.atomic():
                changed = SyncIssue.objects.filter(pk=issue.pk, state=before).update(
                    state=State.OPEN, resolved_by=None, resolved_at=None, resolution_note=""
                )
        except IntegrityError:
            raise Refused(twin_refusal(open_twin(issue) or issue)) from None
        counts.move(integration_id, changed)
        _audit(issue, actor, {"state": [before, State.OPEN], "note": note, "closing_note": issue.resolution_note[:500]})
        issue.refresh_from_db()
    return issue


def _audit(issue, actor, changes):
    label = issue.item_label or issue.external_id or "the whole sync"
    audit.record(
        AuditRecord.Action.STAFF_ACTION,
        tenant=issue.tenant_id,
        actor=actor,
        target=f"Issue {issue.pk}: {issue.error_code_id} on {label}",
        changes=changes,
    )
