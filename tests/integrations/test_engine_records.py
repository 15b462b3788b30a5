"""What a sync leaves behind: exactly one record per vendor item, and item issues that open, repeat and resolve."""

import hashlib
import json
import random

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integrations.connectors.base import Item
from integrations.models import AccountMapping, Integration, SeenItem, SyncedRecord, SyncSession
from integrations.sync.records import canonical_json, content_hash, existing_rows, write_page
from issues.models import SyncIssue
from issues.recording import IssueRecorder, ProblemRow
from tests.factories import IntegrationFactory, SyncIssueFactory, SyncSessionFactory

State = SyncSession.State
FULL, QUICK = SyncSession.Kind.FULL, SyncSession.Kind.QUICK

WARNING_ISSUES = {
    ("item-0000007", "ITEM_MISSING_FIELD"),
    ("item-0000031", "ITEM_MISSING_FIELD"),
    ("item-0000019", "ITEM_INVALID_VALUE"),
    ("item-0000053", "ITEM_INVALID_VALUE"),
    ("item-0000044", "ITEM_DUPLICATE"),
}


def counts(session):
    return {
        name: getattr(session, name)
        for name in ("items_seen", "items_created", "items_updated", "items_unchanged", "items_deleted")
    }


def item_issues(integration, **filters):
    return SyncIssue.objects.filter(integration=integration, **filters).exclude(external_id="")


# -- exactly-once results ---------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_big_account_is_stored_exactly_once_and_follows_the_vendor(make_integration, sync, vendor_simulator):
    integration = make_integration("big-20000")
    account = integration.settings["account"]
    records = SyncedRecord.objects.filter(integration=integration)

    first = sync(integration)
    assert first.state == State.SUCCEEDED
    assert counts(first) == {
        "items_seen": 20000,
        "items_created": 20000,
        "items_updated": 0,
        "items_unchanged": 0,
        "items_deleted": 0,
    }
    assert (first.pages, first.items_total) == (20, 20000)
    assert records.count() == 20000
    assert records.values("external_id").distinct().count() == 20000
    assert not records.filter(deleted=True).exists()

    again = sync(integration)
    assert again.state == State.SUCCEEDED
    assert counts(again) == {
        "items_seen": 20000,
        "items_created": 0,
        "items_updated": 0,
        "items_unchanged": 20000,
        "items_deleted": 0,
    }
    assert records.count() == 20000

    cursor = integration.sync_cursor
    assert cursor
    quick = sync(integration, kind=QUICK)
    assert quick.state == State.SUCCEEDED
    assert counts(quick) == dict.fromkeys(counts(quick), 0)
    assert records.count() == 20000
    assert integration.sync_cursor >= cursor

    dropped = ["item-0000003", "item-0007001", "item-0019999"]
    changed = ["item-0000010", "item-0012345"]
    vendor_simulator.control(account, drop=dropped, change=changed)

    quick = sync(integration, kind=QUICK)
    assert quick.state == State.SUCCEEDED
    assert counts(quick) == {
        "items_seen": 2,
        "items_created": 0,
        "items_updated": 2,
        "items_unchanged": 0,
        "items_deleted": 0,
    }
    for record in records.filter(external_id__in=changed):
        assert record.data["name"].endswith(" (v2)")
        assert record.last_synced_at > record.first_synced_at
    # A quick sync never deletes: it does not see everything.
    assert not records.filter(deleted=True).exists()

    full = sync(integration)
    assert full.state == State.SUCCEEDED
    assert counts(full) == {
        "items_seen": 19997,
        "items_created": 0,
        "items_updated": 0,
        "items_unchanged": 19997,
        "items_deleted": 3,
    }
    assert records.count() == 20000
    assert set(records.filter(deleted=True).values_list("external_id", flat=True)) == set(dropped)
    assert records.filter(deleted=True, deleted_at=full.finished_at).count() == 3

    # Deleted stays deleted without being counted again.
    last = sync(integration)
    assert (last.items_deleted, last.items_unchanged) == (0, 19997)
    assert records.filter(deleted=True).count() == 3
    assert integration.status == Integration.Status.ACTIVE


