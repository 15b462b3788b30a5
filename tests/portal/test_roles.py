"""Roles in the portal: viewers read; tenant admins sync, re-authenticate, map accounts and manage API keys.

What a viewer may not do answers 403 and changes nothing. What a tenant
admin does runs for real: syncs and credential checks go to the live vendor
simulator, and tasks run inline (tests/settings.py), so a sync has finished
when the POST returns.
"""

import re
from types import SimpleNamespace

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from integrations import api_keys, services
from integrations import status as machine
from integrations.models import AccountMapping, ApiKey, Integration, IntegrationEvent, Membership, SyncSession
from tests.factories import SyncSessionFactory, TenantFactory
from tests.portal.conftest import snapshot

Status = Integration.Status
live = pytest.mark.django_db(transaction=True)


def messages_of(response):
    return [str(m) for m in response.context["messages"]] if response.context else []


# -- viewers ----------------------------------------------------------------------------------------


@pytest.fixture
def viewer_world(member, integration_in):
    tenant = TenantFactory(name="Acme")
    active = integration_in(tenant, name="Acme billing", credentials={"api_key": "good-key"})
    setup = integration_in(tenant, Status.SETUP, name="Acme mailbox")
    mappings = [
        AccountMapping.objects.create(
            integration=setup, vendor_account_id=f"acct-{n}", vendor_account_name=f"Account {n}"
        )
        for n in (1, 2)
    ]
    idle = integration_in(tenant, Status.INACTIVE, name="Acme sandbox", deactivated_for_inactivity=True)
    key, _ = api_keys.create_api_key(tenant, "monitoring")
    return SimpleNamespace(
        tenant=tenant,
        viewer=member(tenant, Membership.Role.VIEWER, username="victor"),
        active=active,
        setup=setup,
        mappings=mappings,
        idle=idle,
        key=key,
    )


VIEWER_FORBIDDEN = [
    pytest.param("post", "sync", "active", {"kind": "quick"}, id="sync"),
    pytest.param("post", "sync", "active", {"kind": "full"}, id="full sync"),
    pytest.param("get", "reauthenticate", "active", None, id="GET reauthenticate"),
    pytest.param("post", "reauthenticate", "active", {"api_key": "new-key"}, id="POST reauthenticate"),
    pytest.param(
        "post", "mapping", "setup", lambda w: {f"target_{m.pk}": "HQ" for m in w.mappings}, id="POST mapping"
    ),
    pytest.param("post", "reactivate", "idle", None, id="reactivate"),
    pytest.param("get", "api_keys", None, None, id="GET api keys"),
    pytest.param("post", "api_keys", None, {"name": "viewer's key"}, id="create api key"),
    pytest.param("post", "api_keys", None, lambda w: {"revoke": str(w.key.pk)}, id="revoke api key"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "name", "target", "data"), VIEWER_FORBIDDEN)
def test_a_viewer_is_forbidden_and_nothing_changes(viewer_world, log_in, method, name, target, data):
    w = viewer_world
    client = log_in(w.viewer)
    url = reverse(f"portal:{name}", args=[getattr(w, target).pk] if target else [])
    before = snapshot(w.tenant)
    payload = data(w) if callable(data) else data
    response = client.get(url) if method == "get" else client.post(url, payload or {})
    assert response.status_code == 403
    assert snapshot(w.tenant) == before
    assert Integration.objects.get(pk=w.active.pk).get_credentials() == {"api_key": "good-key"}


@pytest.mark.django_db
def test_a_viewer_reads_without_the_admin_buttons(viewer_world, log_in):
    w = viewer_world
    client = log_in(w.viewer)
    general = client.get(reverse("portal:general", args=[w.active.pk]))
    assert general.status_code == 200
    content = general.content.decode()
    assert "Sync now" not in content
    assert "Re-authenticate" not in content
    assert reverse("portal:sync", args=[w.active.pk]) not in content
    assert "API keys" not in content

    listing = client.get(reverse("portal:list"))
    assert listing.status_code == 200
    assert "Sync now" not in listing.content.decode()

    mapping = client.get(reverse("portal:mapping", args=[w.setup.pk]))
    assert mapping.status_code == 200
    assert "Only tenant admins can change the mapping." in mapping.content.decode()
    assert "Save mapping" not in mapping.content.decode()

    assert client.get(reverse("portal:issues", args=[w.active.pk])).status_code == 200
    assert client.get(reverse("portal:progress", args=[w.active.pk])).status_code == 200


# -- tenant admins: sync ----------------------------------------------------------------------------


@pytest.fixture
def acme(member):
    tenant = TenantFactory(name="Acme")
    return SimpleNamespace(tenant=tenant, admin=member(tenant, Membership.Role.ADMIN, username="alice"))


