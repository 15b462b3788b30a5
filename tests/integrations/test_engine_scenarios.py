"""Starting and running syncs: each simulator scenario's end state, the status paths, refusals and races, commands.

The syncs are real: start_sync queues the task on commit, the inline django-q2
broker runs it, and the connector talks HTTP to the live vendor simulator.
"""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from integrations import status as machine
from integrations.models import Integration, IntegrationEvent, SyncedRecord, SyncSession
from integrations.onboarding import create_integration
from integrations.services import perform_action
from integrations.sync import starting
from integrations.sync.runner import claim
from integrations.sync.starting import AlreadySyncing, SyncRefused, start_sync
from issues.models import ErrorCode, SyncIssue
from tests.factories import IntegrationFactory, TenantFactory
from tests.plugins.simulator import SimulatorProcess

Status = Integration.Status
State = SyncSession.State
Trigger = SyncSession.Trigger
live_sync = pytest.mark.django_db(transaction=True)


def status_changes(integration):
    return list(
        IntegrationEvent.objects.filter(integration=integration, kind=IntegrationEvent.Kind.STATUS_CHANGED)
        .order_by("id")
        .values_list("from_status", "to_status")
    )


def session_issues(integration, **filters):
    return SyncIssue.objects.filter(integration=integration, item_type="", external_id="", **filters)


# -- clean runs ----------------------------------------------------------------


@pytest.mark.parametrize(
    "scenario, extra, counters",
    [
        # Every full sync asks for the vendor's accounts first (new ones are found), then the items.
        ("healthy", {}, {"pages": 1, "http_requests": 2, "retries": 0, "rate_limited_waits": 0}),
        # The first two /items requests answer 503 then 502; the back-off retries ride them out.
        ("flaky", {}, {"pages": 1, "http_requests": 4, "retries": 2, "rate_limited_waits": 0}),
        # Pages 2 and 3 each answer 429 with Retry-After: 1 once.
        (
            "rate-limited",
            {"page_size": 50},
            {"pages": 3, "http_requests": 6, "retries": 0, "rate_limited_waits": 2},
        ),
    ],
)
@live_sync
def test_clean_first_sync_makes_the_integration_active(make_integration, sync, scenario, extra, counters):
    integration = make_integration(scenario, **extra)
    assert integration.status == Status.SETUP

    session = sync(integration)

    assert session.state == State.SUCCEEDED
    assert session.error_code_id is None
    assert session.error_message == ""
    assert session.started_at and session.finished_at and session.lease_expires_at is None
    assert (session.items_seen, session.items_created, session.items_updated) == (120, 120, 0)
    assert session.items_unchanged == session.items_deleted == 0
    assert session.items_failed == session.items_warnings == 0
    assert session.items_total == 120
    assert {name: getattr(session, name) for name in counters} == counters
    assert SyncedRecord.objects.filter(integration=integration, deleted=False).count() == 120

    assert integration.status == Status.ACTIVE
    assert integration.last_session_id == session.pk
    assert integration.last_success_at == session.finished_at
    assert integration.consecutive_unsuccessful == 0
    assert integration.first_sync_finished_at is not None
    assert integration.sync_cursor  # the vendor's server time, for the next quick sync
    assert integration.next_sync_at > session.finished_at
    assert status_changes(integration) == [(Status.SETUP, Status.ACTIVE)]
    assert not SyncIssue.objects.filter(integration=integration).exists()


@live_sync
def test_oauth_client_credentials_sync(make_integration, sync, vendor_simulator):
    integration = make_integration("healthy", auth="oauth2")

    session = sync(integration)

    assert session.state == State.SUCCEEDED
    assert session.items_created == 120
    # One token for the run, then the accounts and the page.
    assert session.http_requests == 3
    assert integration.status == Status.ACTIVE
    requests = vendor_simulator.stats(integration.settings["account"])["requests"]
    assert requests["token"] == 2  # discovery at creation, and the sync


# -- failed runs ---------------------------------------------------------------


