"""Changing help requests: opening one, replies, internal notes, state and assignee.

Who may: a member of the request's tenant opens a request and answers it
(the portal finds the request through the member's integrations; viewers
too, since asking and answering change nothing of the integration); staff
with `issues.change_supportrequest` (the Support and Engineering groups)
reply, add notes, change the state and the assignee, checked here so that no
caller can forget. Every change is an audit record. Emails go after commit
(`emails`), so a message is saved whatever becomes of its email.

What follows each change:

- support's reply: waiting on customer, unless support chose another state
  (or "unchanged"); a request nobody was assigned to is assigned to whoever
  replied;
- the customer's answer: in progress, or new while nobody is assigned; a
  resolved request takes no answer (the customer asks again, a new request);
- an internal note: nothing but the thread; it is never shown to the
  customer and never emailed.
"""

from functools import partial

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from audit import services as audit
from audit.models import AuditRecord
from issues.models import SupportMessage, SupportRequest
from issues.support import emails

State = SupportRequest.State
CHANGE_PERMISSION = "issues.change_supportrequest"
MAX_BODY = 4000
UNCHANGED = object()


class Refused(Exception):
    """A change that is not made; `message` tells the person why, `status` is the HTTP answer."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.message = message
        self.status = status


def require_staff(actor):
    if not (actor.is_active and actor.is_staff and actor.has_perm(CHANGE_PERMISSION)):
        raise PermissionDenied(
            "Replying to help requests and changing them needs the permission "
            "“Can change help request” (the Support and Engineering groups have it)."
        )


def clean_body(body, what):
    body = (body or "").strip()
    if not body:
        raise Refused(f"The {what} is empty; write it first. Nothing was saved.")
    if len(body) > MAX_BODY:
        raise Refused(f"The {what} has {len(body)} characters; at most {MAX_BODY} fit. Nothing was saved.")
    return body


def open_request(integration, user, message, *, issue=None, history=(), facts=()):
    """A customer's new request about `integration` (and `issue`, if one); support is told after commit."""
    message = clean_body(message, "message")
    if issue is not None and issue.integration_id != integration.pk:
        raise ValueError("The issue belongs to another integration.")
    with transaction.atomic():
        request = SupportRequest.objects.create(
            integration=integration, issue=issue, user=user, message=message, history=list(history), facts=list(facts)
        )
        opened = {"opened": issue.error_code_id if issue else "integration"}
        _audit(request, user, AuditRecord.Action.CUSTOMER_ACTION, opened)
        transaction.on_commit(partial(emails.tell_support_of_request, request.pk))
    return request


def reply(request_id, *, author, body, then_state=State.WAITING_ON_CUSTOMER, now=None):
    """Support's reply, emailed to the customer who asked; `then_state` None leaves the state as it is."""
    require_staff(author)
    body = clean_body(body, "reply")
    if then_state is not None and then_state not in State.values:
        raise Refused(f"There is no state {then_state!r}; choose one of {', '.join(State.labels)}.")
    with transaction.atomic():
        request = _locked(request_id)
        message = _add(request, SupportMessage.Kind.REPLY, author, body, from_support=True, now=now)
        changes = _apply(request, state=then_state, assignee=UNCHANGED if request.assignee_id else author)
        _audit(request, author, AuditRecord.Action.STAFF_ACTION, {"reply": message.pk, **changes})
        transaction.on_commit(partial(emails.send_reply_to_customer, message.pk))
    return message


def add_note(request_id, *, author, body, now=None):
    """An internal note: for support only, never shown or emailed to the customer."""
    require_staff(author)
    body = clean_body(body, "note")
    with transaction.atomic():
        request = _locked(request_id)
        message = _add(request, SupportMessage.Kind.NOTE, author, body, from_support=True, now=now)
        request.save(update_fields=["updated_at"])
        _audit(request, author, AuditRecord.Action.STAFF_ACTION, {"note": message.pk})
    return message


def update(request_id, *, actor, state=None, assignee=UNCHANGED):
    """Change the state and/or the assignee (a user or None); returns what changed ({} for nothing)."""
    require_staff(actor)
    if state is not None and state not in State.values:
        raise Refused(f"There is no state {state!r}; choose one of {', '.join(State.labels)}.")
    if assignee not in (UNCHANGED, None) and not (assignee.is_staff and assignee.is_active):
        raise Refused(f"{assignee.get_username()} is not an active staff member; requests are assigned to staff.")
    with transaction.atomic():
        request = _locked(request_id)
        changes = _apply(request, state=state, assignee=assignee)
        if changes:
            _audit(request, actor, AuditRecord.Action.STAFF_ACTION, changes)
    return changes


def answer(request_id, *, author, body, now=None):
    """The customer's answer: support is told after commit; refused on a resolved request (409)."""
    body = clean_body(body, "answer")
    with transaction.atomic():
        request = _locked(request_id)
        if request.state == State.RESOLVED:
            raise Refused(
                f"Request {request.pk} was resolved on {request.updated_at:%Y-%m-%d}; it takes no more answers. "
                "If the problem is back, ask for help again. Your answer was not sent.",
                status=409,
            )
        message = _add(request, SupportMessage.Kind.REPLY, author, body, from_support=False, now=now)
        changes = _apply(request, state=State.IN_PROGRESS if request.assignee_id else State.NEW)
        _audit(request, author, AuditRecord.Action.CUSTOMER_ACTION, {"answer": message.pk, **changes})
        transaction.on_commit(partial(emails.tell_support_of_answer, message.pk))
    return message


def send_again(message_id, *, actor):
    """Email a reply to the customer once more (after its email failed)."""
    require_staff(actor)
    message = SupportMessage.objects.select_related("request").filter(pk=message_id).first()
    if message is None or message.kind != SupportMessage.Kind.REPLY or not message.from_support:
        raise Refused("Only support's replies are emailed to the customer.", status=404)
    with transaction.atomic():
        _audit(message.request, actor, AuditRecord.Action.STAFF_ACTION, {"emailed again": message.pk})
        transaction.on_commit(partial(emails.send_reply_to_customer, message.pk))
    return message


# -- inside the transaction ----------------------------------------------------------


def _locked(request_id):
    # Only the request's row is locked: the assignee is an outer join PostgreSQL cannot lock.
    request = (
        SupportRequest.objects.select_for_update(of=("self",))
        .select_related("integration", "assignee")
        .filter(pk=request_id)
        .first()
    )
    if request is None:
        raise Refused("There is no such help request.", status=404)
    return request


def _add(request, kind, author, body, *, from_support, now):
    return SupportMessage.objects.create(
        request=request,
        kind=kind,
        author=author,
        from_support=from_support,
        body=body,
        created_at=now or timezone.now(),
    )


def _apply(request, *, state=None, assignee=UNCHANGED):
    """Set what differs and save the request (its updated_at says when it last moved); {field: [before, after]}."""
    changes = {}
    if state is not None and state != request.state:
        changes["state"] = [request.state, state]
        request.state = state
    if assignee is not UNCHANGED and getattr(assignee, "pk", None) != request.assignee_id:
        changes["assignee"] = [_name(request.assignee), _name(assignee)]
        request.assignee = assignee
    request.save(update_fields=["state", "assignee", "updated_at"])
    return changes


def _name(user):
    return user.get_username() if user is not None else None


def _audit(request, actor, action, changes):
    target = f"help request {request.pk}"
    audit.record(action, tenant=request.integration.tenant_id, actor=actor, target=target, changes=changes)
