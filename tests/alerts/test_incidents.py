"""Vendor-wide incidents: five tenants' simulator integrations failing with one code at once."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from alerts import delivery
from alerts.models import Alert, Incident
from integrations.models import Integration, SyncSession

live = pytest.mark.django_db(transaction=True)
R = Alert.Rule


@live
def test_five_tenants_failing_open_one_incident_send_five_notices_and_resolve(
    healthy_then_failing, sync, vendor_simulator, smtp_server, member, alert_tenant, client, staff_user
):
    assert settings.INCIDENT_MIN_TENANTS == 3
    integrations = [healthy_then_failing() for _ in range(5)]
    tenants = [i.tenant for i in integrations]

    # Round one: the third tenant's failure opens the incident.
    for n, integration in enumerate(integrations, start=1):
        session = sync(integration, kind=SyncSession.Kind.QUICK)
        assert session.error_code_id == "VENDOR_UNAVAILABLE"
        assert Incident.objects.count() == (0 if n < 3 else 1)
    incident = Incident.objects.get()
    assert (incident.connector, incident.error_code_id, incident.is_open) == ("simulator", "VENDOR_UNAVAILABLE", True)

    # Rounds two to eleven: past the repeated-failure threshold for everyone.
    for _ in range(10):
        for integration in integrations:
            assert sync(integration, kind=SyncSession.Kind.QUICK).state == SyncSession.State.FAILED
    assert all(i.consecutive_unsuccessful == 11 for i in integrations)
    assert Incident.objects.count() == 1
    incident.refresh_from_db()
    assert incident.tenants_affected == 5

    notices = Alert.objects.filter(rule=R.INCIDENT)
    assert notices.count() == 5
    assert sorted(notices.values_list("tenant_id", flat=True)) == sorted(t.pk for t in tenants)
    assert set(notices.values_list("incident_id", flat=True)) == {incident.pk}
    # Held back: one repeated-failure alert per streak, none of them emailed.
    held = Alert.objects.filter(rule=R.REPEATED_FAILURES)
    assert held.count() == 5
    assert set(held.values_list("state", flat=True)) == {Alert.State.HELD}
    assert set(held.values_list("incident_id", flat=True)) == {incident.pk}

    delivery.deliver_due(now=timezone.now() + timedelta(hours=3))
    assert len(smtp_server.messages) == 5
    for tenant in tenants:
        (notice,) = smtp_server.to(tenant.alert_emails)
        assert notice.subject.startswith("[SyncConsole] Vendor problem affecting")
    assert smtp_server.with_subject("syncs in a row failed") == []

    # The dashboard shows the incident; the portal shows a banner to the affected, not to others.
    client.force_login(staff_user)
    dashboard = client.get("/admin/").content.decode()
    assert f'id="sc-incident-{incident.pk}"' in dashboard
    assert "for 5 tenants" in dashboard
    banner = "A problem at the vendor affects your integrations."
    client.force_login(member(tenants[0]))
    assert banner in client.get("/portal/").content.decode()
    client.force_login(member(alert_tenant()))
    page = client.get("/portal/")
    assert page.status_code == 200
    assert banner not in page.content.decode()

    # The vendor recovers: the incident resolves itself when all sync cleanly again.
    for integration in integrations:
        vendor_simulator.control(integration.settings["account"], recover=True)
    for n, integration in enumerate(integrations, start=1):
        assert sync(integration, kind=SyncSession.Kind.QUICK).state == SyncSession.State.SUCCEEDED
        incident.refresh_from_db()
        assert incident.is_open == (n < 5)
    assert "Resolved itself" in incident.note
    assert all(i.status == Integration.Status.ACTIVE for i in integrations)
    client.force_login(member(tenants[0]))
    assert banner not in client.get("/portal/").content.decode()
    # No notice and no repeated-failure email was sent twice along the way.
    assert Alert.objects.filter(rule=R.INCIDENT).count() == 5
    delivery.deliver_due(now=timezone.now() + timedelta(hours=6))
    assert smtp_server.with_subject("syncs in a row failed") == []
    assert len(smtp_server.with_subject("Vendor problem")) == 5


@live
def test_outage_accounts_from_the_first_sync_open_one_incident(make_integration, sync, alert_tenant, smtp_server, vendor_simulator):
    """`outage.<label>` accounts answer 503 from the start (first syncs: quality assurance)."""
    integrations = [make_integration("outage", tenant=alert_tenant()) for _ in range(5)]
    for integration in integrations:
        session = sync(integration)
        assert session.error_code_id == "VENDOR_UNAVAILABLE"
    incident = Incident.objects.get(connector="simulator", error_code_id="VENDOR_UNAVAILABLE", resolved_at=None)
    assert Alert.objects.filter(rule=R.INCIDENT, incident=incident).count() == 5
    delivery.deliver_due(now=timezone.now() + timedelta(hours=3))
    assert len(smtp_server.with_subject("Vendor problem")) == 5
    assert {m.rcpt_tos[0] for m in smtp_server.with_subject("Vendor problem")} == {
        i.tenant.alert_emails for i in integrations
    }


@pytest.mark.django_db
def test_staff_annotate_and_resolve_an_incident_in_the_admin(client, staff_user, error_catalog):
    incident = Incident.objects.create(
        connector="simulator", error_code_id="VENDOR_UNAVAILABLE", opened_at=timezone.now(), tenants_affected=4
    )
    client.force_login(staff_user)
    url = f"/admin/alerts/incident/{incident.pk}/change/"
    assert client.get(url).status_code == 200
    response = client.post(url, {"note": "Vendor confirmed an outage of their EU region."})
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.note == "Vendor confirmed an outage of their EU region."
    assert "Vendor confirmed an outage" in client.get("/admin/").content.decode()

    response = client.post(
        "/admin/alerts/incident/", {"action": "resolve", "_selected_action": [incident.pk]}, follow=True
    )
    assert "Resolved 1 incident." in response.content.decode()
    incident.refresh_from_db()
    assert incident.resolved_at is not None
    assert incident.resolved_by == staff_user
    assert f'id="sc-incident-{incident.pk}"' not in client.get("/admin/").content.decode()