@pytest.mark.parametrize(
    "scenario, extra, code, status, counters",
    [
        ("expired-token", {}, "AUTH_EXPIRED", Status.AUTH_FAILING, {"http_requests": 1, "retries": 0}),
        (
            "expired-token",
            {"auth": "oauth2"},
            "AUTH_EXPIRED",
            Status.AUTH_FAILING,
            {"http_requests": 1, "retries": 0},
        ),
        ("invalid-key", {}, "AUTH_INVALID", Status.AUTH_FAILING, {"http_requests": 1, "retries": 0}),
        ("forbidden", {}, "AUTH_FORBIDDEN", Status.AUTH_FAILING, {"http_requests": 1, "retries": 0}),
        # A first sync that fails for a non-auth reason goes to quality assurance.
        # /accounts answers at once; the first /items request times out.
        ("slow", {}, "VENDOR_TIMEOUT", Status.QUALITY_ASSURANCE, {"http_requests": 2, "retries": 0}),
        ("outage", {}, "VENDOR_UNAVAILABLE", Status.QUALITY_ASSURANCE, {"http_requests": 4, "retries": 3}),
    ],
)
@live_sync
def test_failed_first_sync(make_integration, sync, scenario, extra, code, status, counters):
    integration = make_integration(scenario, **extra)

    session = sync(integration)

    assert session.state == State.FAILED
    assert session.error_code_id == code
    assert session.error_message
    assert {name: getattr(session, name) for name in counters} == counters
    assert session.items_seen == 0
    assert not SyncedRecord.objects.filter(integration=integration).exists()

    assert integration.status == status
    assert integration.last_session_id == session.pk
    assert integration.last_error_code == code
    assert integration.consecutive_unsuccessful == 1
    assert integration.last_success_at is None
    assert (integration.auth_failing_since is not None) == (status == Status.AUTH_FAILING)
    assert (integration.quality_assurance_since is not None) == (status == Status.QUALITY_ASSURANCE)
    assert status_changes(integration) == [(Status.SETUP, status)]

    issue = session_issues(integration).get()
    assert issue.state == SyncIssue.State.OPEN
    assert issue.error_code_id == code
    assert issue.severity == ErrorCode.objects.get(pk=code).default_severity
    assert issue.first_session_id == issue.last_session_id == session.pk
    assert issue.occurrences == 1
    assert issue.message == session.error_message
    assert SyncIssue.objects.filter(integration=integration).count() == 1


@live_sync
def test_the_malformed_scenario_fails_at_the_default_settings(make_integration, sync):
    """The connector's default page size reads all 120 items at once: the broken page is met all the same."""
    integration = make_integration("malformed")

    session = sync(integration)

    assert (session.state, session.error_code_id) == (State.FAILED, "VENDOR_BAD_RESPONSE")
    assert SyncedRecord.objects.filter(integration=integration).count() == 0


@live_sync
def test_malformed_page_fails_and_keeps_the_pages_before_it(make_integration, sync):
    integration = make_integration("malformed", page_size=50)

    session = sync(integration)

    assert session.state == State.FAILED
    assert session.error_code_id == "VENDOR_BAD_RESPONSE"
    assert session.pages == 1
    assert (session.items_seen, session.items_created) == (50, 50)
    assert session.items_total == 120
    assert session.items_deleted == 0
    records = SyncedRecord.objects.filter(integration=integration)
    assert records.count() == 50
    assert set(records.values_list("external_id", flat=True)) == {f"item-{n:07d}" for n in range(1, 51)}
    assert integration.status == Status.QUALITY_ASSURANCE
    assert integration.sync_cursor == ""  # only a completed sync moves the cursor
    assert session_issues(integration, state="open").get().error_code_id == "VENDOR_BAD_RESPONSE"


# -- status paths ----------------------------------------------------------------


