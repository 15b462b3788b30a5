"""Unchanged pages of a full sync are skipped, and nothing is lost or kept that should not be (sync/fingerprints.py)."""

import pytest
from django.db import connection
from django.utils import timezone

from integrations.connectors.rest.connector import RestConnector
from integrations.models import AccountMapping, PageFingerprint, SeenItem, SeenRange, SyncedRecord, SyncSession
from integrations.sync import fingerprints
from integrations.sync.records import existing_rows, mark_unseen_deleted
from tests.factories import IntegrationFactory, SyncIssueFactory, SyncSessionFactory

FULL, QUICK = SyncSession.Kind.FULL, SyncSession.Kind.QUICK


@pytest.fixture
def parsed(monkeypatch):
    """How many vendor rows the REST connector turned into items (the work a skipped page saves)."""
    calls = []
    original = RestConnector.parse_items

    def counting(self, rows):
        calls.extend(rows)
        return original(self, rows)

    monkeypatch.setattr(RestConnector, "parse_items", counting)
    return calls


def counts(session):
    return (session.items_seen, session.items_created, session.items_updated, session.items_unchanged, session.items_deleted)


@pytest.mark.django_db(transaction=True)
def test_an_unchanged_full_resync_reads_no_item_and_keeps_every_record(make_integration, sync, parsed):
    integration = make_integration("big-3000", page_size=500)
    records = SyncedRecord.objects.filter(integration=integration)
    first = sync(integration)
    assert counts(first) == (3000, 3000, 0, 0, 0)
    assert len(parsed) == 3000
    assert PageFingerprint.objects.filter(integration=integration).count() == 6
    stored = dict(records.values_list("external_id", "content_hash"))

    parsed.clear()
    again = sync(integration)
    assert again.state == SyncSession.State.SUCCEEDED
    assert counts(again) == (3000, 0, 0, 3000, 0)
    assert (again.pages, again.items_total) == (6, 3000)
    assert parsed == []
    assert dict(records.filter(deleted=False).values_list("external_id", "content_hash")) == stored
    assert not SeenItem.objects.exists() and not SeenRange.objects.exists()
    # Still valid for the next one.
    assert PageFingerprint.objects.filter(integration=integration).count() == 6
    third = sync(integration)
    assert counts(third) == (3000, 0, 0, 3000, 0)
    assert parsed == []


@pytest.mark.django_db(transaction=True)
def test_pages_the_vendor_changed_are_read_and_what_it_dropped_is_deleted(make_integration, sync, vendor_simulator, parsed):
    integration = make_integration("big-3000", page_size=500)
    account = integration.settings["account"]
    records = SyncedRecord.objects.filter(integration=integration)
    sync(integration)
    sync(integration)  # unchanged: skipped
    # A change on the fifth page only (the order is the vendor's: by id).
    vendor_simulator.control(account, change=["item-0002300"])
    parsed.clear()
    changed = sync(integration)
    assert counts(changed) == (3000, 0, 1, 2999, 0)
    assert len(parsed) == 500
    assert records.get(external_id="item-0002300").data["name"].endswith(" (v2)")

    # A dropped item shifts every later page: they are all read, and the item is deleted.
    vendor_simulator.control(account, drop=["item-0001200"])
    parsed.clear()
    dropped = sync(integration)
    assert counts(dropped) == (2999, 0, 0, 2999, 1)
    assert 1500 <= len(parsed) <= 2499
    assert list(records.filter(deleted=True).values_list("external_id", flat=True)) == ["item-0001200"]
    assert records.filter(deleted=False).count() == 2999


@pytest.mark.django_db(transaction=True)
def test_a_quick_sync_that_writes_drops_the_fingerprints_and_one_that_does_not_keeps_them(
    make_integration, sync, vendor_simulator, parsed
):
    integration = make_integration("big-1000", page_size=250)
    account = integration.settings["account"]
    fingerprinted = PageFingerprint.objects.filter(integration=integration)
    sync(integration)
    assert fingerprinted.count() == 4
    assert counts(sync(integration, kind=QUICK))[:3] == (0, 0, 0)
    assert fingerprinted.count() == 4

    # Changed, then changed back: the pages read as they did, the records do not.
    vendor_simulator.control(account, change=["item-0000010"])
    assert sync(integration, kind=QUICK).items_updated == 1
    assert not fingerprinted.exists()
    vendor_simulator.reset(account)
    parsed.clear()
    full = sync(integration)
    assert len(parsed) == 1000
    assert full.items_updated == 1
    assert not SyncedRecord.objects.get(integration=integration, external_id="item-0000010").data["name"].endswith("(v2)")
    assert fingerprinted.count() == 4


