"""Vendor accounts that appear after setup (an address book created later), against a real Radicale.

Before, such an account was never discovered: every contact in it became
ITEM_UNMAPPED. Now every full sync asks the vendor again and follows the
tenant's choice: map new accounts automatically, or raise one issue per
account ("map it") and hold its items until a person decides.
"""

import pytest

from integrations import mapping
from integrations.models import AccountMapping, SyncedRecord, SyncSession, Tenant
from issues.models import SyncIssue
from tests.integrations.test_carddav import Book, carddav_integration, new_book, open_issues  # noqa: F401
from tests.plugins.radicale import radicale_server  # noqa: F401

live_sync = pytest.mark.django_db(transaction=True)
State = SyncSession.State


@pytest.fixture
def two_books(new_book, carddav_integration, sync):  # noqa: F811
    """An integration over all of a user's books, synced once with one book; then a second book appears."""

    def make(choice):
        first = new_book(displayname="Customers")
        first.add("ann", given="Ann", family="Lee", emails=["ann@example.com"])
        integration = carddav_integration(first)
        Tenant.objects.filter(pk=integration.tenant_id).update(new_vendor_accounts=choice)
        assert sync(integration).state == State.SUCCEEDED
        first.server.create_addressbook(first.user, "suppliers", "Suppliers")
        second = Book(first.server, first.user, "suppliers")
        second.add("sam", given="Sam", family="Roe", emails=["sam@example.com"])
        second.add("sue", given="Sue", family="Poe", emails=["sue@example.com"])
        integration.refresh_from_db()
        return integration, second

    return make


@live_sync
def test_a_new_book_is_mapped_automatically_when_the_tenant_chose_so(two_books, sync):
    integration, second = two_books(Tenant.NewVendorAccounts.MAP)

    session = sync(integration)

    assert session.state == State.SUCCEEDED
    mapping_row = AccountMapping.objects.get(integration=integration, vendor_account_id=second.path)
    assert mapping_row.tenant_account == second.path and mapping_row.vendor_account_name == "Suppliers"
    assert SyncedRecord.objects.filter(integration=integration).count() == 3
    assert not SyncIssue.objects.filter(integration=integration, state="open").exists()
    assert any("new vendor account(s) and mapped them automatically" in e["message"] for e in session.log)


@live_sync
def test_a_new_book_raises_one_issue_and_holds_its_contacts_until_mapped(two_books, sync):
    integration, second = two_books(Tenant.NewVendorAccounts.ASK)

    session = sync(integration)

    assert session.state == State.WARNINGS
    issues = open_issues(integration)
    assert list(issues) == [(f"account:{second.path}", "NEW_VENDOR_ACCOUNT")]
    assert "Suppliers" in issues[(f"account:{second.path}", "NEW_VENDOR_ACCOUNT")].message
    # Held, not one ITEM_UNMAPPED per contact; the first book's contact still synced.
    assert SyncedRecord.objects.filter(integration=integration).count() == 1
    assert mapping.mapping_state(integration).unmapped == 1
    integration.refresh_from_db()
    assert integration.mapping_complete  # the rest keeps syncing while the new book waits

    row = AccountMapping.objects.get(integration=integration, vendor_account_id=second.path)
    mapping.save_mapping(integration, {row.pk: ("Suppliers", False)})
    session = sync(integration)

    assert session.state == State.SUCCEEDED
    assert open_issues(integration) == {}
    assert SyncedRecord.objects.filter(integration=integration).count() == 3


@live_sync
def test_a_quick_sync_does_not_ask_for_accounts(two_books, sync):
    integration, second = two_books(Tenant.NewVendorAccounts.ASK)

    sync(integration, kind=SyncSession.Kind.QUICK)

    assert not AccountMapping.objects.filter(integration=integration, vendor_account_id=second.path).exists()


@live_sync
def test_the_mapping_page_shows_the_new_book_and_the_tenant_admin_chooses(two_books, sync):
    from django.test import Client
    from django.urls import reverse

    from audit.models import AuditRecord
    from integrations.models import Membership
    from tests.factories import MembershipFactory, UserFactory

    integration, second = two_books(Tenant.NewVendorAccounts.ASK)
    sync(integration)
    user = UserFactory()
    MembershipFactory(user=user, tenant=integration.tenant, role=Membership.Role.ADMIN)
    client = Client()
    client.force_login(user)
    url = reverse("portal:mapping", args=[integration.pk])

    page = client.get(url).content.decode()
    assert "Suppliers" in page and "New</strong> found by a sync" in page

    rows = list(AccountMapping.objects.filter(integration=integration).order_by("vendor_account_id"))
    data = {f"target_{m.pk}": m.tenant_account for m in rows} | {"new_vendor_accounts": "map"}
    data[f"target_{next(m.pk for m in rows if m.vendor_account_id == second.path)}"] = "Suppliers"
    response = client.post(url, data)

    assert response.status_code == 302
    assert Tenant.objects.get(pk=integration.tenant_id).new_vendor_accounts == "map"
    record = AuditRecord.objects.get(tenant=integration.tenant, action=AuditRecord.Action.CUSTOMER_ACTION, changes__has_key="new_vendor_accounts")
    assert record.actor == user and record.changes["new_vendor_accounts"] == ["ask", "map"]

    response = client.post(url, data | {"new_vendor_accounts": "always"})
    assert response.status_code == 400
    assert Tenant.objects.get(pk=integration.tenant_id).new_vendor_accounts == "map"