@live
def test_a_tenant_admin_syncs_now(acme, log_in, make_integration, sync):
    integration = make_integration("healthy", tenant=acme.tenant, name="Acme billing")
    sync(integration)  # the first sync, as onboarding would queue it
    assert integration.status == Status.ACTIVE
    client = log_in(acme.admin)

    response = client.post(reverse("portal:sync", args=[integration.pk]), {"kind": "quick"}, follow=True)
    assert response.redirect_chain == [(reverse("portal:general", args=[integration.pk]), 302)]
    assert "Quick sync started." in messages_of(response)
    session = SyncSession.objects.filter(integration=integration).latest("queued_at")
    assert (session.kind, session.trigger, session.requested_by) == ("quick", "customer", acme.admin)
    assert session.state == SyncSession.State.SUCCEEDED
    assert IntegrationEvent.objects.filter(
        integration=integration, kind=IntegrationEvent.Kind.SYNC_REQUESTED, session=session, actor=acme.admin
    ).exists()

    response = client.post(reverse("portal:sync", args=[integration.pk]), {"kind": "full"}, follow=True)
    assert "Full sync started." in messages_of(response)
    session = SyncSession.objects.filter(integration=integration).latest("queued_at")
    assert (session.kind, session.trigger, session.state) == ("full", "customer", "succeeded")
    assert SyncSession.objects.filter(integration=integration, trigger="customer").count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "running", "expected"),
    [
        (Status.ACTIVE, True, "The sync was not started: Already syncing: session"),
        (Status.INACTIVE, False, "The sync was not started: The integration is inactive; reactivate it first."),
        (
            Status.QUALITY_ASSURANCE,
            False,
            "The sync was not started: The integration is under quality assurance; only staff can run it.",
        ),
        (
            Status.SETUP,
            False,
            "The sync was not started: Account mapping is incomplete: map or ignore every vendor account first.",
        ),
        (
            Status.CREDENTIALS_INVALID,
            False,
            "The sync was not started: Syncs are paused until new credentials are saved (re-authenticate).",
        ),
    ],
    ids=["already syncing", "inactive", "quality assurance", "mapping incomplete", "credentials invalid"],
)
def test_a_sync_that_cannot_run_is_refused_with_a_clear_message(
    acme, log_in, integration_in, status, running, expected
):
    integration = integration_in(acme.tenant, status, name="Acme billing")
    if running:
        SyncSessionFactory(
            integration=integration, state=SyncSession.State.RUNNING, items_seen=10, started_at=timezone.now()
        )
    before = snapshot(acme.tenant)
    client = log_in(acme.admin)
    for kind in ("quick", "full"):
        response = client.post(reverse("portal:sync", args=[integration.pk]), {"kind": kind}, follow=True)
        assert response.status_code == 200
        assert [m for m in messages_of(response) if m.startswith(expected)], messages_of(response)
        if running:
            assert [m for m in messages_of(response) if m.endswith("10 items so far.")], messages_of(response)
    assert snapshot(acme.tenant) == before
    if not running:
        # The General tab says so before anyone presses a button.
        general = client.get(reverse("portal:general", args=[integration.pk])).content.decode()
        assert "Sync unavailable:" in general
        assert "Sync now" not in general


@pytest.mark.django_db
def test_an_unknown_kind_of_sync_is_refused(acme, log_in, integration_in):
    integration = integration_in(acme.tenant, name="Acme billing")
    before = snapshot(acme.tenant)
    response = log_in(acme.admin).post(
        reverse("portal:sync", args=[integration.pk]), {"kind": "everything"}, follow=True
    )
    assert "Unknown kind of sync; choose quick or full." in messages_of(response)
    assert snapshot(acme.tenant) == before


# -- tenant admins: re-authenticate -----------------------------------------------------------------


