"""POST /api/v1/integrations/<id>/sync: the 202 and the 409 say the queue position and the likely wait."""

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.models import Integration, SyncSession
from tests.factories import IntegrationFactory, TenantFactory
from tests.portal.test_sync_wait import busy_urgent_queue

Status = Integration.Status
JSON = "application/json"
pytestmark = pytest.mark.django_db


def test_the_202_and_the_409_carry_the_likely_wait_while_the_workers_are_busy(api_client, settings, error_catalog):
    tenant = TenantFactory()
    busy_urgent_queue(settings, workers=1, queued=2, running=1, durations=(100, 120, 140))
    integration = IntegrationFactory(tenant=tenant, status=Status.ACTIVE, status_changed_at=timezone.now())
    client = api_client(tenant)

    started = client.post(f"/api/v1/integrations/{integration.pk}/sync", data="", content_type=JSON)

    assert started.status_code == 202, started.content
    body = started.json()
    # 2 queued and 1 running in front of 1 worker: 120 s x 3 = 6 minutes.
    assert (body["queue_position"], body["likely_start_within_minutes"]) == (3, 6)
    assert body["message"] == "Queued behind 2 other syncs while 1 other sync runs: likely to start within 6 minutes."
    assert body["session"]["state"] == "queued"

    again = client.post(f"/api/v1/integrations/{integration.pk}/sync", data="", content_type=JSON)

    assert again.status_code == 409
    conflict = again.json()
    assert (conflict["queue_position"], conflict["likely_start_within_minutes"]) == (3, 6)
    assert conflict["error"]["message"].endswith("likely to start within 6 minutes.")


def test_a_free_worker_gives_no_wait(api_client, settings, error_catalog):
    tenant = TenantFactory()
    busy_urgent_queue(settings, workers=3, queued=0, running=1, durations=(100,))
    integration = IntegrationFactory(tenant=tenant, status=Status.ACTIVE, status_changed_at=timezone.now())

    body = api_client(tenant).post(f"/api/v1/integrations/{integration.pk}/sync", data="", content_type=JSON).json()

    assert (body["queue_position"], body["likely_start_within_minutes"]) == (1, None)
    assert body["message"] == "It starts in a moment."


def test_a_running_session_is_409_without_a_wait(api_client, settings, error_catalog):
    tenant = TenantFactory()
    busy_urgent_queue(settings, workers=1, queued=3, running=0, durations=(100,))
    integration = IntegrationFactory(tenant=tenant, status=Status.ACTIVE, status_changed_at=timezone.now())
    integration.sessions.create(
        trigger=SyncSession.Trigger.API,
        state=SyncSession.State.RUNNING,
        queued_at=timezone.now() - timedelta(minutes=1),
        started_at=timezone.now(),
    )

    conflict = api_client(tenant).post(f"/api/v1/integrations/{integration.pk}/sync", data="", content_type=JSON)

    assert conflict.status_code == 409
    assert (conflict.json()["queue_position"], conflict.json()["likely_start_within_minutes"]) == (None, None)
