"""The audit trail: one record per sign-in, key, webhook, credentials change and person's action.

Each record names the actor, the tenant, the address and what changed (never
a secret). Staff read the trail in the admin, where nobody can edit it; a
tenant's admins read their own on the portal's Activity page.
"""

import json

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from alerts import webhooks
from audit.models import AuditRecord
from integrations import api_keys, reauth
from integrations.models import Integration, Membership
from tests.factories import IntegrationFactory, MembershipFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db
A = AuditRecord.Action
PASSWORD = "a-Good-password-42"


@pytest.fixture
def acme_admin():
    user = UserFactory(username="alice", password=PASSWORD)
    MembershipFactory(user=user, tenant=TenantFactory(name="Acme", slug="acme"), role=Membership.Role.ADMIN)
    return user


def portal_client(user, address="203.0.113.20"):
    client = Client(REMOTE_ADDR=address)
    client.force_login(user)
    return client


def records(action):
    return list(AuditRecord.objects.filter(action=action).order_by("pk"))


def test_sign_ins_and_failed_sign_ins_are_recorded_with_the_address(acme_admin):
    client = Client()
    client.post(reverse("portal:login"), {"username": "alice", "password": "wrong"}, REMOTE_ADDR="203.0.113.21")
    client.post(reverse("portal:login"), {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="203.0.113.21")

    (failed,) = records(A.LOGIN_FAILED)
    assert (failed.actor_label, failed.address, failed.tenant_id) == ("alice", "203.0.113.21", acme_admin.membership.tenant_id)
    assert PASSWORD not in json.dumps(failed.changes) and "wrong" not in json.dumps(failed.changes)
    (login,) = records(A.LOGIN)
    assert (login.actor, login.address, login.target) == (acme_admin, "203.0.113.21", "portal")


def test_api_keys_created_and_revoked_in_the_portal(acme_admin):
    client = portal_client(acme_admin)
    client.post(reverse("portal:api_keys"), {"name": "monitoring"})
    key = acme_admin.membership.tenant.api_keys.get()
    client.post(reverse("portal:api_keys"), {"revoke": str(key.pk)})

    created, revoked = records(A.API_KEY_CREATED) + records(A.API_KEY_REVOKED)
    for record in (created, revoked):
        assert (record.actor, record.tenant_id, record.address) == (acme_admin, key.tenant_id, "203.0.113.20")
        assert record.changes["key_id"] == key.pk
        assert "monitoring" in record.target


def test_webhooks_created_deleted_and_disabled(acme_admin):
    tenant = acme_admin.membership.tenant
    client = portal_client(acme_admin)
    client.post(reverse("portal:webhooks"), {"url": "http://127.0.0.1:9/hook"})
    endpoint = tenant.webhooks.get()
    client.post(reverse("portal:webhooks"), {"delete": str(endpoint.pk)})
    other, _ = webhooks.create_endpoint(tenant, "http://127.0.0.1:9/other")
    webhooks.disable(other, timezone.now(), "Failing since yesterday: HTTP 500")

    assert [r.target for r in records(A.WEBHOOK_CREATED)] == ["http://127.0.0.1:9/hook", "http://127.0.0.1:9/other"]
    (deleted,) = records(A.WEBHOOK_DELETED)
    assert (deleted.actor, deleted.target) == (acme_admin, "http://127.0.0.1:9/hook")
    (disabled,) = records(A.WEBHOOK_DISABLED)
    assert (disabled.actor, disabled.actor_label, disabled.tenant_id) == (None, "system", tenant.pk)
    assert "HTTP 500" in disabled.changes["reason"]


def test_credentials_changed_by_any_path_name_the_fields_never_the_values(acme_admin, monkeypatch, error_catalog):
    monkeypatch.setattr(reauth, "check_with_vendor", lambda integration, credentials: credentials)
    tenant = acme_admin.membership.tenant
    integration = IntegrationFactory(
        tenant=tenant, status=Integration.Status.AUTH_FAILING, credentials={"api_key": "old-secret-value"}
    )
    portal_client(acme_admin).post(reverse("portal:reauthenticate", args=[integration.pk]), {"api_key": "new-secret-value"})
    link = reauth.create_link(integration, recipient="it@acme.example", send=False)
    link_client = Client(REMOTE_ADDR="198.51.100.30")
    link_client.get(f"/reauth/{link.token}/")
    link_client.post("/reauth/continue/", {"api_key": "newest-secret-value"})

    portal, by_link = records(A.CREDENTIALS_CHANGED)
    assert (portal.actor, portal.tenant_id, portal.changes["fields"]) == (acme_admin, tenant.pk, ["api_key"])
    assert (by_link.actor, by_link.actor_label, by_link.address) == (None, "anonymous", "198.51.100.30")
    every_text = json.dumps([[r.target, r.changes, r.actor_label] for r in AuditRecord.objects.all()])
    assert "secret-value" not in every_text


def test_a_staff_action_in_the_admin_is_recorded_for_the_tenant(error_catalog):
    staff = UserFactory(username="root", is_staff=True, is_superuser=True)
    integration = IntegrationFactory(status=Integration.Status.ACTIVE, credentials={"api_key": "k"})
    client = Client(REMOTE_ADDR="192.0.2.50")
    client.force_login(staff)
    response = client.post(
        reverse("admin:integrations_integration_action", args=[integration.pk, "pause"]),
        {"reason": "Vendor maintenance tonight", "apply": "1"},
    )
    assert response.status_code in (200, 302)

    (action,) = AuditRecord.objects.filter(action=A.STAFF_ACTION)
    assert (action.actor, action.tenant_id, action.address) == (staff, integration.tenant_id, "192.0.2.50")
    assert "maintenance" in action.changes["message"].lower() or "pause" in action.changes["message"].lower()


def test_the_trail_is_read_only_in_the_admin(acme_admin):
    api_keys.create_api_key(acme_admin.membership.tenant, "monitoring")
    record = AuditRecord.objects.get()
    staff = UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff)
    assert client.get(reverse("admin:audit_auditrecord_changelist")).status_code == 200
    assert client.get(reverse("admin:audit_auditrecord_change", args=[record.pk])).status_code == 200
    assert client.post(reverse("admin:audit_auditrecord_change", args=[record.pk]), {"target": "x"}).status_code == 403
    assert client.post(reverse("admin:audit_auditrecord_delete", args=[record.pk]), {"post": "yes"}).status_code == 403
    assert client.get(reverse("admin:audit_auditrecord_add")).status_code == 403
    record.refresh_from_db()
    assert record.target != "x"


def test_the_activity_page_shows_a_tenant_admin_their_own_trail_only(acme_admin):
    tenant = acme_admin.membership.tenant
    api_keys.create_api_key(tenant, "acme monitoring")
    api_keys.create_api_key(TenantFactory(name="Globex"), "globex monitoring")
    staff = UserFactory(username="root", is_staff=True)
    from audit import services as audit

    audit.record(A.STAFF_ACTION, tenant=tenant, actor=staff, target="Acme billing", address="192.0.2.9", changes={"message": "Paused."})

    page = portal_client(acme_admin).get(reverse("portal:activity")).content.decode()

    assert "acme monitoring" in page and "globex monitoring" not in page
    assert "SyncConsole support" in page and "root" not in page and "192.0.2.9" not in page


def test_viewers_do_not_see_the_activity_page(acme_admin):
    viewer = UserFactory(username="victor")
    MembershipFactory(user=viewer, tenant=acme_admin.membership.tenant, role=Membership.Role.VIEWER)
    assert portal_client(viewer).get(reverse("portal:activity")).status_code == 403
