"""The customer's words on the portal: each test pins a sentence the portal used to get wrong.

- a session's duration read "0:00:03.522673";
- "0 with issues" while 12 items had failed;
- after staff revoked the credentials the customer read "Sign-in has failed for several days";
- a vendor's refusal without a full stop ran into the next sentence ("...expired Your old credentials");
- "Last sync: 0 minutes ago".
"""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from integrations import status as machine
from integrations.models import Integration, Membership, SyncSession
from integrations.services import perform_action
from integrations.statuses import DECLARATIONS
from tests.factories import SyncSessionFactory, TenantFactory, UserFactory

Status = Integration.Status
pytestmark = pytest.mark.django_db


@pytest.fixture
def customer(member, log_in):
    tenant = TenantFactory(name="Acme")
    admin = member(tenant, Membership.Role.ADMIN, username="alice")
    return tenant, log_in(admin)


def general(client, integration):
    response = client.get(reverse("portal:general", args=[integration.pk]))
    assert response.status_code == 200
    return response.content.decode()


def finished_session(integration, **counters):
    now = timezone.now()
    session = SyncSessionFactory(
        integration=integration,
        state=SyncSession.State.WARNINGS,
        queued_at=now - timedelta(minutes=1),
        started_at=now - timedelta(seconds=30),
        finished_at=now - timedelta(seconds=30) + timedelta(seconds=3, microseconds=522673),
        **counters,
    )
    Integration.objects.filter(pk=integration.pk).update(last_session=session)
    integration.refresh_from_db()
    return session


def test_the_last_sync_lasted_seconds_not_a_timedelta(customer, integration_in):
    tenant, client = customer
    integration = integration_in(tenant)
    finished_session(integration, items_seen=120)

    page = general(client, integration)

    assert "<dt>Duration</dt><dd>3.5 s</dd>" in page
    assert "0:00:03" not in page


def test_items_that_failed_count_among_those_with_issues(customer, integration_in):
    tenant, client = customer
    integration = integration_in(tenant, Status.WARNINGS)
    finished_session(integration, items_seen=120, items_created=100, items_failed=12, items_warnings=3)

    page = general(client, integration)

    assert "· 15 with issues</dd>" in page  # 12 failed (unmapped) + 3 with warnings
    assert "0 with issues" not in page and "3 with issues" not in page


def test_revoked_credentials_are_not_said_to_have_failed_for_days(customer, integration_in, staff_user):
    tenant, client = customer
    integration = integration_in(tenant, credentials={"api_key": "good-key"})

    perform_action(integration.pk, machine.Action.CREDENTIALS_REVOKED, actor=staff_user, note="offboarding")
    integration.refresh_from_db()
    assert integration.status == Status.CREDENTIALS_INVALID
    page = general(client, integration)

    assert "Our support team removed the saved credentials" in page
    assert "Sign-in has failed for several days" not in page
    assert "Paused: new credentials needed" in page  # the headline is the status's own


def test_credentials_that_kept_failing_still_say_so(customer, integration_in):
    tenant, client = customer
    integration = integration_in(tenant, Status.CREDENTIALS_INVALID)

    page = general(client, integration)

    assert DECLARATIONS[Status.CREDENTIALS_INVALID].meaning in page
    assert "Our support team removed the saved credentials" not in page


def test_the_list_says_just_now_and_never(customer, integration_in):
    tenant, client = customer
    integration = integration_in(tenant, last_success_at=None)
    session = finished_session(integration)
    SyncSession.objects.filter(pk=session.pk).update(finished_at=timezone.now() - timedelta(seconds=5))

    page = client.get(reverse("portal:list")).content.decode()

    assert "<dt>Last sync</dt><dd>just now</dd>" in page
    assert "<dt>Last success</dt><dd>never</dd>" in page
    assert "0 minutes" not in page


@pytest.mark.django_db(transaction=True)
def test_a_refusal_from_the_vendor_ends_before_the_next_sentence(member, log_in, make_integration, sync):
    tenant = TenantFactory(name="Acme")
    client = log_in(member(tenant, Membership.Role.ADMIN, username="alice"))
    integration = make_integration("expired-token", tenant=tenant, name="Pax8 billing")
    sync(integration)

    # The old key, which the vendor now answers with "The API key has expired" (no full stop).
    response = client.post(reverse("portal:reauthenticate", args=[integration.pk]), {"api_key": "good-key"})

    assert response.status_code == 400
    content = response.content.decode()
    assert "The API key has expired. Your old credentials were kept." in content
    assert "expired Your old credentials" not in content


def test_the_general_tab_reads_a_viewer_the_same_words(member, log_in, integration_in):
    """Viewers read the same General tab: the revoked meaning is not an admin's privilege."""
    tenant = TenantFactory(name="Acme")
    viewer = log_in(member(tenant, username="victor"))
    integration = integration_in(tenant, credentials={"api_key": "good-key"})
    perform_action(integration.pk, machine.Action.CREDENTIALS_REVOKED, actor=UserFactory(is_staff=True), note="")

    assert "Our support team removed the saved credentials" in general(viewer, Integration.objects.get(pk=integration.pk))


def test_one_item_synced_so_far_is_one_item(customer, integration_in):
    tenant, client = customer
    integration = integration_in(tenant)
    SyncSessionFactory(integration=integration, state=SyncSession.State.RUNNING, started_at=timezone.now(), items_seen=1)

    assert "Syncing: 1 item</span>" in general(client, integration)  # was "Syncing: 1 items"
