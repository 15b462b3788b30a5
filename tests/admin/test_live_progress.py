"""The integration page's live part: the progress JSON (IntegrationAdmin.progress_view) and what the page draws.

The browser side (the bar moving during a slow sync, the status changing
without a reload) is tests/admin/test_console_browser.py.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.models import Integration, SyncSession
from tests.factories import IntegrationFactory, SyncSessionFactory, UserFactory
from tests.queries import measure

Status = Integration.Status
State = SyncSession.State
pytestmark = pytest.mark.django_db


def progress_url(integration):
    return f"/admin/integrations/integration/{integration.pk}/progress/"


def running(integration, **counters):
    now = timezone.now()
    return SyncSessionFactory(
        integration=integration,
        state=State.RUNNING,
        queued_at=now - timedelta(seconds=12),
        started_at=now - timedelta(seconds=10),
        **counters,
    )


def test_a_running_session_says_items_pages_rate_and_elapsed(support_client):
    integration = IntegrationFactory(status=Status.SETUP, status_reason="Waiting for the first sync to finish.")
    session = running(integration, items_seen=450, items_total=1000, pages=9, http_requests=10)

    data = support_client.get(progress_url(integration)).json()

    assert data["status"] == "setup" and data["status_label"] == "Setup"
    assert data["status_reason"] == "Waiting for the first sync to finish."
    live = data["session"]
    assert (live["id"], live["state"], live["open"]) == (session.pk, "running", True)
    assert (live["items_seen"], live["items_total"], live["pages"], live["percent"]) == (450, 1000, 9, 45)
    assert 9.5 <= live["elapsed_seconds"] <= 20
    assert live["text"].startswith(f"Session {session.pk} is running · 450 of 1,000 items · 9 pages · ")
    assert " items/s · " in live["text"] and live["text"].endswith(" s so far")


def test_a_queued_session_says_it_waits_and_has_no_percentage(support_client):
    integration = IntegrationFactory()
    SyncSessionFactory(integration=integration, state=State.QUEUED, queued_at=timezone.now() - timedelta(seconds=3))

    live = support_client.get(progress_url(integration)).json()["session"]

    assert live["open"] and live["percent"] is None
    assert "is queued, waiting 3." in live["text"] and "for a worker" in live["text"]


def test_an_ended_session_comes_with_the_new_status(support_client):
    integration = IntegrationFactory(status=Status.ACTIVE, status_reason="The last sync succeeded.")
    now = timezone.now()
    SyncSessionFactory(
        integration=integration,
        state=State.SUCCEEDED,
        queued_at=now - timedelta(minutes=1),
        started_at=now - timedelta(seconds=50),
        finished_at=now - timedelta(seconds=20),
        items_seen=120,
        items_total=120,
        pages=12,
    )

    data = support_client.get(progress_url(integration)).json()

    assert (data["status_label"], data["status_colour"]) == ("Active", "#15803d")
    live = data["session"]
    assert not live["open"] and live["state_label"] == "Succeeded"
    assert live["text"].endswith("ended: Succeeded · 120 of 120 items · 12 pages · 4.0 items/s · 30 s")


def test_only_staff_who_may_view_integrations_follow_it(client, staff_client, staff_groups):
    integration = IntegrationFactory()
    running(integration)

    assert client.get(progress_url(integration)).status_code == 302  # to the console's login
    customer = UserFactory(username="customer")
    assert staff_client(customer).get(progress_url(integration)).status_code == 302
    nobody = staff_client(UserFactory(username="no-group", is_staff=True))
    refused = nobody.get(progress_url(integration))
    assert refused.status_code == 403
    assert "items_seen" not in refused.content.decode()


def test_bad_requests_change_nothing(support_client):
    integration = IntegrationFactory()
    assert support_client.get("/admin/integrations/integration/999999/progress/").status_code == 404
    assert support_client.get("/admin/integrations/integration/abc/progress/").status_code == 404
    assert support_client.post(progress_url(integration)).status_code == 405
    assert not SyncSession.objects.filter(integration=integration).exists()


def test_its_queries_do_not_grow_with_the_sessions(support_client):
    integration = IntegrationFactory()
    running(integration)
    support_client.get(progress_url(integration))  # per-process caches
    response, few = measure(support_client, progress_url(integration))
    assert response.status_code == 200
    for n in range(40):
        queued_at = timezone.now() - timedelta(hours=n + 1)
        SyncSessionFactory(integration=integration, state=State.SUCCEEDED, queued_at=queued_at)
    response, many = measure(support_client, progress_url(integration))

    assert response.status_code == 200 and response.json()["session"]["open"]
    assert len(few) == len(many) <= 6, many


def test_the_page_draws_the_live_panel_only_while_a_session_is_open(support_client):
    integration = IntegrationFactory()
    page = support_client.get(f"/admin/integrations/integration/{integration.pk}/change/").content.decode()
    assert 'id="sc-live"' not in page

    session = running(integration, items_seen=30, items_total=120, pages=3)
    page = support_client.get(f"/admin/integrations/integration/{integration.pk}/change/").content.decode()

    assert f'data-progress-url="{progress_url(integration)}" data-session-id="{session.pk}"' in page
    assert '<progress id="sc-progress-bar" max="100" value="25"' in page
    assert "console-progress.js" in page
