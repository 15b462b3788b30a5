"""The open-issue count integrations keep: every path that opens or closes issues moves it, exactly.

The lists read `Integration.open_issue_count` instead of counting issues per
row, so each test compares it with the issues themselves (`actual`). Real
syncs against the vendor simulator cover the engine's paths; the admin's
resolve is driven end to end; the reconciliation repairs drift and writes
nothing when there is none. The PostgreSQL tests at the end race real writers
on one integration: a count read and written back would lose updates there.
"""

import importlib
import logging
import threading
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.models import Schedule

from integrations import counters, schedules, services, tasks
from integrations import status as machine
from integrations.models import Integration, SyncSession
from issues import services as issue_services
from issues.models import SyncIssue
from issues.recording import IssueRecorder, ProblemRow, record_session_failure, resolve_session_issues
from tests.conftest import seed_catalog
from tests.factories import IntegrationFactory, SyncIssueFactory, SyncSessionFactory, UserFactory
from tests.test_migrations import back_to_latest, latest, migrate, state_before  # noqa: F401 (back_to_latest is a fixture)

Status = Integration.Status
State = SyncSession.State
OPEN = SyncIssue.State.OPEN
live_sync = pytest.mark.django_db(transaction=True)
ISSUES = "/admin/issues/syncissue/"
INTEGRATIONS = "/admin/integrations/integration/"


def stored(integration):
    return Integration.objects.values_list("open_issue_count", flat=True).get(pk=integration.pk)


def actual(integration):
    return SyncIssue.objects.filter(integration=integration, state=OPEN).count()


def missing(external_id, code="ITEM_MISSING_FIELD"):
    return ProblemRow(external_id, code, f"{external_id}: 'name' is missing.")


def finished_session(integration):
    return SyncSessionFactory(integration=integration, state=State.SUCCEEDED, finished_at=timezone.now())


def record(integration, problems, clean_ids=(), item_type="item"):
    """One page through a new session's recorder, in the page's transaction as the runner writes it."""
    recorder = IssueRecorder(integration, finished_session(integration), item_type)
    with transaction.atomic():
        recorder.record_page(problems, list(clean_ids), timezone.now())
    return recorder


# -- the recorder's paths ------------------------------------------------------------


@pytest.mark.django_db
def test_a_page_counts_what_it_opens_and_a_repeat_counts_nothing(error_catalog):
    integration = IntegrationFactory()

    first = record(integration, [missing("item-1"), missing("item-2"), missing("item-2"), missing("item-3")])
    assert (first.opened, stored(integration), actual(integration)) == (3, 3, 3)

    again = record(integration, [missing("item-1"), missing("item-2"), missing("item-3")])
    assert (again.opened, again.repeated) == (0, 3)
    assert stored(integration) == actual(integration) == 3
    assert SyncIssue.objects.get(integration=integration, external_id="item-1").occurrences == 2


@pytest.mark.django_db
def test_clean_items_and_changed_problems_count_down_by_what_was_resolved(error_catalog):
    integration = IntegrationFactory()
    record(integration, [missing("item-1"), missing("item-2"), missing("item-3")])
    elsewhere = IntegrationFactory()
    record(elsewhere, [missing("item-1")])

    # item-1 is clean now; item-2 has another problem (its old issue is resolved, a new one opened);
    # item-9 never had an issue.
    page = record(integration, [missing("item-2", "ITEM_INVALID_VALUE")], ["item-1", "item-9"])

    assert (page.opened, page.resolved) == (1, 2)
    assert stored(integration) == actual(integration) == 2
    assert stored(elsewhere) == actual(elsewhere) == 1


@pytest.mark.django_db
def test_duplicates_not_met_again_resolve_at_the_end_of_a_full_sync(error_catalog):
    integration = IntegrationFactory()
    record(integration, [missing("item-4", "ITEM_DUPLICATE"), missing("item-5")])
    assert stored(integration) == 2

    full = IssueRecorder(integration, finished_session(integration), "item")
    with transaction.atomic():
        full.record_page([], ["item-4"], timezone.now())  # a clean first copy settles no duplicate
    assert stored(integration) == actual(integration) == 2
    full.resolve_unseen_duplicates(timezone.now())

    assert stored(integration) == actual(integration) == 1
    assert SyncIssue.objects.get(integration=integration, error_code="ITEM_DUPLICATE").state == "resolved"


@pytest.mark.django_db
def test_the_session_level_issue_counts_once_and_resolves(error_catalog):
    integration = IntegrationFactory()
    start = timezone.now()

    record_session_failure(integration, finished_session(integration), "VENDOR_UNAVAILABLE", "503", start)
    record_session_failure(integration, finished_session(integration), "VENDOR_UNAVAILABLE", "502", start)
    assert stored(integration) == actual(integration) == 1

    assert resolve_session_issues(integration, start + timedelta(hours=1)) == 1
    assert stored(integration) == actual(integration) == 0
    assert resolve_session_issues(integration, start + timedelta(hours=2)) == 0
    assert stored(integration) == 0


