"""When alert emails go out: at once when action is needed, in digests per tenant window otherwise.

Messages are counted where they arrive, at a real SMTP server; the clock is
driven through the `now` every delivery function takes (the after-commit
delivery runs inline, as the urgent cluster runs it right away).
"""

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from alerts import delivery, rules
from alerts.models import Alert
from alerts.rules import check_clock_rules
from integrations.models import Integration, SyncSession
from tests.factories import IntegrationFactory, TenantFactory

live = pytest.mark.django_db(transaction=True)
R = Alert.Rule
URL_RE = re.compile(r"https?://[^\s<>\"']+")


def raise_one(integration, rule, at, **kwargs):
    """Raise an alert as the consumer does (its delivery queued after commit); returns it."""
    with transaction.atomic():
        (alert,) = rules.raise_alerts(
            [rules.build(integration, rule, at.isoformat(), at, recipients=rules.tenant_recipients(integration.tenant), **kwargs)]
        )
    alert.refresh_from_db()
    return alert


@live
def test_a_tenant_emailed_ten_minutes_ago_gets_the_auth_failing_email_with_its_link_within_a_minute(
    make_integration, sync, alert_tenant, vendor_simulator, smtp_server, client
):
    tenant = alert_tenant()
    integration = make_integration("healthy", tenant=tenant, name="Tickets")
    sync(integration)

    # Ten minutes ago the tenant got the repeated-failure email of another integration.
    other = IntegrationFactory(tenant=tenant, name="Billing", status=Integration.Status.FAILING, consecutive_unsuccessful=10)
    ten_minutes_ago = timezone.now() - timedelta(minutes=10)
    earlier = rules.build(
        other, R.REPEATED_FAILURES, ten_minutes_ago.isoformat(), ten_minutes_ago, recipients=rules.tenant_recipients(tenant)
    )
    earlier.save()
    assert delivery.deliver(earlier.pk, now=ten_minutes_ago) == Alert.State.SENT
    assert [m.subject for m in smtp_server.messages] == ["[SyncConsole] 10 syncs in a row failed: Billing"]

    vendor_simulator.control(integration.settings["account"], api_key="rotated-key")
    failed = sync(integration, kind=SyncSession.Kind.QUICK)
    assert failed.error_code_id == "AUTH_INVALID"

    (message,) = smtp_server.with_subject("Re-authentication needed: Tickets")
    assert message.rcpt_tos == [tenant.alert_emails]
    alert = Alert.objects.get(integration=integration, rule=R.AUTH_FAILING)
    assert alert.state == Alert.State.SENT
    assert timedelta(0) <= alert.sent_at - failed.finished_at < timedelta(minutes=1)
    reauth_url = URL_RE.findall(message.text)[0]
    assert reauth_url.startswith(settings.SITE_URL + "/reauth/")
    page = client.get(reauth_url[len(settings.SITE_URL) :], follow=True)
    assert page.status_code == 200
    assert "Re-authenticate Tickets" in page.content.decode()


