"""Refusals in the console (syncconsole/admin_errors.py): a console page naming the permission and its groups.

They used to be Django's bare "403 Forbidden". Nothing changes on a refusal.
"""

import pytest
from django.contrib.auth.models import Group, Permission

from integrations.models import Integration, IntegrationEvent, Membership
from tests.factories import IntegrationFactory, MembershipFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db


def action_url(integration, name):
    return f"/admin/integrations/integration/{integration.pk}/action/{name}/"


def refusal(response):
    assert response.status_code == 403
    content = response.content.decode()
    assert 'id="sc-forbidden"' in content
    assert "403 Forbidden" not in content
    assert "SyncConsole" in content  # the console's header: its style, its navigation
    return content


def test_support_asking_for_an_engineering_action_is_told_which_group_holds_it(support_client):
    integration = IntegrationFactory(status=Integration.Status.ACTIVE, credentials={"api_key": "k"})

    for response in (
        support_client.get(action_url(integration, "delete")),
        support_client.post(action_url(integration, "delete"), {"reason": "r"}),
    ):
        content = refusal(response)
        assert "Delete: you do not have the permission this needs" in content
        assert "<strong>Can delete and restore</strong>" in content
        assert "integrations.delete_restore_integration" in content
        assert "The group <strong>Engineering</strong> holds it." in content
        assert "Ask an administrator to add you (support) to it." in content

    integration.refresh_from_db()
    assert integration.status == Integration.Status.ACTIVE
    assert not IntegrationEvent.objects.filter(integration=integration).exists()


def test_a_staff_user_without_a_group_is_told_both_groups_for_a_list(staff_client, staff_groups):
    client = staff_client(UserFactory(username="newcomer", is_staff=True))

    content = refusal(client.get("/admin/integrations/integration/"))

    assert "<strong>Can view integration</strong>" in content
    assert "The groups <strong>Engineering</strong> and <strong>Support</strong> hold it." in content


def test_a_refused_sync_without_the_group_names_support(staff_client, staff_groups):
    integration = IntegrationFactory(status=Integration.Status.ACTIVE)
    viewer = UserFactory(username="viewer-only", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_integration"))

    content = refusal(staff_client(viewer).post(action_url(integration, "sync_now")))

    assert "Sync now: you do not have the permission this needs" in content
    assert "<strong>Can start a sync</strong>" in content
    assert "The groups <strong>Engineering</strong> and <strong>Support</strong> hold it." in content
    assert not integration.sessions.exists()


def test_a_permission_no_group_holds_says_so(support_client):
    Group.objects.get(name="Engineering").permissions.remove(Permission.objects.get(codename="revoke_credentials"))
    integration = IntegrationFactory(status=Integration.Status.ACTIVE, credentials={"api_key": "k"})

    content = refusal(support_client.get(action_url(integration, "revoke_credentials")))

    assert "No staff group holds it" in content


def test_refusals_outside_the_console_keep_their_own_answer(client):
    """A tenant viewer asking for an admin's action in the portal is not sent to the console's page."""
    tenant = TenantFactory()
    viewer = UserFactory(username="vera")
    MembershipFactory(user=viewer, tenant=tenant, role=Membership.Role.VIEWER)
    integration = IntegrationFactory(tenant=tenant)
    client.force_login(viewer)

    response = client.post(f"/portal/integrations/{integration.pk}/sync/", {"kind": "quick"})

    assert response.status_code == 403
    assert 'id="sc-forbidden"' not in response.content.decode()
    assert not integration.sessions.exists()
