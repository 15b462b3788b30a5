"""After "Sync now" behind busy workers, the customer is told how long the sync is likely to wait."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from integrations.models import Integration, Membership, SyncSession
from tests.factories import IntegrationFactory, TenantFactory

Status = Integration.Status
Trigger = SyncSession.Trigger
# Not transactional: the queued session's task is sent on commit, which never comes here, as
# when every worker is busy and nobody has picked the task up yet.
pytestmark = pytest.mark.django_db


def busy_urgent_queue(settings, *, workers, queued, running, durations):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "ALT_CLUSTERS": {"urgent": {"workers": workers}}}
    now = timezone.now()
    for seconds in durations:
        finished = now - timedelta(minutes=10)
        IntegrationFactory(status=Status.ACTIVE).sessions.create(
            trigger=Trigger.CUSTOMER,
            state=SyncSession.State.SUCCEEDED,
            queued_at=finished - timedelta(seconds=seconds),
            started_at=finished - timedelta(seconds=seconds),
            finished_at=finished,
        )
    for _ in range(running):
        IntegrationFactory(status=Status.ACTIVE).sessions.create(
            trigger=Trigger.API, state=SyncSession.State.RUNNING, queued_at=now - timedelta(minutes=2), started_at=now
        )
    for n in range(queued):
        IntegrationFactory(status=Status.ACTIVE).sessions.create(
            trigger=Trigger.STAFF, state=SyncSession.State.QUEUED, queued_at=now - timedelta(seconds=60 - n)
        )


@pytest.fixture
def alice(member, log_in):
    tenant = TenantFactory(name="Acme")
    return log_in(member(tenant, Membership.Role.ADMIN, username="alice")), tenant


def sync_now(client, integration):
    response = client.post(reverse("portal:sync", args=[integration.pk]), {"kind": "quick"}, follow=True)
    assert response.status_code == 200
    return [(m.level_tag, str(m)) for m in response.context["messages"]]


def test_sync_now_behind_busy_workers_says_the_likely_wait(alice, settings, error_catalog):
    client, tenant = alice
    busy_urgent_queue(settings, workers=2, queued=3, running=2, durations=(60, 240, 300))
    integration = IntegrationFactory(tenant=tenant, status=Status.ACTIVE, status_changed_at=timezone.now())

    # 3 queued and 2 running in front of 2 workers: 240 s x (5 - 2 + 1) / 2 = 8 minutes.
    assert sync_now(client, integration) == [
        (
            "success",
            "Quick sync requested. Queued behind 3 other syncs while 2 other syncs run: "
            "likely to start within 8 minutes.",
        )
    ]

    # Asking again: the refusal says where the first one stands, and how long it is likely to wait.
    (refused,) = sync_now(client, integration)
    assert refused[0] == "error"
    assert refused[1].startswith("The sync was not started: Already syncing: session ")
    assert refused[1].endswith(
        "position 4 in the urgent queue (3 ahead of it). Queued behind 3 other syncs while 2 other syncs run: "
        "likely to start within 8 minutes."
    )


def test_sync_now_with_a_free_worker_just_starts(alice, settings, error_catalog):
    client, tenant = alice
    busy_urgent_queue(settings, workers=4, queued=1, running=1, durations=(60,))
    integration = IntegrationFactory(tenant=tenant, status=Status.ACTIVE, status_changed_at=timezone.now())

    assert sync_now(client, integration) == [("success", "Quick sync started.")]
