"""The Alerts panel of the admin integration page: each alert's delivery, and the fix when it went wrong."""

import html as htmllib
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from django.utils.html import strip_tags

from alerts.models import Alert
from tests.factories import IntegrationFactory, UserFactory

pytestmark = pytest.mark.django_db
R, State = Alert.Rule, Alert.State


def make_alert(integration, rule, state, created_at, **fields):
    return Alert.objects.create(
        integration=integration,
        tenant=integration.tenant,
        rule=rule,
        streak=created_at.isoformat(),
        state=state,
        recipients=fields.pop("recipients", ["ops@acme.example"]),
        subject="s",
        created_at=created_at,
        **fields,
    )


def words(html):
    return " ".join(htmllib.unescape(strip_tags(html)).split())


def panel_rows(client, integration):
    page = client.get(f"/admin/integrations/integration/{integration.pk}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    start = text.index('id="sc-alerts"')
    panel = text[start : text.index("</div>", start)]  # the panel holds no other div
    rows = {}
    for alert in Alert.objects.filter(integration=integration):
        start = panel.index(f'id="sc-alert-{alert.pk}"')
        rows[alert.pk] = panel[start : panel.index("</li>", start)]
    return panel, rows


def test_the_panel_says_where_each_alert_is(client, staff_user, error_catalog):
    now = timezone.now().replace(second=0, microsecond=0)
    integration = IntegrationFactory(tenant__alert_emails="ops@acme.example")
    sent = make_alert(integration, R.AUTH_FAILING, State.SENT, now - timedelta(hours=3), sent_at=now - timedelta(hours=3))
    waiting = make_alert(
        integration, R.STALE, State.DIGEST, now - timedelta(minutes=2), digest_window_ends_at=now + timedelta(minutes=3)
    )
    retrying = make_alert(
        integration,
        R.REPEATED_FAILURES,
        State.PENDING,
        now - timedelta(minutes=1),
        attempts=2,
        last_error="ConnectionRefusedError: [Errno 111] Connection refused",
        next_attempt_at=now + timedelta(minutes=1),
    )
    failed = make_alert(
        integration,
        R.CREDENTIALS_EXPIRING,
        State.FAILED,
        now - timedelta(hours=1),
        recipients=[],
        failure=Alert.Failure.NO_RECIPIENTS,
        last_error="No recipients",
    )

    client.force_login(staff_user)
    panel, rows = panel_rows(client, integration)
    assert "Alerts go to ops@acme.example." in words(panel)
    assert f"Authentication failing: sent {(now - timedelta(hours=3)):%Y-%m-%d %H:%M} UTC to ops@acme.example." in words(rows[sent.pk])
    assert f"waiting for the tenant's digest until {(now + timedelta(minutes=3)):%Y-%m-%d %H:%M} UTC" in words(rows[waiting.pk])
    assert "not sent yet (2 attempts: ConnectionRefusedError" in words(rows[retrying.pk])
    assert "Check EMAIL_URL and send a test email." in words(rows[retrying.pk])
    assert 'href="/admin/alerts/alert/test-email/"' in rows[retrying.pk]
    assert "Credentials expiring: not sent." in words(rows[failed.pk])
    assert "No recipients: add an alert address, or let a member receive alerts." in words(rows[failed.pk])
    assert f'href="/admin/integrations/tenant/{integration.tenant_id}/change/"' in rows[failed.pk]
    # Newest first.
    assert [panel.index(f'id="sc-alert-{a.pk}"') for a in (retrying, waiting, failed, sent)] == sorted(
        panel.index(f'id="sc-alert-{a.pk}"') for a in (retrying, waiting, failed, sent)
    )
    # The changelist the panel links to lists exactly this integration's alerts.
    other = IntegrationFactory()
    make_alert(other, R.STALE, State.SENT, now, sent_at=now)
    listing = client.get(f"/admin/alerts/alert/?integration__id__exact={integration.pk}")
    assert listing.status_code == 200
    assert "4 alerts" in listing.content.decode()


def test_support_staff_read_the_fix_without_a_link_they_cannot_use(client, error_catalog):
    """The Support group cannot edit tenants: the reason and the fix are shown, the link is not."""
    support = UserFactory(is_staff=True)
    support.groups.add(Group.objects.get(name="Support"))
    integration = IntegrationFactory()  # a tenant with no alert address and no member
    failed = make_alert(
        integration, R.AUTH_FAILING, State.FAILED, timezone.now(), recipients=[], failure=Alert.Failure.NO_RECIPIENTS
    )
    client.force_login(support)
    panel, rows = panel_rows(client, integration)
    assert "No recipients: add an alert address, or let a member receive alerts." in words(rows[failed.pk])
    assert "/admin/integrations/tenant/" not in panel
    assert 'id="sc-alerts-no-recipients"' in panel
