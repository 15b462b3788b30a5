"""The alerts no session triggers: credentials about to expire, no success for too long."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone

from alerts import delivery
from alerts.models import Alert
from alerts.rules import check_clock_rules
from integrations.models import Integration, ReauthLink
from tests.factories import IntegrationFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tenant(alert_tenant, error_catalog):
    return alert_tenant()


def test_credentials_expiring_within_the_warning_is_alerted_once(tenant):
    now = timezone.now()
    soon = IntegrationFactory(tenant=tenant, status="active", credentials={"api_key": "k"})
    Integration.objects.filter(pk=soon.pk).update(credentials_expire_at=now + timedelta(days=6))
    later = IntegrationFactory(tenant=tenant, status="active", credentials={"api_key": "k"})
    Integration.objects.filter(pk=later.pk).update(credentials_expire_at=now + timedelta(days=30))

    raised = check_clock_rules(now)
    assert [(a.integration_id, a.rule) for a in raised] == [(soon.pk, Alert.Rule.CREDENTIALS_EXPIRING)]
    assert raised[0].context["days_left"] == 6
    assert raised[0].context["wants_reauth_link"] is True
    # It can wait for the tenant's digest window; the every-minute sweep sends it when the window ends.
    alert = Alert.objects.get(rule=Alert.Rule.CREDENTIALS_EXPIRING)
    assert (alert.state, alert.digest_window_ends_at) == (Alert.State.DIGEST, now + settings.ALERT_DIGEST_WINDOW)
    assert mail.outbox == []
    assert delivery.deliver_due(now=now + settings.ALERT_DIGEST_WINDOW) == {"sent": 0, "digests": 1}
    assert check_clock_rules(now + timedelta(hours=1)) == []
    assert check_clock_rules(now + timedelta(hours=2)) == []
    assert delivery.deliver_due(now=now + timedelta(hours=2)) == {"sent": 0, "digests": 0}
    assert Alert.objects.filter(rule=Alert.Rule.CREDENTIALS_EXPIRING).count() == 1
    assert len(mail.outbox) == 1 and "expire" in mail.outbox[0].subject.lower()
    # One link, made when the email went out, still usable after the later hourly runs.
    link = ReauthLink.objects.get(integration=soon)
    assert (link.used_at, link.revoked_at) == (None, None)
    assert Alert.objects.get(integration=soon).context["reauth_link_id"] == link.pk
    assert "/reauth/" in mail.outbox[0].body


def test_stale_after_three_intervals_and_the_tenant_override(tenant, alert_tenant):
    now = timezone.now()
    stale = IntegrationFactory(tenant=tenant, status="active", sync_interval=timedelta(hours=1))
    fresh = IntegrationFactory(tenant=tenant, status="active", sync_interval=timedelta(hours=1))
    failing = IntegrationFactory(tenant=tenant, status="failing", sync_interval=timedelta(hours=1))
    Integration.objects.filter(pk__in=[stale.pk, failing.pk]).update(last_success_at=now - timedelta(hours=4))
    Integration.objects.filter(pk=fresh.pk).update(last_success_at=now - timedelta(hours=2))

    patient = alert_tenant(stale_after_intervals=10)
    tolerated = IntegrationFactory(tenant=patient, status="active", sync_interval=timedelta(hours=1))
    Integration.objects.filter(pk=tolerated.pk).update(last_success_at=now - timedelta(hours=4))

    raised = check_clock_rules(now)
    assert {(a.integration_id, a.rule) for a in raised} == {(stale.pk, Alert.Rule.STALE)}
    assert check_clock_rules(now + timedelta(minutes=5)) == []


def test_a_day_of_hourly_clock_rules_sends_one_alert_with_one_link_that_still_works(tenant):
    """The hourly run must not mint (and so revoke) a link for an alert it does not insert."""
    from integrations import reauth
    from integrations.models import IntegrationEvent

    start = timezone.now()
    integration = IntegrationFactory(tenant=tenant, status="active", credentials={"api_key": "k"})
    Integration.objects.filter(pk=integration.pk).update(credentials_expire_at=start + timedelta(days=5))

    for hour in range(24):
        check_clock_rules(start + timedelta(hours=hour))
        delivery.deliver_due(now=start + timedelta(hours=hour, minutes=30))  # the sweep, between runs

    assert Alert.objects.filter(integration=integration).count() == 1
    link = ReauthLink.objects.get(integration=integration)
    assert (link.used_at, link.revoked_at) == (None, None)
    assert IntegrationEvent.objects.filter(integration=integration, kind=IntegrationEvent.Kind.LINK_SENT).count() == 1
    (message,) = [m for m in mail.outbox if "expire" in m.subject.lower()]
    token = message.body.split("/reauth/", 1)[1].split("/", 1)[0]
    assert reauth.find_link(token, now=start + timedelta(hours=24)).pk == link.pk
