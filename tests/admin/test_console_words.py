"""The console's words: each test pins a sentence the console used to get wrong.

- the timeline printed raw states ("active -> quality_assurance");
- a session's duration read "0:00:03.522673";
- counts of one kept their plural ("1 requests", "1 retries", "1 tenant(s)", "1 integration(s)");
- the dashboard said "since 0 minutes";
- why-this-status named a state ("until credentials_invalid").
"""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import Incident
from integrations.models import Integration, IntegrationEvent, SyncSession
from tests.factories import IntegrationEventFactory, IntegrationFactory, SyncSessionFactory

Status = Integration.Status
pytestmark = pytest.mark.django_db


def change_page(client, integration):
    response = client.get(f"/admin/integrations/integration/{integration.pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


def panel(page, panel_id):
    """The text of one panel of a page (its tags dropped, spaces squeezed)."""
    match = re.search(rf'id="{panel_id}".*?</div>', page, re.S)
    assert match, panel_id
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(0)).split())


def test_the_timeline_names_statuses_as_people_read_them(support_client, error_catalog):
    integration = IntegrationFactory(status=Status.QUALITY_ASSURANCE)
    IntegrationEventFactory(
        integration=integration,
        kind=IntegrationEvent.Kind.STATUS_CHANGED,
        from_status=Status.ACTIVE,
        to_status=Status.QUALITY_ASSURANCE,
        note="Under quality assurance.",
    )
    IntegrationEventFactory(
        integration=integration,
        kind=IntegrationEvent.Kind.STATUS_CHANGED,
        from_status="",
        to_status=Status.AUTH_FAILING,
        created_at=timezone.now() - timedelta(hours=1),
    )

    timeline = panel(change_page(support_client, integration), "sc-timeline")

    assert "Status changed: Active \u2192 Quality assurance" in timeline
    assert "Status changed: Authentication failing" in timeline
    assert "quality_assurance" not in timeline and "auth_failing" not in timeline
    assert "- \u2192" not in timeline


def test_the_last_session_lasted_seconds_and_counts_are_singular(support_client, error_catalog):
    now = timezone.now()
    integration = IntegrationFactory(status=Status.ACTIVE)
    session = SyncSessionFactory(
        integration=integration,
        state=SyncSession.State.SUCCEEDED,
        started_at=now - timedelta(seconds=10),
        finished_at=now - timedelta(seconds=10) + timedelta(seconds=3, microseconds=522673),
        items_seen=1,
        pages=1,
        http_requests=1,
        retries=1,
        rate_limited_waits=1,
    )
    Integration.objects.filter(pk=integration.pk).update(last_session=session)

    last = panel(change_page(support_client, integration), "sc-last-session")

    assert "Duration 3.5 s" in last
    assert "0:00:03" not in last
    assert "1 item seen" in last and "1 page" in last
    assert "1 request · 1 retry · 1 rate-limited wait" in last
    assert "1 requests" not in last and "1 retries" not in last


def test_the_dashboard_says_just_now_and_one_tenant(support_client, error_catalog):
    IntegrationFactory(name="Pax8 billing", status=Status.FAILING, status_changed_at=timezone.now())
    Incident.objects.create(
        connector="simulator",
        error_code_id="VENDOR_UNAVAILABLE",
        opened_at=timezone.now() - timedelta(minutes=30),
        tenants_affected=1,
    )

    page = support_client.get("/admin/").content.decode()

    attention = panel(page, "sc-attention")
    assert "Pax8 billing" in attention
    assert "changed just now" in attention
    assert "0 minutes" not in page
    assert "for 1 tenant since" in page
    assert "tenant(s)" not in page


def test_why_this_status_names_the_next_status_in_words(support_client, error_catalog):
    now = timezone.now()
    integration = IntegrationFactory(
        status=Status.AUTH_FAILING,
        last_outcome=Integration.Outcome.AUTH_FAILED,
        last_outcome_at=now - timedelta(hours=1),
        last_error_code="AUTH_EXPIRED",
        auth_failing_since=now - timedelta(hours=1),
        consecutive_unsuccessful=1,
        first_sync_finished_at=now - timedelta(days=1),
    )

    why = panel(change_page(support_client, integration), "sc-why")

    assert "until \u201cCredentials invalid\u201d (syncs paused) if authentication keeps failing." in why
    assert "credentials_invalid" not in why


def test_the_dashboards_help_requests_say_when_they_were_asked(support_client, error_catalog):
    """The panel used timesince: "0 minutes" for a request asked seconds ago."""
    from issues.models import SupportRequest
    from tests.factories import UserFactory

    integration = IntegrationFactory(name="Pax8 billing")
    customer = UserFactory(username="grace")
    fresh = SupportRequest.objects.create(integration=integration, user=customer, message="Help")
    older = SupportRequest.objects.create(integration=integration, user=customer, message="Help again")
    SupportRequest.objects.filter(pk=older.pk).update(created_at=timezone.now() - timedelta(hours=1, minutes=30))

    page = support_client.get("/admin/").content.decode()

    requests = panel(page, "sc-requests")
    assert "asked" in requests
    rows = {int(pk): cells for pk, cells in re.findall(r"Request (\d+)</a>(.*?)</tr>", page, re.S)}
    assert "just now" in rows[fresh.pk]
    assert "1 hour 30 minutes ago" in rows[older.pk]
    assert not re.search(r"(?<![\d,])0[\s\xa0]minutes", page)


def test_a_worker_that_beat_seconds_ago_beat_just_now(support_client):
    """The workers panel used timesince: "0\xa0minutes ago"."""
    from integrations.sync import heartbeats

    heartbeats.beat("urgent", "worker-host", 3, timezone.now() - timedelta(seconds=20))

    page = support_client.get("/admin/").content.decode()

    start = page.index('id="sc-cluster-urgent"')
    cells = page[start : page.index("</tr>", start)]
    assert "(just now)" in cells
    assert "minutes" not in cells
