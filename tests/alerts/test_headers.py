"""Names with line breaks never reach a mail header, and their alerts are delivered."""

import pytest
from django.db import transaction
from django.utils import timezone

from alerts import rules
from alerts.models import Alert
from integrations.models import Integration
from tests.factories import IntegrationFactory


@pytest.mark.django_db(transaction=True)
def test_a_cr_lf_in_an_integration_name_does_not_leave_its_alert_stuck(smtp_server, alert_tenant, error_catalog):
    tenant = alert_tenant(name="Acme\r\nBcc: attacker@example.com")
    integration = IntegrationFactory(
        tenant=tenant, name="Billing\r\nBcc: attacker@example.com", status=Integration.Status.FAILING, consecutive_unsuccessful=10
    )
    now = timezone.now()
    with transaction.atomic():
        (alert,) = rules.raise_alerts(
            [rules.build(integration, Alert.Rule.REPEATED_FAILURES, now.isoformat(), now, recipients=rules.tenant_recipients(tenant))]
        )

    alert.refresh_from_db()
    assert alert.state == Alert.State.SENT
    (message,) = smtp_server.messages
    assert "\n" not in message.subject and "\r" not in message.subject
    assert "Billing Bcc: attacker@example.com" in message.subject
    assert message.rcpt_tos == [tenant.alert_emails]