@pytest.mark.django_db
def test_a_count_that_drifted_low_stops_at_zero_instead_of_failing_the_sync(error_catalog):
    integration = IntegrationFactory()
    record(integration, [missing("item-1"), missing("item-2")])
    Integration.objects.filter(pk=integration.pk).update(open_issue_count=1)  # drift: one too few

    record(integration, [], ["item-1", "item-2"])

    assert stored(integration) == actual(integration) == 0


@pytest.mark.django_db
def test_saving_a_copy_read_earlier_keeps_the_count(error_catalog):
    """Status transitions and the admin's form save whole rows: never with the count they read."""
    integration = IntegrationFactory(status=Status.ACTIVE, mapping_complete=True)
    earlier = Integration.objects.get(pk=integration.pk)
    record(integration, [missing("item-1"), missing("item-2")])

    earlier.name = "Renamed"
    earlier.save()
    services.perform_action(integration.pk, machine.Action.DEACTIVATE, note="test")

    integration.refresh_from_db()
    assert (integration.name, integration.status) == ("Renamed", Status.INACTIVE)
    assert integration.open_issue_count == actual(integration) == 2


# -- real syncs -------------------------------------------------------------------------


@live_sync
def test_real_syncs_open_repeat_and_resolve_item_issues(make_integration, sync, vendor_simulator):
    integration = make_integration("warnings", page_size=40)

    first = sync(integration)
    assert first.state == State.WARNINGS
    # Items 7 and 31 lack a name, 19 has a bad email, 53 a negative quantity, 44 comes twice.
    assert stored(integration) == actual(integration) == 5

    again = sync(integration)
    assert again.state == State.WARNINGS
    assert stored(integration) == actual(integration) == 5
    assert set(SyncIssue.objects.filter(integration=integration).values_list("occurrences", flat=True)) == {2}

    vendor_simulator.control(integration.settings["account"], recover=True)
    clean = sync(integration)
    assert clean.state == State.SUCCEEDED
    # The four items synced cleanly page by page; the duplicate went at the end of the full sync.
    assert stored(integration) == actual(integration) == 0
    assert SyncIssue.objects.get(integration=integration, error_code="ITEM_DUPLICATE").state == "resolved"


@live_sync
def test_real_syncs_count_the_session_level_issue(make_integration, sync, vendor_simulator):
    integration = make_integration("outage")

    failed = sync(integration)
    assert failed.state == State.FAILED
    sync(integration)
    assert stored(integration) == actual(integration) == 1

    vendor_simulator.control(integration.settings["account"], recover=True)
    assert sync(integration).state == State.SUCCEEDED
    assert stored(integration) == actual(integration) == 0


# -- people ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_resolving_and_ignoring_in_the_admin_count_down_each_integration(client, staff_user, error_catalog):
    billing, contacts = IntegrationFactory(), IntegrationFactory()
    first, second, third = (SyncIssueFactory(integration=billing) for _ in range(3))
    elsewhere = SyncIssueFactory(integration=contacts)
    already = SyncIssueFactory(integration=contacts, state=SyncIssue.State.IGNORED)
    assert (stored(billing), stored(contacts)) == (3, 1)
    client.force_login(staff_user)

    response = client.post(
        ISSUES,
        {
            "action": "resolved_issues",
            "_selected_action": [first.pk, second.pk, elsewhere.pk, already.pk],
            "index": 0,
            "apply": "1",
            "note": "Fixed at the vendor",
        },
    )
    assert response.status_code == 302
    assert (stored(billing), actual(billing)) == (1, 1)
    assert (stored(contacts), actual(contacts)) == (0, 0)

    # Closing them again changes nothing, the count included.
    client.post(
        ISSUES,
        {"action": "ignored_issues", "_selected_action": [first.pk, third.pk], "index": 0, "apply": "1", "note": "n"},
    )
    assert stored(billing) == actual(billing) == 0
    third.refresh_from_db()
    assert third.state == "ignored"


@pytest.mark.django_db
def test_closing_needs_a_closed_state(error_catalog):
    issue = SyncIssueFactory()
    with pytest.raises(ValueError):
        issue_services.close_issues(SyncIssue.objects.all(), OPEN, actor=None, note="")
    assert stored(issue.integration) == 1


@pytest.mark.django_db
def test_purging_an_integration_takes_its_count_with_it(error_catalog, settings):
    kept, gone = IntegrationFactory(), IntegrationFactory()
    for integration in (kept, gone):
        SyncIssueFactory(integration=integration)
        SyncIssueFactory(integration=integration)
    Integration.objects.filter(pk=gone.pk).update(deleted_at=timezone.now() - settings.DELETED_RETENTION * 2)

    assert services.purge_deleted() == [gone.pk]

    assert not SyncIssue.objects.filter(integration_id=gone.pk).exists()
    assert stored(kept) == actual(kept) == 2
    assert counters.reconcile() == 0


