"""What a sync leaves behind: exactly one record per vendor item, and item issues that open, repeat and resolve."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations.connectors.base import Item
from integrations.models import AccountMapping, Integration, SyncedRecord, SyncSession
from integrations.sync.records import write_page
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
