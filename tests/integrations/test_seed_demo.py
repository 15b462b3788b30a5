"""seed_demo: every status, reached through real syncs, and idempotent."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.http import HttpRequest

from integrations.models import Integration, IntegrationEvent, Membership, SyncSession, Tenant

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_seed_demo_covers_every_status_and_is_idempotent(vendor_simulator, client):
    call_command("seed_demo", "--simulator-url", vendor_simulator.base_url, stdout=open("/dev/null", "w"))
    statuses = set(Integration.objects.values_list("status", flat=True))
    assert statuses == set(Integration.Status.values)
    assert Tenant.objects.filter(environment="development").exists()
    assert Tenant.objects.count() == 3
    assert Membership.objects.get(user__username="customer").role == "admin"

    # Real syncs: sessions with HTTP requests, records, and the events the machine wrote.
    assert SyncSession.objects.filter(http_requests__gt=0).count() >= 10
    assert Integration.objects.get(name="Pax8").records.count() == 120
    assert Integration.objects.get(name="Ingram Micro").last_session.error_code_id == "AUTH_EXPIRED"
    assert Integration.objects.get(name="HubSpot").last_session.error_code_id == "SYNC_LEASE_LOST"
    assert IntegrationEvent.objects.filter(kind="status_changed").count() >= 12

    counts = (Integration.objects.count(), SyncSession.objects.count(), get_user_model().objects.count())
    call_command("seed_demo", "--simulator-url", vendor_simulator.base_url, stdout=open("/dev/null", "w"))
    assert (Integration.objects.count(), SyncSession.objects.count(), get_user_model().objects.count()) == counts

    assert client.login(request=HttpRequest(), username="admin", password="admin")
    response = client.get("/admin/integrations/integration/")
    assert response.status_code == 200
    for label in Integration.Status.labels:
        assert label in response.content.decode()


def test_seed_demo_says_clearly_when_the_simulator_is_not_running():
    with pytest.raises(CommandError, match="vendor simulator does not answer"):
        call_command("seed_demo", "--simulator-url", "http://127.0.0.1:9")
