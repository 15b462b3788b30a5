"""Alert email headers on real received messages, and the members' one-click unsubscribe (RFC 8058)."""

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import transaction
from django.test import Client
from django.utils import timezone

from alerts import delivery, rules
from alerts.models import Alert
from alerts.unsubscribe import token_for
from audit.models import AuditRecord
from integrations.models import Integration, Membership, ReauthLink
from tests.factories import IntegrationFactory

live = pytest.mark.django_db(transaction=True)
R = Alert.Rule
URL_RE = re.compile(r"https?://[^\s<>\"']+")
HEADER_URL_RE = re.compile(r"^<(https?://[^>]+)>$")


@pytest.fixture
def team(alert_tenant, member, error_catalog):
    """A tenant with an alert address, two members who receive alerts and one who does not."""
    tenant = alert_tenant(name="Acme")
    ann = member(tenant, receives_alerts=True)
    bob = member(tenant, receives_alerts=True)
    member(tenant, receives_alerts=False)
    integration = IntegrationFactory(
        tenant=tenant, name="Acme Tickets", status=Integration.Status.AUTH_FAILING, consecutive_unsuccessful=1
    )
    return tenant, ann, bob, integration


def raise_alert(integration, rule, at=None, **kwargs):
    at = at or timezone.now()
    with transaction.atomic():
        (alert,) = rules.raise_alerts(
            [rules.build(integration, rule, at.isoformat(), at, recipients=rules.tenant_recipients(integration.tenant), **kwargs)]
        )
    alert.refresh_from_db()
    return alert


def unsubscribe_url(message):
    match = HEADER_URL_RE.match(str(message.email["List-Unsubscribe"]).strip())  # a long header may be folded
    assert match, message.email["List-Unsubscribe"]
    return match.group(1)


def site_path(url):
    assert url.startswith(settings.SITE_URL + "/alerts/unsubscribe/"), url
    return url[len(settings.SITE_URL) :]