@live
def test_a_tenant_admin_reauthenticates_against_the_vendor(acme, log_in, make_integration, sync):
    integration = make_integration("expired-token", tenant=acme.tenant, name="Pax8 billing")
    failed = sync(integration)
    assert (integration.status, failed.error_code_id) == (Status.AUTH_FAILING, "AUTH_EXPIRED")
    set_at = integration.credentials_set_at
    client = log_in(acme.admin)
    url = reverse("portal:reauthenticate", args=[integration.pk])

    page = client.get(url)
    assert page.status_code == 200
    assert 'name="api_key"' in page.content.decode()

    rejected = client.post(url, {"api_key": "wrong-key"})
    assert rejected.status_code == 400
    content = rejected.content.decode()
    assert "The vendor rejected these credentials." in content
    assert "The API key is not valid" in content  # the vendor's own reason
    assert "Your old credentials were kept." in content
    assert "wrong-key" not in content
    integration.refresh_from_db()
    assert integration.get_credentials() == {"api_key": "good-key"}
    assert integration.credentials_set_at == set_at
    assert integration.status == Status.AUTH_FAILING
    assert list(SyncSession.objects.filter(integration=integration)) == [failed]

    empty = client.post(url, {"api_key": ""})
    assert empty.status_code == 400
    assert SyncSession.objects.filter(integration=integration).count() == 1

    accepted = client.post(url, {"api_key": "new-key"}, follow=True)
    assert accepted.redirect_chain == [(reverse("portal:general", args=[integration.pk]), 302)]
    assert "The vendor accepted the new credentials. A full sync has started." in messages_of(accepted)
    integration.refresh_from_db()
    assert integration.get_credentials() == {"api_key": "new-key"}
    assert integration.credentials_set_at > set_at
    session = SyncSession.objects.filter(integration=integration).exclude(pk=failed.pk).get()
    assert (session.kind, session.trigger, session.requested_by) == ("full", "reauth", acme.admin)
    assert session.state == SyncSession.State.SUCCEEDED
    assert integration.status == Status.ACTIVE
    assert IntegrationEvent.objects.filter(
        integration=integration, kind=IntegrationEvent.Kind.CREDENTIALS_UPDATED, actor=acme.admin
    ).exists()


@live
@pytest.mark.parametrize("why", ["mapping incomplete", "a sync is running"])
def test_reauthenticating_when_no_full_sync_can_start_does_not_claim_one(
    acme, log_in, make_integration, sync, why
):
    if why == "mapping incomplete":
        integration = make_integration(
            "healthy", tenant=acme.tenant, name="Acme mailbox", manual_mapping=True
        )
        new_key = "good-key"
    else:
        integration = make_integration("expired-token", tenant=acme.tenant, name="Pax8 billing")
        sync(integration)
        # A retry is under way with the old credentials when the customer saves new ones.
        SyncSessionFactory(integration=integration, state=SyncSession.State.RUNNING, trigger="retry")
        new_key = "new-key"

    response = log_in(acme.admin).post(
        reverse("portal:reauthenticate", args=[integration.pk]), {"api_key": new_key}, follow=True
    )
    integration.refresh_from_db()
    assert integration.get_credentials() == {"api_key": new_key}
    started = SyncSession.objects.filter(integration=integration, trigger=SyncSession.Trigger.REAUTH).exists()
    claimed = [m for m in messages_of(response) if "A full sync has started." in m]
    # The customer is told what really happened: no full sync was queued here.
    assert started or not claimed, (messages_of(response), started)


# -- tenant admins: account mapping -----------------------------------------------------------------


@live
def test_a_tenant_admin_maps_accounts_and_the_first_sync_starts(acme, log_in, make_integration):
    integration = make_integration("healthy", tenant=acme.tenant, name="Acme mailbox", manual_mapping=True)
    assert (integration.status, integration.mapping_complete) == (Status.SETUP, False)
    northwind, contoso = AccountMapping.objects.filter(integration=integration).order_by("vendor_account_id")
    assert (northwind.vendor_account_name, contoso.vendor_account_name) == (
        "Northwind Retail",
        "Contoso Wholesale",
    )
    client = log_in(acme.admin)
    url = reverse("portal:mapping", args=[integration.pk])

    page = client.get(url).content.decode()
    assert "Northwind Retail" in page and "Contoso Wholesale" in page
    assert "Save mapping" in page

    # Both a target and "ignore" for one account: refused, nothing saved.
    before = snapshot(acme.tenant)
    invalid = client.post(url, {f"target_{northwind.pk}": "Acme North", f"ignore_{northwind.pk}": "on"})
    assert invalid.status_code == 400
    assert "Either map the account or ignore it, not both." in invalid.content.decode()
    assert snapshot(acme.tenant) == before

    # One account decided: saved, still in setup, no sync.
    partial = client.post(url, {f"target_{northwind.pk}": "Acme North"}, follow=True)
    assert "Mapping saved; 1 vendor account still needs a target or to be ignored." in messages_of(partial)
    integration.refresh_from_db()
    assert (integration.status, integration.mapping_complete) == (Status.SETUP, False)
    assert not SyncSession.objects.filter(integration=integration).exists()

    done = client.post(
        url, {f"target_{northwind.pk}": "Acme North", f"ignore_{contoso.pk}": "on"}, follow=True
    )
    assert "Mapping complete: the first sync has started." in messages_of(done)
    northwind.refresh_from_db()
    contoso.refresh_from_db()
    assert (northwind.tenant_account, northwind.ignored) == ("Acme North", False)
    assert (contoso.tenant_account, contoso.ignored) == ("", True)
    integration.refresh_from_db()
    assert integration.mapping_complete
    session = SyncSession.objects.get(integration=integration)
    assert (session.kind, session.trigger, session.requested_by) == ("full", "customer", acme.admin)
    assert session.state in SyncSession.FINISHED_STATES
    assert session.items_created > 0
    assert integration.first_sync_finished_at is not None
    assert integration.status != Status.SETUP
    # Only Northwind's items were stored; Contoso's were ignored.
    assert 0 < integration.records.count() < session.items_seen


