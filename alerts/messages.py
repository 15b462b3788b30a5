"""The alert emails themselves: who gets which copy, their headers, their links.

Every link is built here, from SITE_URL, when the email is sent; the alert
keeps only what the email says. Who receives it is decided here too, among
the addresses the alert was raised for: those still on the tenant's alert
list, support and engineering, and the members who still receive alerts (a
member who opted out since is left out).

Each kind of reader gets a copy of their own, so nobody sees the others'
addresses and each copy can say why it came:
- the tenant's alert list: one copy to those addresses, no List-Unsubscribe
  (see `alerts.unsubscribe`), a footer saying how to change the list;
- each member: a copy with a one-click List-Unsubscribe (RFC 8058) for
  that member only, and the same link in the footer;
- support and engineering: one copy, no footer.
All carry Reply-To: SUPPORT_EMAIL and Auto-Submitted: auto-generated
(RFC 3834: auto-responders do not answer them).
"""

from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from alerts import unsubscribe
from integrations.models import Membership, Tenant

AUTO_SUBMITTED = {"Auto-Submitted": "auto-generated"}


@dataclass
class Copy:
    """One email of a send: its addresses, and the member it is for (member copies only)."""

    to: list
    kind: str  # "list", "member" or "staff"
    membership: Membership | None = None

    @property
    def unsubscribe_url(self):
        return unsubscribe.url_for(self.membership) if self.membership else ""


def copies_for(tenant_id, recipients):
    """The copies to send for alerts raised for `recipients`, as things stand now (two queries)."""
    listed = {a.lower() for a in Tenant.objects.get(pk=tenant_id).alert_email_list()}
    staff = {settings.SUPPORT_EMAIL.lower(), settings.ENGINEERING_EMAIL.lower()}
    members = {}
    for membership in Membership.objects.filter(
        tenant_id=tenant_id, receives_alerts=True, user__email__in=recipients
    ).select_related("user"):
        members.setdefault(membership.user.email.lower(), membership)
    to_list, to_staff, copies = [], [], []
    for address in sorted(set(recipients)):
        key = address.lower()
        if key in listed:
            to_list.append(address)
        elif key in members:
            copies.append(Copy([address], "member", members[key]))
        elif key in staff:
            to_staff.append(address)
        # else: no longer on any list (opted out, removed) since the alert was raised.
    if to_list:
        copies.insert(0, Copy(to_list, "list"))
    if to_staff:
        copies.append(Copy(to_staff, "staff"))
    return copies


def portal_url(integration_id):
    return settings.SITE_URL + reverse("portal:general", args=[integration_id])


def render(alerts, reauth_urls=None, copy=None):
    """(subject, text, html) for one alert or a digest of several, for one copy.

    `reauth_urls` maps alert ids to the links made for this send.
    """
    reauth_urls = reauth_urls or {}
    footer = {
        "copy_kind": copy.kind if copy else "staff",
        "unsubscribe_url": copy.unsubscribe_url if copy else "",
        "support_email": settings.SUPPORT_EMAIL,
        "site_url": settings.SITE_URL,
    }

    def links(alert):
        return {
            **alert.context,
            "reauth_url": reauth_urls.get(alert.pk, ""),
            "portal_url": portal_url(alert.integration_id),
        }

    if len(alerts) == 1:
        context = {**links(alerts[0]), **footer}
        return (
            alerts[0].subject,
            render_to_string("alerts/email.txt", context),
            render_to_string("alerts/email.html", context),
        )
    tenant = alerts[0].context.get("tenant", "")
    context = {"alerts": [links(a) for a in alerts], "tenant": tenant, **footer}
    return (
        f"[SyncConsole] {len(alerts)} alerts for {tenant}",
        render_to_string("alerts/digest.txt", context),
        render_to_string("alerts/digest.html", context),
    )


def one_line(text):
    """Header values never carry CR or LF (Django refuses them with BadHeaderError)."""
    return " ".join(str(text).split())


def email(subject, text, html, to, *, unsubscribe_url=""):
    """An alert email with the headers every alert email carries."""
    headers = dict(AUTO_SUBMITTED)
    if unsubscribe_url:
        headers["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message = EmailMultiAlternatives(
        one_line(subject), text, settings.DEFAULT_FROM_EMAIL, to, reply_to=[settings.SUPPORT_EMAIL], headers=headers
    )
    message.attach_alternative(html, "text/html")
    return message


def build(alerts, copies, reauth_urls):
    """One email per copy."""
    messages = []
    for copy in copies:
        subject, text, html = render(alerts, reauth_urls, copy)
        messages.append(email(subject, text, html, copy.to, unsubscribe_url=copy.unsubscribe_url))
    return messages