@live_sync
def test_failing_streak_then_recovery(make_integration, sync, vendor_simulator):
    integration = make_integration("healthy")
    account = integration.settings["account"]
    first = sync(integration)
    assert integration.status == Status.ACTIVE

    vendor_simulator.control(account, fail=True)
    failed = [sync(integration, kind=SyncSession.Kind.QUICK) for _ in range(2)]

    assert [s.state for s in failed] == [State.FAILED, State.FAILED]
    assert [s.error_code_id for s in failed] == ["VENDOR_UNAVAILABLE"] * 2
    assert integration.status == Status.FAILING
    assert integration.consecutive_unsuccessful == 2
    assert integration.unsuccessful_since == failed[0].finished_at
    assert integration.last_success_at == first.finished_at
    assert integration.quality_assurance_since is None  # it succeeded before: no QA
    # Backed off: twice the interval (plus at most 10 % jitter) after the second failure.
    wait = integration.next_sync_at - failed[1].finished_at
    assert integration.sync_interval * 2 <= wait <= integration.sync_interval * 2.2
    issue = session_issues(integration).get()
    assert (issue.state, issue.error_code_id, issue.occurrences) == ("open", "VENDOR_UNAVAILABLE", 2)
    assert (issue.first_session_id, issue.last_session_id) == (failed[0].pk, failed[1].pk)
    # Nothing was lost while the vendor was down.
    assert SyncedRecord.objects.filter(integration=integration, deleted=False).count() == 120

    vendor_simulator.control(account, recover=True)
    recovered = sync(integration)

    assert recovered.state == State.SUCCEEDED
    assert recovered.items_unchanged == 120
    assert integration.status == Status.ACTIVE
    assert integration.consecutive_unsuccessful == 0
    assert integration.unsuccessful_since is None
    assert integration.last_error_code == ""
    issue.refresh_from_db()
    assert issue.state == SyncIssue.State.RESOLVED
    assert issue.resolved_at == recovered.finished_at
    assert status_changes(integration) == [(Status.SETUP, Status.ACTIVE), (Status.ACTIVE, Status.FAILING), (Status.FAILING, Status.ACTIVE)]
    events = IntegrationEvent.objects.filter(
        integration=integration, kind=IntegrationEvent.Kind.STATUS_CHANGED
    )
    assert [e.session_id for e in events.order_by("id")] == [first.pk, failed[0].pk, recovered.pk]


@live_sync
def test_rotated_key_fails_on_auth_until_new_credentials(make_integration, sync, vendor_simulator):
    integration = make_integration("healthy")
    account = integration.settings["account"]
    sync(integration)

    vendor_simulator.control(account, api_key="rotated-key")
    session = sync(integration, kind=SyncSession.Kind.QUICK, trigger=Trigger.SCHEDULE)

    assert session.state == State.FAILED
    assert session.error_code_id == "AUTH_INVALID"
    assert integration.status == Status.AUTH_FAILING
    assert integration.auth_failing_since == session.finished_at
    assert integration.consecutive_unsuccessful == 1
    assert session_issues(integration, state="open").get().error_code_id == "AUTH_INVALID"
    assert status_changes(integration)[-1] == (Status.ACTIVE, Status.AUTH_FAILING)

    # The customer re-authenticates with the new key.
    integration.set_credentials({"api_key": "rotated-key"}, set_at=session.finished_at + timedelta(seconds=1))
    integration.save()
    perform_action(integration.pk, machine.Action.CREDENTIALS_UPDATED)
    integration.refresh_from_db()
    reauth = sync(integration, trigger=Trigger.REAUTH)

    assert reauth.state == State.SUCCEEDED
    assert integration.status == Status.ACTIVE
    assert integration.auth_failing_since is None
    assert not session_issues(integration, state="open").exists()
    assert status_changes(integration) == [
        (Status.SETUP, Status.ACTIVE),
        (Status.ACTIVE, Status.AUTH_FAILING),
        (Status.AUTH_FAILING, Status.ACTIVE),
    ]
    assert IntegrationEvent.objects.filter(
        integration=integration, kind=IntegrationEvent.Kind.CREDENTIALS_UPDATED
    ).exists()