@live
def test_a_digest_groups_only_the_alerts_raised_within_the_window_of_the_first(alert_tenant, smtp_server, error_catalog):
    assert settings.ALERT_DIGEST_WINDOW == timedelta(minutes=5)
    tenant = alert_tenant()
    first, second, third = (
        IntegrationFactory(tenant=tenant, name=name, status="active", sync_interval=timedelta(hours=1))
        for name in ("First", "Second", "Third")
    )
    t0 = timezone.now()

    def stale_from(integration, at):
        Integration.objects.filter(pk=integration.pk).update(last_success_at=at - timedelta(hours=4))
        (alert,) = check_clock_rules(at)
        assert (alert.integration_id, alert.rule) == (integration.pk, R.STALE)
        alert.refresh_from_db()
        return alert

    # The first opens the tenant's window; one raised two minutes later joins it.
    a = stale_from(first, t0)
    b = stale_from(second, t0 + timedelta(minutes=2))
    assert (a.state, b.state) == (Alert.State.DIGEST, Alert.State.DIGEST)
    assert a.digest_window_ends_at == b.digest_window_ends_at == t0 + timedelta(minutes=5)
    assert smtp_server.messages == []

    # An alert that needs action meanwhile is not held back by the open window.
    urgent = IntegrationFactory(tenant=tenant, name="Urgent", status=Integration.Status.AUTH_FAILING, consecutive_unsuccessful=1)
    assert raise_one(urgent, R.AUTH_FAILING, t0 + timedelta(minutes=3), reauth=True).state == Alert.State.SENT
    assert [m.subject for m in smtp_server.messages] == ["[SyncConsole] Re-authentication needed: Urgent"]

    assert delivery.deliver_due(now=t0 + timedelta(minutes=4)) == {"sent": 0, "digests": 0}
    assert delivery.deliver_due(now=t0 + timedelta(minutes=5)) == {"sent": 0, "digests": 1}
    digest = smtp_server.messages[-1]
    assert digest.subject == f"[SyncConsole] 2 alerts for {tenant.name}"
    assert digest.rcpt_tos == [tenant.alert_emails]
    for body in (digest.text, digest.html):
        assert "First" in body and "Second" in body and "Third" not in body

    # Raised after the window: the next window, its own email when that one ends.
    c = stale_from(third, t0 + timedelta(minutes=6))
    assert (c.state, c.digest_window_ends_at) == (Alert.State.DIGEST, t0 + timedelta(minutes=11))
    assert delivery.deliver_due(now=t0 + timedelta(minutes=10)) == {"sent": 0, "digests": 0}
    assert delivery.deliver_due(now=t0 + timedelta(minutes=11)) == {"sent": 0, "digests": 1}
    assert smtp_server.messages[-1].subject == "[SyncConsole] No successful sync for a while: Third"
    assert len(smtp_server.messages) == 3
    assert [a.state for a in Alert.objects.filter(pk__in=[a.pk, b.pk, c.pk])] == [Alert.State.SENT] * 3
    assert delivery.deliver_due(now=t0 + timedelta(hours=2)) == {"sent": 0, "digests": 0}
    assert len(smtp_server.messages) == 3


@live
def test_a_digest_that_the_smtp_server_refuses_waits_and_goes_out_once_when_it_is_back(alert_tenant, smtp_server, error_catalog):
    tenant = alert_tenant()
    integration = IntegrationFactory(tenant=tenant, status="active")
    t0 = timezone.now()
    alert = raise_one(integration, R.STALE, t0, extra={"last_success_at": "earlier"})
    assert alert.state == Alert.State.DIGEST

    smtp_server.stop()
    assert delivery.deliver_due(now=t0 + timedelta(minutes=5)) == {"sent": 0, "digests": 0}
    alert.refresh_from_db()
    assert alert.state == Alert.State.DIGEST and alert.last_error and alert.next_attempt_at > t0 + timedelta(minutes=5)

    smtp_server.start()
    assert delivery.deliver_due(now=alert.next_attempt_at) == {"sent": 0, "digests": 1}
    assert delivery.deliver_due(now=alert.next_attempt_at + timedelta(hours=1)) == {"sent": 0, "digests": 0}
    assert len(smtp_server.messages) == 1


@live
def test_an_auth_failing_alert_for_a_tenant_without_recipients_fails_with_the_reason(
    make_integration, sync, vendor_simulator, smtp_server, client, staff_user
):
    tenant = TenantFactory(name="Nobody Listens")  # no alert address, no member
    integration = make_integration("healthy", tenant=tenant)
    sync(integration)
    vendor_simulator.control(integration.settings["account"], api_key="rotated-key")
    assert sync(integration, kind=SyncSession.Kind.QUICK).error_code_id == "AUTH_INVALID"

    alert = Alert.objects.get(integration=integration, rule=R.AUTH_FAILING)
    assert (alert.state, alert.failure) == (Alert.State.FAILED, Alert.Failure.NO_RECIPIENTS)
    assert alert.last_error.startswith("No recipients")
    assert smtp_server.messages == []

    client.force_login(staff_user)
    page = client.get(f"/admin/integrations/integration/{integration.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    row = html[html.index(f'id="sc-alert-{alert.pk}"') :].split("</li>", 1)[0]
    assert "Authentication failing" in row and "not sent" in row
    assert "No recipients: add an alert address, or let a member receive alerts." in row
    assert f'href="/admin/integrations/tenant/{integration.tenant_id}/change/"' in row
    # And the panel warns before the next one fails.
    assert 'id="sc-alerts-no-recipients"' in html