@pytest.mark.django_db(transaction=True)
def test_an_item_the_vendor_lists_again_is_restored(make_integration, sync, vendor_simulator):
    integration = make_integration("healthy")
    account = integration.settings["account"]
    records = SyncedRecord.objects.filter(integration=integration)
    sync(integration)
    vendor_simulator.control(account, drop=["item-0000001", "item-0000120"])

    gone = sync(integration)
    assert (gone.items_seen, gone.items_deleted) == (118, 2)
    assert set(records.filter(deleted=True).values_list("external_id", flat=True)) == {
        "item-0000001",
        "item-0000120",
    }

    vendor_simulator.reset(account)
    back = sync(integration)

    assert counts(back) == {
        "items_seen": 120,
        "items_created": 0,
        "items_updated": 2,
        "items_unchanged": 118,
        "items_deleted": 0,
    }
    assert records.count() == 120
    assert not records.filter(deleted=True).exists()
    assert not records.filter(deleted_at__isnull=False).exists()


@pytest.mark.django_db
def test_a_page_costs_the_same_queries_whatever_its_size():
    integration = IntegrationFactory()
    session = SyncSessionFactory(integration=integration, state=State.RUNNING)

    def page_queries(first, count):
        items = [Item(f"item-{n:07d}", {"n": n}) for n in range(first, first + count)]
        with CaptureQueriesContext(connection) as queries:
            result = write_page(integration, session, "item", items, full=True, now=timezone.now())
        assert result.created == count
        return [q["sql"] for q in queries.captured_queries]

    small = page_queries(1, 10)
    large = page_queries(1001, 1000)  # the simulator connector's default page size

    assert len(large) == len(small), [sql[:60] for sql in large]
    assert SyncedRecord.objects.filter(integration=integration).count() == 1010


# -- item issues ---------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({}, id="one-page"),
        # Item 44's two copies are slots 43 and 44: the second copy comes on the next page.
        pytest.param({"page_size": 44}, id="duplicate-across-pages"),
    ],
)
def test_warnings_open_one_issue_per_bad_item_and_repeat_without_duplicates(make_integration, sync, extra):
    integration = make_integration("warnings", **extra)

    first = sync(integration)

    assert first.state == State.WARNINGS
    assert first.error_code_id is None
    # 121 listed: item 44 comes twice; the first copy is kept.
    assert (first.items_seen, first.items_created) == (121, 120)
    assert (first.items_warnings, first.items_failed) == (5, 0)
    assert first.items_total == 121
    assert SyncedRecord.objects.filter(integration=integration).count() == 120
    issues = item_issues(integration)
    assert set(issues.values_list("external_id", "error_code_id")) == WARNING_ISSUES
    for issue in issues:
        assert issue.state == SyncIssue.State.OPEN
        assert issue.occurrences == 1
        assert issue.first_session_id == issue.last_session_id == first.pk
        assert issue.item_type == "item"
        assert issue.source == SyncIssue.Source.VENDOR
        assert issue.vendor_url.endswith(f"/items/{issue.external_id}")
        # Items with problems are still stored, and the issue links to our copy.
        assert issue.record.external_id == issue.external_id
    assert "name" in issues.get(external_id="item-0000007").message
    assert issues.get(external_id="item-0000019").details == {"field": "email", "value": "not-an-email"}
    assert issues.get(external_id="item-0000053").details == {"field": "quantity", "value": "-5"}
    # The first sync had item issues: quality assurance, as staff must review it.
    assert integration.status == Integration.Status.QUALITY_ASSURANCE
    assert integration.last_outcome == Integration.Outcome.WARNINGS

    second = sync(integration)  # staff may run an integration under QA

    assert second.state == State.WARNINGS
    assert (second.items_unchanged, second.items_created, second.items_updated) == (120, 0, 0)
    assert sorted(
        item_issues(integration).values_list("external_id", "error_code_id", "state", "occurrences")
    ) == [(external_id, code, SyncIssue.State.OPEN, 2) for external_id, code in sorted(WARNING_ISSUES)]
    for issue in item_issues(integration):
        assert issue.first_session_id == first.pk
        assert issue.last_session_id == second.pk
        assert first.finished_at < issue.last_seen_at <= second.finished_at
    assert integration.status == Integration.Status.QUALITY_ASSURANCE


