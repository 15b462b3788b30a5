"""The console's "Test connection" button: staff with the sync permission test against the live vendor simulator.

Log in, POST from the integration's page, follow the redirect, read the
message; the timeline event, the admin's log entry and the audit record it
becomes are written. Staff without the permission get a 403 and nothing is
recorded or called.
"""

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Permission

from audit.models import AuditRecord
from integrations.models import Integration, IntegrationEvent, SyncedRecord, SyncSession
from issues.models import ErrorCode
from tests.factories import UserFactory

Status = Integration.Status
pytestmark = pytest.mark.django_db


def change_url(integration):
    return f"/admin/integrations/integration/{integration.pk}/change/"


def connection_url(integration):
    return f"/admin/integrations/integration/{integration.pk}/test-connection/"


def shown(response):
    return [(m.level_tag, m.message) for m in response.context["messages"]]


def connection_events(integration):
    return list(
        IntegrationEvent.objects.filter(integration=integration, kind=IntegrationEvent.Kind.CONNECTION_TESTED)
    )


def nothing_synced(integration):
    return (
        not SyncSession.objects.filter(integration=integration).exists()
        and not SyncedRecord.objects.filter(integration=integration).exists()
    )


def test_support_tests_a_working_connection(support_client, support_user, make_integration, vendor_simulator):
    integration = make_integration("healthy")
    page = support_client.get(change_url(integration)).content.decode()
    assert connection_url(integration) in page and "Test connection" in page

    response = support_client.post(connection_url(integration), follow=True)

    assert response.redirect_chain == [(change_url(integration), 302)]
    ((level, text),) = shown(response)
    assert level == "success"
    assert text.startswith(
        f"Connection works: Reached {vendor_simulator.base_url}, credentials accepted, 2 vendor accounts visible. ("
    )
    assert nothing_synced(integration)
    (event,) = connection_events(integration)
    assert event.actor == support_user
    assert "Connection works" in event.note
    (entry,) = LogEntry.objects.filter(object_id=str(integration.pk), content_type__model="integration")
    assert (entry.user, entry.action_flag) == (support_user, CHANGE)
    assert entry.change_message.startswith("Tested the connection: Connection works")
    # Staff are audited once, through the admin's log.
    (record,) = AuditRecord.objects.filter(
        action__in=[AuditRecord.Action.STAFF_ACTION, AuditRecord.Action.CUSTOMER_ACTION]
    )
    assert (record.action, record.actor, record.tenant_id) == (
        AuditRecord.Action.STAFF_ACTION,
        support_user,
        integration.tenant_id,
    )


def test_rejected_credentials_are_an_error_message_with_the_advice(support_client, make_integration):
    integration = make_integration("invalid-key")

    response = support_client.post(connection_url(integration), follow=True)

    ((level, text),) = shown(response)
    catalog = ErrorCode.objects.get(pk="AUTH_INVALID")
    assert level == "error"
    assert f"{catalog.title} (AUTH_INVALID)" in text
    assert f"What to do: {catalog.customer_advice}" in text
    assert nothing_synced(integration)


@pytest.fixture
def viewer_staff(staff_client):
    """Staff who may look at integrations but not start syncs."""
    user = UserFactory(username="reader", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_integration"))
    return staff_client(user)


def test_staff_without_the_permission_are_refused_and_nothing_is_recorded(
    viewer_staff, make_integration, vendor_simulator
):
    integration = make_integration("healthy")
    assert viewer_staff.get(change_url(integration)).status_code == 200
    assert connection_url(integration) not in viewer_staff.get(change_url(integration)).content.decode()
    requests_before = vendor_simulator.stats(integration.settings["account"])["requests"]["total"]
    events_before = IntegrationEvent.objects.filter(integration=integration).count()

    response = viewer_staff.post(connection_url(integration))

    assert response.status_code == 403
    assert IntegrationEvent.objects.filter(integration=integration).count() == events_before
    assert not LogEntry.objects.exists()
    assert not AuditRecord.objects.filter(action=AuditRecord.Action.STAFF_ACTION).exists()
    assert vendor_simulator.stats(integration.settings["account"])["requests"]["total"] == requests_before


def test_get_is_not_allowed(support_client, make_integration):
    integration = make_integration("healthy")
    assert support_client.get(connection_url(integration)).status_code == 405
    assert not connection_events(integration)


def test_an_unknown_integration_is_404(support_client):
    assert support_client.post("/admin/integrations/integration/987654/test-connection/").status_code == 404


def test_a_deactivated_integration_is_refused_in_words(support_client, make_integration):
    from django.utils import timezone

    integration = make_integration("healthy")
    Integration.objects.filter(pk=integration.pk).update(
        deactivated_at=timezone.now(), status=Status.INACTIVE
    )
    assert connection_url(integration) not in support_client.get(change_url(integration)).content.decode()

    response = support_client.post(connection_url(integration), follow=True)

    assert shown(response) == [
        (
            "error",
            (
                "The connection was not tested: This integration is switched off; "
                "reactivate it before testing its connection."
            ),
        )
    ]
    assert not connection_events(integration)
    assert not LogEntry.objects.exists()


def test_too_many_tests_are_refused_in_words(support_client, make_integration, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "connection_tests": (1, 60)}
    integration = make_integration("healthy")
    support_client.post(connection_url(integration), follow=True)

    response = support_client.post(connection_url(integration), follow=True)

    ((level, text),) = shown(response)
    assert level == "error"
    assert "was tested too often in a short time; try again in" in text
    assert len(connection_events(integration)) == 1
