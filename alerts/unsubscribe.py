"""One-click opt-out of alert emails for a tenant's members (RFC 8058 List-Unsubscribe).

Each member's copy of an alert email carries a URL whose token is signed
(django.core.signing, salted for this use only) and names the membership and
its user: no login is needed, and a token for another membership cannot be
made without SECRET_KEY. A POST to the URL turns off that member's alert
emails and writes an audit record; a GET only shows a page with a button, so
mail scanners that open every link unsubscribe nobody.

Addresses on the tenant's alert list (`Tenant.alert_emails`) are not members:
they are a team's shared mailboxes, set in the console on the tenant's
request, and one click by anyone who reads that mailbox must not silence it
for everyone. Their emails carry no List-Unsubscribe and say how to change
the list instead (reply: the answer reaches support).
"""

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse

from audit import services as audit
from audit.models import AuditRecord
from integrations.models import Membership

SALT = "alerts.unsubscribe"


class BadToken(Exception):
    """The token was altered, or names a membership that is gone or now belongs to someone else."""


def token_for(membership):
    return signing.dumps({"m": membership.pk, "u": membership.user_id}, salt=SALT)


def url_for(membership):
    """The one-click URL, built from SITE_URL when the email is sent."""
    return settings.SITE_URL + reverse("alerts:unsubscribe", args=[token_for(membership)])


def membership_for(token):
    try:
        data = signing.loads(token, salt=SALT)
    except signing.BadSignature as exc:
        raise BadToken("This unsubscribe link is not valid.") from exc
    if not isinstance(data, dict):
        raise BadToken("This unsubscribe link is not valid.")
    membership = (
        Membership.objects.select_related("user", "tenant").filter(pk=data.get("m"), user_id=data.get("u")).first()
    )
    if membership is None:
        raise BadToken("This unsubscribe link no longer names a member of any tenant.")
    return membership


def opt_out(membership, *, via):
    """Turn off the member's alert emails; recorded in the audit trail. Returns False if they were already off."""
    with transaction.atomic():
        changed = Membership.objects.filter(pk=membership.pk, receives_alerts=True).update(receives_alerts=False)
        if changed:
            audit.record(
                AuditRecord.Action.CUSTOMER_ACTION,
                tenant=membership.tenant_id,
                target=f"membership {membership.pk} ({membership.user.email})",
                changes={"receives_alerts": [True, False], "via": via},
                actor=membership.user,
                actor_label=f"{membership.user.get_username()} (unsubscribe link in an alert email)",
            )
    membership.receives_alerts = False
    return bool(changed)