# -- the lists ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_changelist_sorts_and_filters_by_the_stored_count(client, staff_user, error_catalog):
    _, busy, busier = (IntegrationFactory(name=name) for name in ("Quiet", "Busy", "Busier"))
    SyncIssueFactory(integration=busy)
    for _ in range(3):
        SyncIssueFactory(integration=busier)
    client.force_login(staff_user)

    with CaptureQueriesContext(connection) as queries:
        response = client.get(INTEGRATIONS, {"o": "-9"})  # the "open issues" column, descending
    assert [row.name for row in response.context["cl"].result_list] == ["Busier", "Busy", "Quiet"]
    assert [row.open_issue_count for row in response.context["cl"].result_list] == [3, 1, 0]
    assert not [q["sql"] for q in queries.captured_queries if SyncIssue._meta.db_table in q["sql"]]

    with_issues = client.get(INTEGRATIONS, {"has_issues": "yes"})
    assert {row.name for row in with_issues.context["cl"].result_list} == {"Busy", "Busier"}
    without = client.get(INTEGRATIONS, {"has_issues": "no"})
    assert [row.name for row in without.context["cl"].result_list] == ["Quiet"]


# -- the reconciliation ---------------------------------------------------------------------


@pytest.fixture
def three_integrations(error_catalog):
    rows = [IntegrationFactory() for _ in range(3)]
    for n, integration in enumerate(rows):
        for _ in range(n + 1):
            SyncIssueFactory(integration=integration)
    SyncIssueFactory(integration=rows[0], state=SyncIssue.State.RESOLVED)
    return rows


@pytest.mark.django_db
def test_reconcile_repairs_drifted_counts_and_logs_each(three_integrations, caplog):
    first, _, third = three_integrations
    Integration.objects.filter(pk=first.pk).update(open_issue_count=7)
    Integration.objects.filter(pk=third.pk).update(open_issue_count=0)

    with caplog.at_level(logging.WARNING, logger="integrations.counters"):
        assert counters.reconcile(batch_size=2) == 2

    assert [stored(i) for i in three_integrations] == [actual(i) for i in three_integrations] == [1, 2, 3]
    repairs = {(r.integration_id, r.stored, r.actual) for r in caplog.records if r.name == "integrations.counters"}
    assert repairs == {(first.pk, 7, 1), (third.pk, 0, 3)}
    assert counters.reconcile(batch_size=2) == 0


@pytest.mark.django_db
def test_reconcile_writes_nothing_when_the_counts_are_right(three_integrations):
    with CaptureQueriesContext(connection) as queries:
        assert counters.reconcile(batch_size=2) == 0
    statements = [q["sql"] for q in queries.captured_queries]
    assert statements and all(sql.startswith("SELECT") for sql in statements), statements


@pytest.mark.django_db
def test_reconcile_by_command_and_by_the_hourly_schedule(three_integrations):
    Integration.objects.filter(pk=three_integrations[1].pk).update(open_issue_count=5)
    out = StringIO()

    call_command("reconcile_counters", batch_size=1, stdout=out)

    assert out.getvalue().strip() == "1 count(s) repaired"
    assert stored(three_integrations[1]) == 2
    Integration.objects.filter(pk=three_integrations[2].pk).update(open_issue_count=0)
    assert tasks.reconcile_counters() == 1

    schedules.ensure_schedules(Schedule)
    schedule = Schedule.objects.get(name="reconcile-counters")
    assert (schedule.func, schedule.minutes, schedule.repeats) == ("integrations.tasks.reconcile_counters", 60, -1)


# -- the migration -------------------------------------------------------------------------


@live_sync
def test_the_migration_fills_the_counts_from_the_issues(back_to_latest):  # noqa: F811
    executor = MigrationExecutor(connection)
    before = state_before(executor, "integrations", "0011_new_vendor_accounts")
    old = migrate(before)
    Tenant = old.get_model("integrations", "Tenant")
    OldIntegration = old.get_model("integrations", "Integration")
    OldIssue = old.get_model("issues", "SyncIssue")
    old.get_model("issues", "ErrorCode").objects.get_or_create(
        code="ITEM_MISSING_FIELD", defaults={"title": "Missing", "category": "data", "customer_advice": "Fill it."}
    )
    tenant = Tenant.objects.create(name="Acme", slug="acme-counts")
    now = timezone.now()
    rows = [OldIntegration.objects.create(tenant=tenant, connector="simulator", name=f"I{n}") for n in range(3)]
    for n, row in enumerate(rows):
        for k in range(2 * n):
            OldIssue.objects.create(
                tenant=tenant,
                integration=row,
                error_code_id="ITEM_MISSING_FIELD",
                item_type="item",
                external_id=f"item-{k}",
                state="open" if k % 2 == 0 else "resolved",
                first_seen_at=now,
                last_seen_at=now,
            )
    batch = importlib.import_module("integrations.migrations.0012_integration_counts")
    original, batch.BATCH = batch.BATCH, 2  # more than one batch
    try:
        migrate(latest(MigrationExecutor(connection)))
    finally:
        batch.BATCH = original

    assert [Integration.objects.get(pk=row.pk).open_issue_count for row in rows] == [0, 1, 2]