@pytest.mark.django_db(transaction=True)
def test_nothing_is_skipped_with_an_open_issue_or_another_mapping(make_integration, sync, parsed):
    integration = make_integration("big-1000", page_size=500)
    sync(integration)
    SyncIssueFactory(integration=integration, tenant=integration.tenant)
    integration.refresh_from_db()
    assert integration.open_issue_count == 1
    parsed.clear()
    sync(integration)
    assert len(parsed) == 1000

    integration.issues.update(state="resolved")
    integration.open_issue_count = 0
    integration.save(update_fields=["open_issue_count"])
    AccountMapping.objects.filter(integration=integration).update(tenant_account="somewhere-else")
    parsed.clear()
    sync(integration)
    assert len(parsed) == 1000
    parsed.clear()
    sync(integration)
    assert parsed == []


@pytest.mark.django_db
def test_a_range_that_holds_records_of_another_page_is_not_kept():
    integration = IntegrationFactory()
    now = timezone.now()
    for external_id in ("a1", "a2", "a3", "b1", "b2"):
        SyncedRecord.objects.create(
            integration=integration, item_type="item", external_id=external_id, content_hash="h", data={},
            first_synced_at=now, last_synced_at=now,
        )
    candidates = {
        "exact": ("d", "a1", "a3", 3),
        "holds-more": ("d", "a1", "b1", 3),  # b1 is another page's
        "gone": ("d", "c1", "c9", 2),
    }
    assert fingerprints.exact_ranges(integration, "item", candidates) == {"exact"}


@pytest.mark.django_db
def test_the_database_order_decides_a_range(monkeypatch):
    """Under a collation that is not code point order, the database says which id is lowest."""
    monkeypatch.setitem(fingerprints._python_order, connection.alias, connection.vendor == "sqlite")
    ids = ["b", "B", "a", "Z", "é"]
    low, high = fingerprints.id_range(ids)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT min(x), max(x) FROM (" + " UNION ALL ".join(["SELECT %s AS x"] * len(ids)) + ") ids", ids
        )
        assert (low, high) == tuple(cursor.fetchone())


@pytest.mark.django_db
def test_only_records_outside_the_seen_ranges_and_items_are_deleted():
    integration = IntegrationFactory()
    session = SyncSessionFactory(integration=integration, state=SyncSession.State.RUNNING)
    now = timezone.now()
    names = [f"id-{n:02d}" for n in range(20)]
    for external_id in names:
        SyncedRecord.objects.create(
            integration=integration, item_type="item", external_id=external_id, content_hash="h", data={},
            first_synced_at=now, last_synced_at=now,
        )
    SeenRange.objects.create(session_id=session.pk, item_type="item", low="id-02", high="id-05")
    SeenRange.objects.create(session_id=session.pk, item_type="item", low="id-10", high="id-14")
    SeenItem.objects.create(session_id=session.pk, external_id="id-07")
    SyncedRecord.objects.filter(external_id="id-17").update(seen_session_id=session.pk)
    # Another session's range says nothing about this one.
    SeenRange.objects.create(session_id=session.pk + 1000, item_type="item", low="id-00", high="id-19")

    assert mark_unseen_deleted(integration, session, "item", now) == 9
    kept = set(SyncedRecord.objects.filter(deleted=False).values_list("external_id", flat=True))
    assert kept == {"id-02", "id-03", "id-04", "id-05", "id-07", "id-10", "id-11", "id-12", "id-13", "id-14", "id-17"}


@pytest.mark.django_db
def test_overlapping_ranges_still_delete_only_what_was_not_seen():
    integration = IntegrationFactory()
    session = SyncSessionFactory(integration=integration, state=SyncSession.State.RUNNING)
    now = timezone.now()
    for external_id in ("a", "b", "c", "d", "e"):
        SyncedRecord.objects.create(
            integration=integration, item_type="item", external_id=external_id, content_hash="h", data={},
            first_synced_at=now, last_synced_at=now,
        )
    SeenRange.objects.create(session_id=session.pk, item_type="item", low="a", high="c")
    SeenRange.objects.create(session_id=session.pk, item_type="item", low="b", high="b")
    assert mark_unseen_deleted(integration, session, "item", now) == 2
    assert set(SyncedRecord.objects.filter(deleted=True).values_list("external_id", flat=True)) == {"d", "e"}


@pytest.mark.django_db
def test_an_id_in_a_skipped_range_counts_as_seen_for_the_duplicate_check():
    integration = IntegrationFactory()
    session = SyncSessionFactory(integration=integration, state=SyncSession.State.RUNNING)
    now = timezone.now()
    for external_id in ("k1", "k2", "k3", "m1"):
        SyncedRecord.objects.create(
            integration=integration, item_type="item", external_id=external_id, content_hash="h", data={},
            first_synced_at=now, last_synced_at=now,
        )
    SeenRange.objects.create(session_id=session.pk, item_type="item", low="k1", high="k3")
    rows = existing_rows(integration, session, "item", ["k2", "m1"])
    assert rows["k2"][2] is True
    assert rows["m1"][2] is False
