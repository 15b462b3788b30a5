"""The General tab's schedule controls (portal/views_controls.py), end to end through the portal.

A tenant admin pauses, resumes and sets the interval; the page says what
changed. Wrong input is the General tab again with the reason (400), a change
the integration's state refuses is 409, a viewer gets the refusal page (403),
another tenant's or a deleted integration 404; none of them changes anything.
The last test runs the real scheduler against the vendor simulator: a
customer's pause holds it back, resuming lets it run, and the next sync
follows the interval the customer chose.
"""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from integrations import services
from integrations.models import Integration, IntegrationEvent, Membership, SyncSession
from integrations.sync import scheduler
from tests.factories import TenantFactory, UserFactory
from tests.portal.conftest import snapshot

Status = Integration.Status
Kind = IntegrationEvent.Kind


@pytest.fixture
def acme(member, integration_in):
    tenant = TenantFactory(name="Acme", slug="acme")
    return type(
        "Acme",
        (),
        {
            "tenant": tenant,
            "admin": member(tenant, Membership.Role.ADMIN, username="alice"),
            "viewer": member(tenant, Membership.Role.VIEWER, username="victor"),
            "integration": integration_in(tenant, name="Acme billing", sync_interval=timedelta(hours=1)),
        },
    )


def schedule_url(integration):
    return reverse("portal:schedule", args=[integration.pk])


def general_url(integration):
    return reverse("portal:general", args=[integration.pk])


def messages_of(response):
    return [str(m) for m in response.context["messages"]] if response.context else []


@pytest.mark.django_db
def test_a_tenant_admin_pauses_and_resumes_from_the_general_tab(acme, log_in):
    client = log_in(acme.admin)
    page = client.get(general_url(acme.integration)).content.decode()
    assert "Acme billing syncs every <strong>1 hour</strong>." in page and "Pause syncs" in page

    response = client.post(schedule_url(acme.integration), {"action": "pause"}, follow=True)

    assert response.redirect_chain == [(general_url(acme.integration), 302)]
    assert messages_of(response) == ["Scheduled syncs of Acme billing are paused. Resume them here when you are ready."]
    page = response.content.decode()
    assert "Scheduled syncs are <strong>paused</strong> by Acme&#x27;s admin alice in the portal." in page
    assert "Scheduled syncs are paused by your organisation&#x27;s admin; resume them to sync again." in page
    assert "Resume syncs" in page and "Pause syncs" not in page

    response = client.post(schedule_url(acme.integration), {"action": "resume"}, follow=True)

    assert messages_of(response) == ["Scheduled syncs of Acme billing are running again."]
    acme.integration.refresh_from_db()
    assert not acme.integration.paused
    kinds = IntegrationEvent.objects.filter(integration=acme.integration).order_by("pk")
    assert [(e.kind, e.actor) for e in kinds] == [(Kind.PAUSED, acme.admin), (Kind.RESUMED, acme.admin)]
    # The tenant's admins read it on their Activity page.
    activity = client.get(reverse("portal:activity")).content.decode()
    assert "Customer action: Paused the scheduled syncs of Acme billing" in activity
    assert "Customer action: Resumed the scheduled syncs of Acme billing" in activity


@pytest.mark.django_db
def test_a_tenant_admin_sets_the_interval(acme, log_in):
    client = log_in(acme.admin)

    response = client.post(schedule_url(acme.integration), {"action": "interval", "minutes": " 30 "}, follow=True)

    assert messages_of(response) == ["Acme billing now syncs every 30 minutes."]
    assert "Acme billing syncs every <strong>30 minutes</strong>." in response.content.decode()
    acme.integration.refresh_from_db()
    assert acme.integration.sync_interval == timedelta(minutes=30)
    event = IntegrationEvent.objects.get(integration=acme.integration, kind=Kind.INTERVAL_CHANGED)
    assert event.actor == acme.admin and "every 1 hour \u2192 every 30 minutes" in event.note
    activity = client.get(reverse("portal:activity")).content.decode()
    assert "Sync interval of Acme billing: every 1 hour \u2192 every 30 minutes" in activity


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"action": "interval", "minutes": "abc"}, "whole number of minutes, not &#x27;abc&#x27;"),
        ({"action": "interval", "minutes": ""}, "whole number of minutes"),
        ({"action": "interval", "minutes": "30.5"}, "whole number of minutes"),
        ({"action": "interval", "minutes": "-5"}, "whole number of minutes"),
        ({"action": "interval", "minutes": "99999999999999999999"}, "whole number of minutes"),
        ({"action": "interval", "minutes": "14"}, "Choose an interval from 15 minutes to 1 day: 14 minutes is outside"),
        ({"action": "interval", "minutes": "1441"}, "1 day 1 minute is outside what Acme may choose"),
        ({"action": "interval", "minutes": "0"}, "Choose an interval from 15 minutes to 1 day"),
        ({"action": "shutdown"}, "Unknown action &#x27;shutdown&#x27;: use pause, resume or interval."),
        ({}, "Unknown action &#x27;&#x27;"),
    ],
)
def test_wrong_input_is_the_general_tab_with_the_reason_and_changes_nothing(acme, log_in, data, says):
    before = snapshot(acme.tenant)

    response = log_in(acme.admin).post(schedule_url(acme.integration), data)

    assert response.status_code == 400
    content = response.content.decode()
    assert 'id="schedule-error"' in content and says in content, content[content.find("schedule-error") - 200 :][:600]
    assert "Acme billing" in content and "Last sync" in content  # the General tab, not a bare error
    assert snapshot(acme.tenant) == before