@pytest.mark.django_db(transaction=True)
def test_unmapped_items_become_issues_not_records(make_integration, sync):
    integration = make_integration("unmapped")
    unmapped_ids = {f"item-{n:07d}" for n in range(10, 121, 10)}

    session = sync(integration)

    assert session.state == State.WARNINGS
    assert (session.items_seen, session.items_created, session.items_failed) == (120, 108, 12)
    stored = set(SyncedRecord.objects.filter(integration=integration).values_list("external_id", flat=True))
    assert len(stored) == 108
    assert not stored & unmapped_ids
    issues = item_issues(integration)
    assert set(issues.values_list("external_id", flat=True)) == unmapped_ids
    for issue in issues:
        assert issue.error_code_id == "ITEM_UNMAPPED"
        assert issue.state == SyncIssue.State.OPEN
        assert issue.source == SyncIssue.Source.MAPPING
        assert issue.details == {"vendor_account_id": "acct-9"}
        assert issue.record_id is None
    assert integration.status == Integration.Status.QUALITY_ASSURANCE


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "mapping, stored",
    [
        pytest.param({"tenant_account": "acct-9"}, 120, id="mapped"),
        pytest.param({"ignored": True}, 108, id="ignored"),
    ],
)
def test_mapping_or_ignoring_the_account_resolves_unmapped_issues(make_integration, sync, mapping, stored):
    integration = make_integration("unmapped")
    first = sync(integration)
    assert item_issues(integration, state="open", error_code="ITEM_UNMAPPED").count() == 12

    # What the issue's advice says to do: map or ignore the account; "the item syncs on the next run".
    AccountMapping.objects.create(integration=integration, vendor_account_id="acct-9", **mapping)
    second = sync(integration)

    assert second.state == State.SUCCEEDED
    assert (second.items_seen, second.items_failed) == (120, 0)
    assert SyncedRecord.objects.filter(integration=integration, deleted=False).count() == stored
    assert item_issues(integration).count() == 12
    assert set(item_issues(integration).values_list("state", flat=True)) == {SyncIssue.State.RESOLVED}
    for issue in item_issues(integration):
        assert first.finished_at < issue.resolved_at <= second.finished_at


@pytest.mark.django_db(transaction=True)
def test_items_that_sync_cleanly_resolve_their_issues(make_integration, sync, vendor_simulator):
    integration = make_integration("warnings")
    first = sync(integration)
    assert item_issues(integration, state="open").count() == 5

    # The vendor fixes its data: the account now serves clean items.
    vendor_simulator.control(integration.settings["account"], recover=True)
    fixed = sync(integration)

    assert fixed.state == State.SUCCEEDED
    assert fixed.items_seen == 120
    # 7 and 31 gain a name, 19 a valid email, 53 a valid quantity; 44 was stored all along.
    assert (fixed.items_updated, fixed.items_unchanged) == (4, 116)
    assert not item_issues(integration, state="open").exists()
    for issue in item_issues(integration):
        assert issue.state == SyncIssue.State.RESOLVED
        assert first.finished_at < issue.resolved_at <= fixed.finished_at
        assert issue.occurrences == 1
    # Leaving quality assurance is for staff, not for a clean sync.
    assert integration.status == Integration.Status.QUALITY_ASSURANCE


@pytest.mark.django_db
def test_recorder_resolves_an_items_issue_when_it_is_clean(error_catalog):
    integration = IntegrationFactory()
    other = IntegrationFactory()
    session = SyncSessionFactory(integration=integration, state="running")
    issue = SyncIssueFactory(integration=integration, external_id="item-0000007")
    untouched = SyncIssueFactory(integration=integration, external_id="item-0000008")
    elsewhere = SyncIssueFactory(integration=other, external_id="item-0000007")
    session_level = SyncIssueFactory(
        integration=integration, item_type="", external_id="", error_code_id="VENDOR_UNAVAILABLE"
    )
    now = timezone.now()

    recorder = IssueRecorder(integration, session, "item")
    recorder.record_page([], ["item-0000007", "item-0000009"], now)

    issue.refresh_from_db()
    assert issue.state == SyncIssue.State.RESOLVED
    assert issue.resolved_at == now
    assert issue.resolution_note
    assert recorder.resolved == 1
    for still_open in (untouched, elsewhere, session_level):
        still_open.refresh_from_db()
        assert still_open.state == SyncIssue.State.OPEN