@live
def test_every_copy_carries_reply_to_and_auto_submitted_and_only_members_get_list_unsubscribe(team, smtp_server):
    tenant, ann, bob, integration = team
    alert = raise_alert(integration, R.AUTH_FAILING, reauth=True)
    assert alert.state == Alert.State.SENT

    # One copy for the tenant's alert list, one per member who receives alerts.
    assert sorted(m.rcpt_tos[0] for m in smtp_server.messages) == sorted([tenant.alert_emails, ann.email, bob.email])
    assert all(len(m.rcpt_tos) == 1 for m in smtp_server.messages)
    for message in smtp_server.messages:
        assert str(message.email["Reply-To"]) == settings.SUPPORT_EMAIL
        assert str(message.email["Auto-Submitted"]) == "auto-generated"
        assert message.subject == "[SyncConsole] Re-authentication needed: Acme Tickets"

    (listed,) = smtp_server.to(tenant.alert_emails)
    assert listed.email["List-Unsubscribe"] is None and listed.email["List-Unsubscribe-Post"] is None
    assert "alert list of Acme" in listed.text and "reply to this email" in listed.text

    urls = {}
    for person in (ann, bob):
        (copy,) = smtp_server.to(person.email)
        assert str(copy.email["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
        urls[person.pk] = unsubscribe_url(copy)
        assert urls[person.pk].startswith(settings.SITE_URL + "/alerts/unsubscribe/")
        # The footer offers the same link, in both parts.
        assert URL_RE.findall(copy.text)[-1] == urls[person.pk]
        assert f'href="{urls[person.pk]}"' in copy.html
    assert urls[ann.pk] != urls[bob.pk]

    # One re-authentication link for the alert, the same in every copy.
    reauth_urls = {URL_RE.findall(m.text)[0] for m in smtp_server.messages}
    assert len(reauth_urls) == 1 and reauth_urls.pop().startswith(settings.SITE_URL + "/reauth/")
    assert ReauthLink.objects.filter(integration=integration).count() == 1


@live
def test_one_click_post_unsubscribes_exactly_that_member_and_get_only_asks(team, smtp_server):
    tenant, ann, bob, integration = team
    raise_alert(integration, R.AUTH_FAILING, reauth=True)
    url = unsubscribe_url(smtp_server.to(ann.email)[0])
    browser = Client(enforce_csrf_checks=True)  # a mail provider: no session, no CSRF token

    # A GET (a link scanner, or the person opening the link) changes nothing: it shows a button.
    page = browser.get(site_path(url))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Stop alert emails?" in html and '<form method="post">' in html and ann.email in html
    assert Membership.objects.get(user=ann).receives_alerts is True
    assert not AuditRecord.objects.exists()

    # A tampered token is refused and changes nothing.
    path = site_path(url)
    token = path.rstrip("/").rsplit("/", 1)[1]
    tampered = path.replace(token, token[:-1] + ("A" if token[-1] != "A" else "B"))
    refused = browser.post(tampered, {"List-Unsubscribe": "One-Click"})
    assert refused.status_code == 400
    assert "This link is not valid" in refused.content.decode()
    assert list(Membership.objects.filter(tenant=tenant).order_by("pk").values_list("receives_alerts", flat=True)) == [
        True,
        True,
        False,
    ]
    assert not AuditRecord.objects.exists()

    # RFC 8058: the provider POSTs "List-Unsubscribe=One-Click" to the URL.
    done = browser.post(path, {"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    assert "Alert emails stopped" in done.content.decode()
    assert Membership.objects.get(user=ann).receives_alerts is False
    assert Membership.objects.get(user=bob).receives_alerts is True
    (record,) = AuditRecord.objects.all()
    assert (record.action, record.tenant_id, record.actor_id) == (AuditRecord.Action.CUSTOMER_ACTION, tenant.pk, ann.pk)
    assert record.changes == {"receives_alerts": [True, False], "via": "one-click (RFC 8058)"}
    assert ann.email in record.target

    # Again: nothing more to change, nothing more recorded.
    assert browser.post(path, {"List-Unsubscribe": "One-Click"}).status_code == 200
    assert AuditRecord.objects.count() == 1

    # The next alert reaches the list and Bob, not Ann.
    smtp_server.clear()
    raise_alert(integration, R.REPEATED_FAILURES)
    assert sorted(m.rcpt_tos[0] for m in smtp_server.messages) == sorted([tenant.alert_emails, bob.email])


@live
def test_a_member_who_opts_out_while_an_alert_waits_is_left_out_and_with_nobody_left_it_fails(
    alert_tenant, member, smtp_server, error_catalog
):
    tenant = alert_tenant(alert_emails="")
    ann = member(tenant, receives_alerts=True)
    integration = IntegrationFactory(tenant=tenant, status="active")
    t0 = timezone.now()
    alert = raise_alert(integration, R.STALE, t0, extra={"last_success_at": "earlier"})
    assert (alert.state, alert.recipients) == (Alert.State.DIGEST, [ann.email])

    assert Client().post(f"/alerts/unsubscribe/{_token_of(ann)}/").status_code == 200  # the confirmation page's button
    assert delivery.deliver_due(now=t0 + settings.ALERT_DIGEST_WINDOW) == {"sent": 0, "digests": 0}
    alert.refresh_from_db()
    assert (alert.state, alert.failure) == (Alert.State.FAILED, Alert.Failure.NO_RECIPIENTS)
    assert smtp_server.messages == []
    assert delivery.deliver_due(now=t0 + timedelta(hours=1)) == {"sent": 0, "digests": 0}


def _token_of(user):
    return token_for(Membership.objects.get(user=user))


@pytest.mark.django_db
def test_a_token_for_a_membership_that_changed_hands_is_refused(alert_tenant, member, client):
    tenant = alert_tenant()
    ann = member(tenant, receives_alerts=True)
    token = _token_of(ann)
    other = member(alert_tenant(), receives_alerts=True)
    membership = Membership.objects.get(user=ann)
    Membership.objects.filter(user=other).delete()
    Membership.objects.filter(pk=membership.pk).update(user=other)

    assert client.post(f"/alerts/unsubscribe/{token}/").status_code == 400
    assert Membership.objects.get(pk=membership.pk).receives_alerts is True
    assert client.get("/alerts/unsubscribe/not-a-token/").status_code == 400
    assert client.put(f"/alerts/unsubscribe/{token}/").status_code == 405