@pytest.mark.django_db
def test_the_bounds_staff_set_for_the_tenant_apply(acme, log_in):
    acme.tenant.min_sync_interval_minutes, acme.tenant.max_sync_interval_minutes = 60, 240
    acme.tenant.save()
    client = log_in(acme.admin)
    page = client.get(general_url(acme.integration)).content.decode()
    assert 'min="60" max="240"' in page and "From 1 hour to 4 hours" in page
    before = snapshot(acme.tenant)

    response = client.post(schedule_url(acme.integration), {"action": "interval", "minutes": "30"})

    assert response.status_code == 400
    assert "Choose an interval from 1 hour to 4 hours" in response.content.decode()
    assert snapshot(acme.tenant) == before
    assert client.post(schedule_url(acme.integration), {"action": "interval", "minutes": "240"}).status_code == 302


@pytest.mark.django_db
@pytest.mark.parametrize(
    "data",
    [
        {"action": "pause"},
        {"action": "resume"},
        {"action": "interval", "minutes": "30"},
        {"action": "interval", "minutes": "abc"},
    ],
)
def test_a_viewer_sees_the_schedule_and_is_refused_any_change(acme, log_in, data):
    client = log_in(acme.viewer)
    page = client.get(general_url(acme.integration)).content.decode()
    assert "Acme billing syncs every <strong>1 hour</strong>." in page
    assert "Pause syncs" not in page and 'name="minutes"' not in page
    before = snapshot(acme.tenant)

    response = client.post(schedule_url(acme.integration), data)

    assert response.status_code == 403
    content = response.content.decode()
    assert "Only tenant admins can change the schedule" in content and "Only admins of Acme" in content
    assert snapshot(acme.tenant) == before


@pytest.mark.django_db
def test_a_pause_by_support_shows_and_only_support_lifts_it(acme, log_in):
    support = UserFactory(username="sam", is_staff=True)
    services.set_paused(acme.integration.pk, True, actor=support, reason="vendor migration")
    client = log_in(acme.admin)
    page = client.get(general_url(acme.integration)).content.decode()
    assert "Scheduled syncs are <strong>paused by our support team</strong> (vendor migration)." in page
    assert "Resume syncs" not in page and "Syncs are paused by our support team." in page
    before = snapshot(acme.tenant)

    response = client.post(schedule_url(acme.integration), {"action": "resume"})

    assert response.status_code == 409
    assert "Contact support to resume it; nothing was changed." in response.content.decode()
    assert snapshot(acme.tenant) == before


@pytest.mark.django_db
def test_a_switched_off_integration_is_409_and_a_deleted_one_404(acme, log_in, integration_in):
    idle = integration_in(acme.tenant, Status.INACTIVE, name="Acme sandbox")
    client = log_in(acme.admin)
    assert "Pause syncs" not in client.get(general_url(idle)).content.decode()
    before = snapshot(acme.tenant)

    response = client.post(schedule_url(idle), {"action": "interval", "minutes": "30"})

    assert response.status_code == 409
    assert "Acme sandbox is switched off" in response.content.decode()
    assert snapshot(acme.tenant) == before
    Integration.objects.filter(pk=idle.pk).update(deleted_at=timezone.now(), status=Status.DELETED)
    before = snapshot(acme.tenant)
    assert client.post(schedule_url(idle), {"action": "pause"}).status_code == 404
    assert snapshot(acme.tenant) == before


@pytest.mark.django_db
def test_another_tenants_integration_is_not_found(acme, log_in, integration_in):
    globex = TenantFactory(name="Globex")
    theirs = integration_in(globex, name="Globex billing")
    before = snapshot(acme.tenant, globex)
    response = log_in(acme.admin).post(schedule_url(theirs), {"action": "pause"})
    assert response.status_code == 404
    assert snapshot(acme.tenant, globex) == before


@pytest.mark.django_db
def test_only_post_is_answered(acme, log_in):
    assert log_in(acme.admin).get(schedule_url(acme.integration)).status_code == 405


@pytest.mark.django_db(transaction=True)
def test_the_scheduler_honours_the_customers_pause_and_interval(member, log_in, make_integration, sync):
    tenant = TenantFactory(name="Acme")
    client = log_in(member(tenant, Membership.Role.ADMIN, username="alice"))
    integration = make_integration("healthy", tenant=tenant, name="Acme billing")
    sync(integration)  # the first sync, as onboarding queues it
    assert integration.status == Status.ACTIVE
    Integration.objects.filter(pk=integration.pk).update(next_sync_at=timezone.now() - timedelta(minutes=1))

    assert client.post(schedule_url(integration), {"action": "pause"}).status_code == 302
    assert scheduler.tick() == []
    assert not integration.sessions.filter(trigger=SyncSession.Trigger.SCHEDULE).exists()

    assert client.post(schedule_url(integration), {"action": "interval", "minutes": "45"}).status_code == 302
    assert client.post(schedule_url(integration), {"action": "resume"}).status_code == 302
    # Resumed after its due time: the next tick queues it, and the inline broker runs it.
    Integration.objects.filter(pk=integration.pk).update(next_sync_at=timezone.now() - timedelta(seconds=1))
    (queued,) = scheduler.tick()

    session = SyncSession.objects.get(pk=queued)
    assert (session.trigger, session.state) == (SyncSession.Trigger.SCHEDULE, SyncSession.State.SUCCEEDED)
    integration.refresh_from_db()
    assert integration.sync_interval == timedelta(minutes=45)
    interval = timedelta(minutes=45)
    assert session.finished_at + interval <= integration.next_sync_at <= session.finished_at + interval * 1.1