@pytest.mark.django_db
def test_recorder_repeats_once_per_session_and_swaps_codes(error_catalog):
    integration = IntegrationFactory()
    first, second = (SyncSessionFactory(integration=integration, state=s) for s in ("succeeded", "running"))
    missing = ProblemRow("item-0000007", "ITEM_MISSING_FIELD", "Required field 'name' is missing.", "Ada")

    recorder = IssueRecorder(integration, first, "item")
    recorder.record_page([missing], [], timezone.now())
    recorder.record_page([missing], [], timezone.now())  # the same item again in the same session
    issue = item_issues(integration).get()
    assert (issue.occurrences, recorder.opened, recorder.repeated) == (1, 1, 0)

    recorder = IssueRecorder(integration, second, "item")
    recorder.record_page([missing], [], timezone.now())
    issue.refresh_from_db()
    assert (issue.occurrences, issue.last_session_id, recorder.repeated) == (2, second.pk, 1)

    # The item's name is back but its email is now wrong: the old issue resolves, a new one opens.
    invalid = ProblemRow("item-0000007", "ITEM_INVALID_VALUE", "Field 'email' is not a valid email address.")
    recorder.record_page([invalid], [], timezone.now())
    issue.refresh_from_db()
    assert issue.state == SyncIssue.State.RESOLVED
    assert list(item_issues(integration, state="open").values_list("error_code_id", flat=True)) == [
        "ITEM_INVALID_VALUE"
    ]


# -- content hashes: what earlier releases stored still compares equal ------------------------