@live_sync
def test_auth_failing_for_three_days_makes_credentials_invalid(make_integration, sync, settings):
    integration = make_integration("expired-token")
    first = sync(integration)
    assert integration.status == Status.AUTH_FAILING
    # Pretend the first failure was longer ago than the threshold.
    since = first.finished_at - settings.CREDENTIALS_INVALID_AFTER
    Integration.objects.filter(pk=integration.pk).update(auth_failing_since=since)
    integration.refresh_from_db()

    again = sync(integration, kind=SyncSession.Kind.QUICK, trigger=Trigger.SCHEDULE)

    assert again.error_code_id == "AUTH_EXPIRED"
    assert integration.status == Status.CREDENTIALS_INVALID
    assert integration.auth_failing_since == since
    assert integration.consecutive_unsuccessful == 2
    assert status_changes(integration)[-1] == (Status.AUTH_FAILING, Status.CREDENTIALS_INVALID)
    assert session_issues(integration, state="open").get().occurrences == 2
    with pytest.raises(SyncRefused) as refused:
        start_sync(integration, trigger=Trigger.CUSTOMER)
    assert refused.value.code == "CREDENTIALS_INVALID"


@live_sync
def test_a_session_past_its_time_limit_ends_unknown(make_integration, sync, settings):
    settings.SYNC_SESSION_TIMEOUT_SECONDS = 0
    integration = make_integration("healthy")

    session = sync(integration)

    assert session.state == State.UNKNOWN
    assert session.error_code_id == "SYNC_TIMEOUT"
    assert session.items_seen == 0
    assert integration.status == Status.UNKNOWN
    assert session_issues(integration, state="open").get().error_code_id == "SYNC_TIMEOUT"


@live_sync
def test_access_token_that_expires_mid_run_is_fetched_again(error_catalog):
    # Tokens live 1 s; the two Retry-After: 1 waits of `rate-limited` outlive each token in turn.
    with SimulatorProcess(slow_seconds=1, token_ttl=1) as short_lived:
        account = "rate-limited.t-token-expiry"
        integration = create_integration(
            TenantFactory(),
            "simulator",
            "Short-lived tokens",
            settings={
                "account": account,
                "base_url": short_lived.base_url,
                "auth": "oauth2",
                "page_size": 50,
            },
            credentials={"api_key": "good-key"},
            queue_first_sync=False,
        )
        session = start_sync(integration, kind=SyncSession.Kind.FULL)
        session.refresh_from_db()
        tokens = short_lived.stats(account)["requests"]["token"]

    assert session.state == State.SUCCEEDED
    assert session.items_created == 120
    assert session.rate_limited_waits == 2
    assert tokens >= 3  # discovery's, the run's first, and at least one fetched again


# -- refusals and races ------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "attrs, trigger, code",
    [
        ({"status": Status.DELETED}, Trigger.STAFF, "DELETED"),
        ({"status": Status.INACTIVE}, Trigger.STAFF, "INACTIVE"),
        ({"status": Status.SETUP, "mapping_complete": False}, Trigger.STAFF, "MAPPING_INCOMPLETE"),
        ({"status": Status.CREDENTIALS_INVALID}, Trigger.CUSTOMER, "CREDENTIALS_INVALID"),
        ({"status": Status.CREDENTIALS_INVALID}, Trigger.STAFF, "CREDENTIALS_INVALID"),
        ({"status": Status.QUALITY_ASSURANCE}, Trigger.CUSTOMER, "QUALITY_ASSURANCE"),
        ({"status": Status.QUALITY_ASSURANCE}, Trigger.API, "QUALITY_ASSURANCE"),
        ({"status": Status.QUALITY_ASSURANCE}, Trigger.SCHEDULE, "QUALITY_ASSURANCE"),
        ({"status": Status.ACTIVE, "paused": True}, Trigger.CUSTOMER, "PAUSED"),
    ],
)
def test_start_sync_refuses_what_cannot_run(attrs, trigger, code):
    integration = IntegrationFactory(**attrs)

    with pytest.raises(SyncRefused) as refused:
        start_sync(integration, trigger=trigger)

    assert refused.value.code == code
    assert refused.value.http_status == 422
    assert not SyncSession.objects.exists()
    assert not IntegrationEvent.objects.filter(kind=IntegrationEvent.Kind.SYNC_REQUESTED).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "attrs, trigger",
    [
        ({"status": Status.QUALITY_ASSURANCE}, Trigger.STAFF),
        ({"status": Status.QUALITY_ASSURANCE}, Trigger.RETRY),
        ({"status": Status.CREDENTIALS_INVALID}, Trigger.REAUTH),
        ({"status": Status.ACTIVE, "paused": True}, Trigger.STAFF),
        ({"status": Status.SETUP}, Trigger.CUSTOMER),  # mapping complete, first sync not finished
    ],
)
def test_start_sync_queues_what_may_run(attrs, trigger):
    integration = IntegrationFactory(**attrs)

    session = start_sync(integration, trigger=trigger)

    assert (session.state, session.trigger) == (State.QUEUED, trigger)
    event = IntegrationEvent.objects.get(integration=integration, kind=IntegrationEvent.Kind.SYNC_REQUESTED)
    assert event.session_id == session.pk