# -- tenant admins: API keys ------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_tenant_admin_creates_and_revokes_api_keys(acme, log_in, integration_in):
    integration_in(acme.tenant, name="Acme billing")
    client = log_in(acme.admin)
    url = reverse("portal:api_keys")
    assert client.get(url).status_code == 200

    created = client.post(url, {"name": "monitoring script"})
    assert created.status_code == 200
    content = created.content.decode()
    raw = re.search(
        r'<div class="card notice" id="new-key">.*?value="(sck_[^"]+)"', content, re.DOTALL
    ).group(1)
    key = ApiKey.objects.get(tenant=acme.tenant)
    assert key.name == "monitoring script"
    assert key.created_by == acme.admin
    assert key.key_hash == ApiKey.hash_key(raw)
    assert key.key_prefix == raw[:10]
    stored = ApiKey.objects.filter(pk=key.pk).values().get()
    assert raw not in [str(v) for v in stored.values()]

    # Shown once: the list shows only the prefix afterwards.
    again = client.get(url).content.decode()
    assert raw not in again
    assert key.key_prefix in again

    api = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.get("/api/v1/integrations/").status_code == 200

    revoked = client.post(url, {"revoke": str(key.pk)}, follow=True)
    assert revoked.redirect_chain == [(url, 302)]
    assert f"Key {key} revoked." in messages_of(revoked)
    key.refresh_from_db()
    assert key.revoked_at is not None
    denied = api.get("/api/v1/integrations/")
    assert denied.status_code == 401
    assert denied.json()["error"]["code"] == "api_key_revoked"

    twice = client.post(url, {"revoke": str(key.pk)}, follow=True)
    assert f"Key {key} was already revoked." in messages_of(twice)

    nameless = client.post(url, {"name": ""})
    assert nameless.status_code == 400
    assert ApiKey.objects.filter(tenant=acme.tenant).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("key_id", ["", "abc", "-1", "1.0", "987654", "²", "99999999999999999999999"])
def test_revoking_a_malformed_or_unknown_key_id_is_not_found(acme, log_in, key_id):
    api_keys.create_api_key(acme.tenant, "monitoring")
    before = snapshot(acme.tenant)
    response = log_in(acme.admin).post(reverse("portal:api_keys"), {"revoke": key_id})
    assert response.status_code == 404
    assert snapshot(acme.tenant) == before


# -- tenant admins: reactivate ----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_tenant_admin_reactivates_only_what_inactivity_switched_off(
    acme, log_in, integration_in, staff_user
):
    idle = integration_in(acme.tenant, name="Acme sandbox")
    services.perform_action(idle.pk, machine.Action.DEACTIVATE, note="No API request for 14 days.")
    Integration.objects.filter(pk=idle.pk).update(deactivated_for_inactivity=True)
    switched_off = integration_in(acme.tenant, name="Acme legacy")
    services.perform_action(
        switched_off.pk, machine.Action.DEACTIVATE, actor=staff_user, note="Customer asked."
    )
    client = log_in(acme.admin)

    general = client.get(reverse("portal:general", args=[idle.pk])).content.decode()
    assert "Reactivate" in general
    response = client.post(reverse("portal:reactivate", args=[idle.pk]), follow=True)
    assert "Reactivated." in messages_of(response)
    idle.refresh_from_db()
    assert (idle.status, idle.deactivated_at, idle.deactivated_for_inactivity) == (Status.ACTIVE, None, False)
    assert IntegrationEvent.objects.filter(
        integration=idle, kind=IntegrationEvent.Kind.REACTIVATED, actor=acme.admin
    ).exists()

    assert "Reactivate" not in client.get(reverse("portal:general", args=[switched_off.pk])).content.decode()
    before = snapshot(acme.tenant)
    refused = client.post(reverse("portal:reactivate", args=[switched_off.pk]), follow=True)
    assert (
        "This integration was switched off by our team; contact support to turn it back on."
        in messages_of(refused)
    )
    assert snapshot(acme.tenant) == before
    switched_off.refresh_from_db()
    assert switched_off.status == Status.INACTIVE
