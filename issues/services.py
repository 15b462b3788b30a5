"""Changes to issues that people make: resolving or ignoring them, asking for help."""

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from issues import counts
from issues.models import SupportRequest, SyncIssue

CLOSED_STATES = (SyncIssue.State.RESOLVED, SyncIssue.State.IGNORED)


def close_issues(queryset, state, *, actor, note, now=None):
    """Resolve or ignore the open issues among `queryset`; how many changed.

    Issues already closed are left alone. Each integration's open-issue count
    goes down by the rows its update changed, in the same transaction.
    """
    if state not in CLOSED_STATES:
        raise ValueError(f"Issues are closed as resolved or ignored, not {state!r}.")
    now = now or timezone.now()
    open_issues = queryset.filter(state=SyncIssue.State.OPEN).order_by()
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


def request_help(issue, user, message, *, history, tenant_name):
    """Record a customer's request for help on an issue and tell support (after commit).

    `history` is the integration's recent sessions, kept with the request so
    support sees what the customer saw.
    """
    with transaction.atomic():
        support_request = SupportRequest.objects.create(issue=issue, user=user, message=message, history=history)
    admin_url = settings.SITE_URL + reverse("admin:issues_supportrequest_change", args=[support_request.pk])
    who = f"{user.get_full_name() or user.get_username()} <{user.email}>"
    transaction.on_commit(
        lambda: send_mail(
            f"[SyncConsole] Help requested: {issue.error_code_id} on {issue.integration}",
            f"{who} of {tenant_name} asks for help with issue {issue.pk} "
            f"({issue.error_code_id}: {issue.item_label or issue.external_id}).\n\n"
            f"{support_request.message}\n\nOpen it: {admin_url}\n",
            None,
            [settings.SUPPORT_EMAIL],
        )
    )
    return support_request