@pytest.mark.django_db
def test_refusals_of_integrations_set_up_for_real(make_integration):
    manual = make_integration("healthy", manual_mapping=True)
    assert (manual.status, manual.mapping_complete) == (Status.SETUP, False)
    assert manual.account_mappings.count() == 2  # discovered, waiting for a person
    deleted = make_integration("healthy")
    perform_action(deleted.pk, machine.Action.DELETE)
    deleted.refresh_from_db()

    for integration, code in ((manual, "MAPPING_INCOMPLETE"), (deleted, "DELETED")):
        with pytest.raises(SyncRefused) as refused:
            start_sync(integration, trigger=Trigger.STAFF)
        assert refused.value.code == code
        assert not integration.sessions.exists()


@pytest.mark.django_db
def test_second_start_while_one_is_open_names_the_open_session():
    integration = IntegrationFactory(status=Status.ACTIVE)
    # In a test that is not transactional the commit never comes: the session stays queued.
    first = start_sync(integration, trigger=Trigger.CUSTOMER)

    with pytest.raises(AlreadySyncing) as already:
        start_sync(integration, trigger=Trigger.STAFF, kind=SyncSession.Kind.FULL)

    assert already.value.code == "ALREADY_SYNCING"
    assert already.value.http_status == 409
    assert already.value.session == first
    assert f"session {first.pk} is queued" in already.value.message

    claim(first.pk, "worker-1:123", timezone.now())
    with pytest.raises(AlreadySyncing) as already:
        start_sync(integration, trigger=Trigger.API)
    assert f"session {first.pk} is running" in already.value.message
    assert integration.sessions.count() == 1
    assert IntegrationEvent.objects.filter(kind=IntegrationEvent.Kind.SYNC_REQUESTED).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "trigger, cluster",
    [
        (Trigger.CUSTOMER, "urgent"),
        (Trigger.API, "urgent"),
        (Trigger.STAFF, "urgent"),
        (Trigger.SCHEDULE, None),
    ],
)
def test_a_persons_sync_is_queued_after_commit_on_the_urgent_cluster(
    django_capture_on_commit_callbacks, monkeypatch, trigger, cluster
):
    queued = []
    monkeypatch.setattr(
        starting, "async_task", lambda *args, **options: queued.append((args, options)) or "t-1"
    )
    integration = IntegrationFactory(status=Status.ACTIVE)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        session = start_sync(integration, trigger=trigger)
        assert queued == []  # nothing goes to the broker before the session is committed

    assert len(callbacks) == 1
    [(args, options)] = queued
    assert args == ("integrations.tasks.run_session", session.pk)
    assert options.get("cluster") == cluster
    session.refresh_from_db()
    assert session.task_id == "t-1"


