"""Changes to issues that people make: asking for help."""

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse

from issues.models import SupportRequest


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