# -- PostgreSQL: real concurrent writers ---------------------------------------------------------

needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL (set DATABASE_URL=postgres://...): concurrent writers on one row",
)


def run_threads(*targets):
    """Run each target in its own thread with its own connection; re-raise the first failure."""
    failures = []

    def wrapped(target):
        try:
            target()
        except BaseException as exc:  # noqa: BLE001 (reported in the test's thread)
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=wrapped, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "a writer did not finish"
    if failures:
        raise failures[0]


@pytest.mark.postgres
@needs_postgres
@live_sync
def test_concurrent_pages_and_resolves_keep_the_count_exact():
    """Three writers on one integration, iteration by iteration at the same moment.

    Two sessions' recorders (two item types) each open new issues and resolve
    older ones as clean; a person resolves issues both recorders touch. Each
    writer keeps its transaction open a little after changing the count, as
    a page does until its heartbeat and commit: a count read before another
    writer's commit and written back afterwards would lose that writer's
    change, and the final count would differ from the issues.
    """
    seed_catalog()
    integration = IntegrationFactory()
    record(integration, [missing(f"seed-{n:02d}") for n in range(30)])
    record(integration, [missing(f"seed-{n:02d}") for n in range(30)], item_type="contact")
    rounds = 12
    barrier = threading.Barrier(3, timeout=60)
    person = UserFactory(username="person", is_staff=True)
    moved = {}  # what each writer changed, by writer

    def recorder_writer(item_type):
        def run():
            recorder = IssueRecorder(
                Integration.objects.get(pk=integration.pk), finished_session(integration), item_type
            )
            for i in range(rounds):
                barrier.wait()
                with transaction.atomic():
                    recorder.record_page(
                        [missing(f"{item_type}-{i}-{k}") for k in range(3)] + [missing(f"seed-{i + 15:02d}")],
                        [f"seed-{2 * i:02d}", f"seed-{2 * i + 1:02d}", f"{item_type}-{i - 1}-0"],
                        timezone.now(),
                    )
                    time.sleep(0.02)
            moved[item_type] = (recorder.opened, recorder.resolved)

        return run

    def resolver():
        moved["person"] = 0
        for i in range(rounds):
            barrier.wait()
            with transaction.atomic():
                moved["person"] += issue_services.close_issues(
                    SyncIssue.objects.filter(
                        integration_id=integration.pk,
                        external_id__in=[f"seed-{2 * i + 1:02d}", f"seed-{2 * i + 2:02d}", f"item-{i - 1}-1", f"contact-{i}-2"],
                    ),
                    SyncIssue.State.RESOLVED,
                    actor=person,
                    note="done",
                )
                time.sleep(0.02)

    run_threads(recorder_writer("item"), recorder_writer("contact"), resolver)

    assert all(moved["item"]) and all(moved["contact"]) and moved["person"], moved  # every writer changed something
    assert stored(integration) == actual(integration) > 0
    assert counters.reconcile() == 0


@pytest.mark.postgres
@needs_postgres
@live_sync
def test_a_real_sync_and_a_person_resolving_meanwhile_keep_the_count_exact(make_integration, sync):
    """A full sync writes 13 pages (repeats, and issues reopened when the person got there first)
    while a person resolves the integration's open issues one by one."""
    integration = make_integration("warnings", page_size=10)
    sync(integration)
    assert stored(integration) == actual(integration) == 5
    done = threading.Event()
    closed = []

    def syncing():
        try:
            for _ in range(2):
                sync(Integration.objects.get(pk=integration.pk))
        finally:
            done.set()

    def resolving():
        while not done.is_set():
            issue = SyncIssue.objects.filter(integration_id=integration.pk, state=OPEN).order_by("?").first()
            if issue is not None:
                closed.append(
                    issue_services.close_issues(
                        SyncIssue.objects.filter(pk=issue.pk), SyncIssue.State.RESOLVED, actor=None, note="done"
                    )
                )
            time.sleep(0.005)

    run_threads(syncing, resolving)

    assert sum(closed) > 0
    assert stored(integration) == actual(integration)
    assert counters.reconcile() == 0