@pytest.mark.django_db
def test_the_database_holds_one_open_session_per_integration():
    integration = IntegrationFactory(status=Status.ACTIVE)
    SyncSession.objects.create(integration=integration, queued_at=timezone.now())

    with pytest.raises(IntegrityError), transaction.atomic():
        SyncSession.objects.create(integration=integration, queued_at=timezone.now(), state=State.RUNNING)

    assert integration.sessions.count() == 1


# -- management commands ----------------------------------------------------------


@live_sync
def test_add_integration_prints_the_id_and_runs_the_first_sync(simulator_settings, error_catalog):
    tenant = TenantFactory()
    settings = simulator_settings("healthy")
    out = StringIO()

    call_command(
        "add_integration",
        tenant.slug,
        "simulator",
        "--name",
        "Pax8",
        f"--setting=account={settings['account']}",
        f"--setting=base_url={settings['base_url']}",
        "--credential",
        "api_key=good-key",
        stdout=out,
    )

    integration = Integration.objects.get()
    assert out.getvalue() == f"{integration.pk}\n"
    assert (integration.tenant, integration.name, integration.settings) == (tenant, "Pax8", settings)
    assert integration.get_credentials() == {"api_key": "good-key"}
    assert "good-key" not in integration.credentials_ciphertext
    session = integration.sessions.get()
    assert session.kind == SyncSession.Kind.FULL
    assert (session.state, session.items_created) == (State.SUCCEEDED, 120)
    assert integration.status == Status.ACTIVE


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args, message",
    [
        (["tenant-x", "simulator", "--name", "N", "--setting", "account"], "--setting takes KEY=VALUE"),
        (
            ["tenant-x", "simulator", "--name", "N", "--credential", "=good-key"],
            "--credential takes KEY=VALUE",
        ),
        (["nobody", "simulator", "--name", "N"], "No tenant with slug 'nobody'"),
        (["tenant-x", "nope", "--name", "N"], "No connector is registered under 'nope'"),
        (
            ["tenant-x", "simulator", "--name", "N", "--setting", "account=healthy"],
            "Credential 'api_key' is required",
        ),
    ],
)
def test_add_integration_rejects_bad_input(args, message):
    TenantFactory(slug="tenant-x")

    with pytest.raises(CommandError, match=message):
        call_command("add_integration", *args, stdout=StringIO())

    assert not Integration.objects.exists()


@pytest.mark.django_db
def test_sync_command_inline_reports_a_success(make_integration):
    integration = make_integration("healthy")
    out = StringIO()

    call_command("sync", str(integration.pk), "--inline", "--full", stdout=out)

    session = integration.sessions.get()
    assert session.kind == SyncSession.Kind.FULL
    text = out.getvalue()
    assert f"session {session.pk} succeeded -" in text
    assert "items_seen=120 items_created=120 items_updated=0" in text


@pytest.mark.django_db
def test_sync_command_inline_exits_2_when_the_sync_fails(make_integration):
    integration = make_integration("outage")
    out = StringIO()

    with pytest.raises(SystemExit) as exited:
        call_command("sync", str(integration.pk), "--inline", "--full", stdout=out)

    assert exited.value.code == 2
    session = integration.sessions.get()
    text = out.getvalue()
    assert f"session {session.pk} failed VENDOR_UNAVAILABLE" in text
    assert "http_requests=4 retries=3" in text


@pytest.mark.django_db
def test_sync_command_exits_3_when_refused_and_fails_on_unknown_ids():
    deleted = IntegrationFactory(status=Status.DELETED)
    err = StringIO()

    with pytest.raises(SystemExit) as exited:
        call_command("sync", str(deleted.pk), "--inline", stdout=StringIO(), stderr=err)

    assert exited.value.code == 3
    assert "refused: The integration is deleted" in err.getvalue()
    with pytest.raises(CommandError, match="No integration with id"):
        call_command("sync", str(deleted.pk + 1000), "--inline", stdout=StringIO())
    assert not SyncSession.objects.exists()