def hash_of_earlier_releases(data):
    """How every stored content_hash was computed before orjson: keep it that way, or migrate deliberately."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# What orjson writes unlike json: non-ASCII and DEL (json escapes them), floats repr() writes
# with an exponent, NaN and Infinity, integers past 64 bits, lone surrogates, astral characters
# (surrogate pairs), keys that sort differently as UTF-16, tuples.
AWKWARD = [
    {"name": "Zoë Müller", "city": "Zürich", "note": "naïve café", "emoji": "😀 ok", "cjk": "東京"},
    {"del": "a\x7fb", "controls": "\x01\x1f\t\n\r\x08\x0c", "quote": 'say "hi" \\ bye', "slash": "a/b"},
    {"nul": "a\x00b"},
    {"tiny": 1e-05, "small": 0.00012345, "edge": 0.0001, "big": 1e16, "bigger": 1.5e300, "neg": -2.5e-07},
    {"zero": 0.0, "negzero": -0.0, "plain": 12.5, "long": 0.30000000000000004, "whole": 100.0, "max15": 9999999999999998.0},
    {"nan": float("nan"), "inf": float("inf"), "ninf": float("-inf")},
    {"huge": 2**64, "negative_huge": -(2**70), "u64": 2**64 - 1, "i64": -(2**63)},
    {"lone": "\ud800 half a pair"},
    {"\uffff": 1, "\U00010000": 2, "b": 3, "a": {"z": [1, {"y": None, "x": True}], "m": []}},
    {"tuple": (1, "two", 3.0), "nested": [[[[{"deep": "er"}]]]], "empty": {}, "bools": [True, False, None]},
    {"id": "item-0000001", "quantity": 3, "status": "active", "url": "https://vendor.example/items/item-0000001"},
]


@pytest.mark.parametrize("data", AWKWARD, ids=range(len(AWKWARD)))
def test_canonical_json_is_what_json_wrote(data):
    assert canonical_json(data) == json.dumps(data, sort_keys=True, separators=(",", ":"))
    assert content_hash(data) == hash_of_earlier_releases(data)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(st.characters(codec=None)),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(st.characters(codec=None), max_size=6), children, max_size=5),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=8))
def test_canonical_json_is_what_json_wrote_for_any_item(data):
    assert canonical_json(data) == json.dumps(data, sort_keys=True, separators=(",", ":"))


# PostgreSQL's jsonb holds neither NaN, a lone surrogate nor NUL: no release could store them there.
STORABLE = [data for data in AWKWARD if not {"nan", "lone", "nul"} & data.keys()]


@pytest.mark.django_db
def test_records_stored_by_earlier_releases_are_unchanged():
    """The hashes in the database were computed with json: the same data must compare unchanged, not rewritten."""
    integration = IntegrationFactory()
    earlier = SyncSessionFactory(integration=integration, state=State.SUCCEEDED)
    session = SyncSessionFactory(integration=integration, state=State.RUNNING)
    now = timezone.now()
    items = [Item(f"item-{n:07d}", data) for n, data in enumerate(STORABLE)]
    SyncedRecord.objects.bulk_create(
        SyncedRecord(
            integration=integration,
            item_type="item",
            external_id=item.external_id,
            content_hash=hash_of_earlier_releases(item.data),
            data=item.data,
            first_synced_at=now,
            last_synced_at=now,
            seen_session_id=earlier.pk,
        )
        for item in items
    )

    result = write_page(integration, session, "item", items, full=True, now=timezone.now())

    assert (result.created, result.updated, result.unchanged) == (0, 0, len(items))
    assert SeenItem.objects.filter(session_id=session.pk).count() == len(items)
    assert not SyncedRecord.objects.filter(integration=integration, last_synced_at__gt=now).exists()


# -- reading a page's stored rows -------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("order", ["vendor", "shuffled"])
def test_existing_rows_finds_a_page_in_any_order(order):
    """In order, the page is one index range; shuffled, its range holds most of the table and it is read id by id."""
    integration, other = IntegrationFactory(), IntegrationFactory()
    session = SyncSessionFactory(integration=integration, state=State.RUNNING)
    earlier = SyncSessionFactory(integration=integration, state=State.SUCCEEDED)
    now = timezone.now()
    ids = [f"item-{n:07d}" for n in range(1, 3001)]

    def record(owner, external_id, **fields):
        fields = {"content_hash": f"h{external_id}", "seen_session_id": earlier.pk, **fields}
        return SyncedRecord(
            integration=owner, item_type="item", external_id=external_id, first_synced_at=now, last_synced_at=now, **fields
        )

    stored = ids[::2]  # every other id has a record
    SyncedRecord.objects.bulk_create(
        [record(integration, i, deleted=i.endswith("00"), seen_session_id=session.pk if i.endswith("0") else earlier.pk) for i in stored]
        + [record(other, i) for i in ids]  # another integration's records are never read
    )
    noted = set(stored[1::7])
    SeenItem.objects.bulk_create(SeenItem(session_id=session.pk, external_id=i) for i in noted)
    page = ids[1000:1400] if order == "vendor" else random.Random(7).sample(ids, 400)

    found = existing_rows(integration, session, "item", page)

    expected = {
        i: (f"h{i}", i.endswith("00"), i.endswith("0") or i in noted) for i in page if i in set(stored)
    }
    assert found == expected


@pytest.mark.django_db
def test_a_page_that_repeats_an_id_keeps_the_first_copy():
    integration = IntegrationFactory()
    session = SyncSessionFactory(integration=integration, state=State.RUNNING)
    first = [Item(f"item-{n:07d}", {"n": n}) for n in range(1, 6)]
    again = [Item("item-0000009", {"n": 9}), Item("item-0000003", {"n": "changed"}), Item("item-0000010", {"n": 10})]

    one = write_page(integration, session, "item", first + [Item("item-0000002", {"n": "again"})], full=True, now=timezone.now())
    two = write_page(integration, session, "item", again, full=True, now=timezone.now())

    assert (one.created, [d.external_id for d in one.duplicates]) == (5, ["item-0000002"])
    assert (two.created, two.updated, [d.external_id for d in two.duplicates]) == (2, 0, ["item-0000003"])
    records = SyncedRecord.objects.filter(integration=integration)
    assert records.count() == 7
    assert records.get(external_id="item-0000002").data == {"n": 2}  # the first copy stays
    assert records.get(external_id="item-0000003").data == {"n": 3}
