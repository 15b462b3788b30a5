"""The integration page's "Why this status" and "Checks" panels.

The panel functions are tested with a fixed clock for every status and its
countdown; the page tests check that the texts reach the rendered page.
"""

import html
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.html import strip_tags

from integrations.admin import panels
from integrations.models import AccountMapping, Integration, SyncSession, Tenant
from tests.factories import IntegrationFactory, SyncSessionFactory

Status = Integration.Status
Outcome = Integration.Outcome
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def thresholds(settings):
    settings.ALERT_AFTER_UNSUCCESSFUL = 10
    settings.CREDENTIALS_INVALID_AFTER = timedelta(days=3)
    settings.DELETED_RETENTION = timedelta(days=30)


def unsaved(status, **fields):
    """An integration in memory with the facts its status implies."""
    values = {
        "tenant": Tenant(name="Acme", slug="acme"),
        "connector": "simulator",
        "name": "Pax",
        "status": status,
        "mapping_complete": True,
        "first_sync_finished_at": NOW - timedelta(days=10),
    }
    values.update(fields)
    return Integration(**values)


def why(integration, **kwargs):
    result = panels.why_status(integration, now=NOW, **kwargs)
    return result.rule, result.evidence, result.next_steps


def lower(lines):
    return [line.lower() for line in lines]


# -- each status ----------------------------------------------------------------------------------


def test_setup_with_unmapped_accounts():
    integration = unsaved(Status.SETUP, mapping_complete=False, first_sync_finished_at=None)

    rule, evidence, next_steps = why(integration, unmapped_accounts=2, total_accounts=3)

    assert rule == "Account mapping is incomplete: every sync is refused with MAPPING_INCOMPLETE."
    assert "2 of 3 vendor accounts not mapped or ignored yet." in evidence
    assert next_steps == ["The first sync is queued as soon as the mapping is complete."]


def test_setup_waiting_for_the_first_sync():
    integration = unsaved(Status.SETUP, first_sync_finished_at=None)

    rule, _, next_steps = why(integration)

    assert rule == "Waiting for the first sync to finish."
    assert "clean → Active" in next_steps[0]
    assert "an auth failure → Authentication failing" in next_steps[0]


def test_active_counts_down_to_the_next_scheduled_sync():
    integration = unsaved(
        Status.ACTIVE,
        last_outcome=Outcome.SUCCEEDED,
        last_success_at=NOW - timedelta(minutes=46),
        next_sync_at=NOW + timedelta(minutes=14),
    )

    rule, _, next_steps = why(integration)

    assert rule == "The last sync succeeded cleanly."
    assert "next scheduled sync in 14 minutes." in lower(next_steps)


def test_a_due_sync_says_so():
    integration = unsaved(Status.ACTIVE, last_outcome=Outcome.SUCCEEDED, next_sync_at=NOW - timedelta(minutes=3))

    assert why(integration)[2] == ["Next scheduled sync: due now."]


def test_warnings():
    integration = unsaved(
        Status.WARNINGS, last_outcome=Outcome.WARNINGS, next_sync_at=NOW + timedelta(hours=1, minutes=5)
    )

    rule, _, next_steps = why(integration)

    assert rule == "The last sync succeeded, but some items have issues."
    assert next_steps == [
        "Issues resolve themselves when their items sync cleanly.",
        "Next scheduled sync in 1 hour 5 minutes.",
    ]


def test_failing_counts_down_to_the_repeated_failure_alert():
    integration = unsaved(
        Status.FAILING,
        last_outcome=Outcome.FAILED,
        last_error_code="VENDOR_UNAVAILABLE",
        consecutive_unsuccessful=7,
        unsuccessful_since=NOW - timedelta(hours=5),
        next_sync_at=NOW + timedelta(minutes=40),
    )

    rule, evidence, next_steps = why(integration)

    assert rule == "The last sync did not complete."
    assert "7 unsuccessful in a row, since 5 hours ago." in evidence
    assert next_steps == [
        "3 more unsuccessful syncs until the repeated-failure alert.",
        "Next scheduled sync in 40 minutes (backed off while failing).",
    ]


@pytest.mark.parametrize(
    "streak, line",
    [
        (1, "9 more unsuccessful syncs until the repeated-failure alert."),
        (9, "1 more unsuccessful sync until the repeated-failure alert."),
        (10, "The repeated-failure alert threshold (10 in a row) has been reached."),
        (14, "The repeated-failure alert threshold (10 in a row) has been reached."),
    ],
)
def test_unknown_and_the_alert_threshold(streak, line):
    integration = unsaved(
        Status.UNKNOWN,
        last_outcome=Outcome.UNKNOWN,
        last_error_code="SYNC_LEASE_LOST",
        consecutive_unsuccessful=streak,
        unsuccessful_since=NOW - timedelta(hours=2),
    )

    rule, _, next_steps = why(integration)

    assert rule == "The engine could not confirm a clean success or a clean failure."
    assert next_steps[0] == line
    assert next_steps[1] == "No scheduled sync is due yet."


def test_the_alert_threshold_follows_the_setting(settings):
    settings.ALERT_AFTER_UNSUCCESSFUL = 4
    integration = unsaved(Status.FAILING, last_outcome=Outcome.FAILED, consecutive_unsuccessful=1)

    assert why(integration)[2][0] == "3 more unsuccessful syncs until the repeated-failure alert."


def test_auth_failing_counts_down_to_credentials_invalid():
    integration = unsaved(
        Status.AUTH_FAILING,
        last_outcome=Outcome.AUTH_FAILED,
        last_outcome_at=NOW - timedelta(minutes=10),
        last_error_code="AUTH_EXPIRED",
        consecutive_unsuccessful=2,
        unsuccessful_since=NOW - timedelta(hours=19),
        auth_failing_since=NOW - timedelta(hours=19),
        next_sync_at=NOW + timedelta(minutes=50),
    )

    rule, evidence, next_steps = why(integration)

    assert rule == "The last sync failed on authentication."
    assert "Authentication failing since 19 hours ago." in evidence
    assert next_steps == [
        "2 days 5 hours until “Credentials invalid” (syncs paused) if authentication keeps failing.",
        "8 more unsuccessful syncs until the repeated-failure alert.",
        "Next scheduled sync in 50 minutes (backed off while failing).",
    ]


def test_auth_failing_after_new_credentials_were_saved():
    integration = unsaved(
        Status.AUTH_FAILING, last_outcome=Outcome.AUTH_FAILED, consecutive_unsuccessful=1, auth_failing_since=None
    )

    _, evidence, next_steps = why(integration)

    assert "New credentials were saved since; the next sync checks them." in evidence
    assert not any("until credentials_invalid" in line for line in next_steps)


def test_credentials_invalid_after_three_days_of_auth_failures():
    integration = unsaved(
        Status.CREDENTIALS_INVALID,
        last_outcome=Outcome.AUTH_FAILED,
        last_error_code="AUTH_INVALID",
        consecutive_unsuccessful=40,
        auth_failing_since=NOW - timedelta(days=3, hours=2),
    )

    rule, evidence, next_steps = why(integration)

    assert rule == "Every sync for 3 days failed on authentication with no other outcome in between."
    assert "Authentication failing since 3 days 2 hours ago; 40 unsuccessful in a row." in evidence
    assert next_steps == ["Syncs are paused until new credentials are saved: send a re-authentication link."]


def test_credentials_invalid_after_staff_revoked_them():
    integration = unsaved(Status.CREDENTIALS_INVALID, credentials_revoked_at=NOW - timedelta(hours=1))

    rule, _, next_steps = why(integration)

    assert rule == "Credentials were revoked by staff."
    assert next_steps == ["Syncs are paused until new credentials are saved: send a re-authentication link."]


def test_quality_assurance_names_owner_reason_and_due_date():
    owner = get_user_model()(username="erin")
    integration = unsaved(
        Status.QUALITY_ASSURANCE,
        quality_assurance_since=NOW - timedelta(days=2),
        quality_assurance_owner=owner,
        quality_assurance_reason="First sync created duplicates",
        quality_assurance_due=date(2026, 3, 20),
    )

    rule, evidence, next_steps = why(integration)

    assert rule == "Under quality assurance: the first sync had problems, or staff moved it here."
    assert "Reason: First sync created duplicates" in evidence
    assert "Since 2 days ago; owner erin; due 2026-03-20." in evidence
    assert next_steps == [
        "Scheduled syncs are paused; staff may run it. Release it to resume (a sync is queued)."
    ]


def test_quality_assurance_without_an_owner_yet():
    integration = unsaved(Status.QUALITY_ASSURANCE, quality_assurance_since=NOW - timedelta(hours=3))

    assert "Since 3 hours ago; owner nobody yet." in why(integration)[1]


def test_inactive():
    integration = unsaved(Status.INACTIVE, deactivated_at=NOW - timedelta(days=4))

    rule, evidence, next_steps = why(integration)

    assert rule == "Switched off; no syncs run."
    assert "Deactivated 4 days ago." in evidence
    assert next_steps == ["Nothing runs until someone reactivates it."]


def test_deleted_counts_down_to_the_purge():
    integration = unsaved(Status.DELETED, deleted_at=NOW - timedelta(days=2))

    rule, evidence, next_steps = why(integration)

    assert rule == "Deleted by staff; deleted outranks every other status."
    assert "Deleted 2 days ago." in evidence
    assert next_steps == ["Purged with its sessions, records and issues in 28 days unless restored."]


def test_paused_shows_instead_of_the_next_sync():
    integration = unsaved(
        Status.ACTIVE, last_outcome=Outcome.SUCCEEDED, paused=True, paused_reason="vendor maintenance", next_sync_at=NOW
    )

    _, evidence, next_steps = why(integration)

    assert "Syncs are paused: vendor maintenance." in evidence
    assert next_steps == ["Scheduled syncs are paused: vendor maintenance."]


@pytest.mark.django_db
def test_the_evidence_names_the_sessions(error_catalog):
    integration = IntegrationFactory(status=Status.FAILING, last_outcome=Outcome.FAILED, consecutive_unsuccessful=1)
    last = SyncSessionFactory(
        integration=integration,
        state=SyncSession.State.FAILED,
        error_code_id="VENDOR_UNAVAILABLE",
        finished_at=NOW - timedelta(minutes=20),
    )
    running = SyncSessionFactory(integration=integration, state=SyncSession.State.RUNNING)

    evidence = why(integration, last_session=last, open_session=running)[1]

    assert f"Last session {last.pk}: Failed (VENDOR_UNAVAILABLE), finished 20 minutes ago." in evidence
    assert f"Session {running.pk} is running now." in evidence


# -- the page shows it ------------------------------------------------------------------------------


def panel(response, name):
    """The text of one panel of the integration page."""
    match = re.search(
        rf'<div class="sc-panel" id="sc-{name}">(.*?)</div>', response.content.decode(), re.DOTALL
    )
    assert match, f"no {name} panel on the page"
    return " ".join(html.unescape(strip_tags(match.group(1))).split())


def page_of(client, integration):
    response = client.get(f"/admin/integrations/integration/{integration.pk}/change/")
    assert response.status_code == 200
    return response


def saved(status, **fields):
    now = timezone.now()
    values = {"status": status, "status_changed_at": now, "first_sync_finished_at": now - timedelta(days=5)}
    values.update(fields)
    return IntegrationFactory(**values)


# Times are set a little inside the unit the page shows, so the few
# milliseconds between building the row and rendering the page do not matter.
def minutes_from_now(minutes, seconds=30):
    return timezone.now() + timedelta(minutes=minutes, seconds=seconds)


PAGE_CASES = {
    "auth_failing": (
        lambda: saved(
            Status.AUTH_FAILING,
            last_outcome=Outcome.AUTH_FAILED,
            last_outcome_at=timezone.now() - timedelta(minutes=5),
            consecutive_unsuccessful=3,
            auth_failing_since=timezone.now() - timedelta(hours=18, minutes=30),
            next_sync_at=minutes_from_now(14),
        ),
        [
            "2 days 5 hours until “Credentials invalid” (syncs paused) if authentication keeps failing.",
            "7 more unsuccessful syncs until the repeated-failure alert.",
            "next scheduled sync in 14 minutes",
        ],
    ),
    "failing": (
        lambda: saved(
            Status.FAILING,
            last_outcome=Outcome.FAILED,
            consecutive_unsuccessful=7,
            unsuccessful_since=timezone.now() - timedelta(hours=6, minutes=10),
            next_sync_at=minutes_from_now(14),
        ),
        [
            "7 unsuccessful in a row, since 6 hours 10 minutes ago.",
            "3 more unsuccessful syncs until the repeated-failure alert.",
            "next scheduled sync in 14 minutes (backed off while failing)",
        ],
    ),
    "active": (
        lambda: saved(Status.ACTIVE, last_outcome=Outcome.SUCCEEDED, next_sync_at=minutes_from_now(14)),
        ["The last sync succeeded cleanly.", "next scheduled sync in 14 minutes"],
    ),
    "deleted": (
        lambda: saved(Status.DELETED, deleted_at=timezone.now() - timedelta(days=2, seconds=30)),
        ["Purged with its sessions, records and issues in 27 days 23 hours unless restored."],
    ),
    "quality_assurance": (
        lambda: saved(
            Status.QUALITY_ASSURANCE,
            quality_assurance_since=timezone.now() - timedelta(days=1, hours=2, seconds=30),
            quality_assurance_owner=get_user_model().objects.get(username="engineering"),
            quality_assurance_reason="Duplicates after the first sync",
            quality_assurance_due=date(2031, 5, 4),
        ),
        [
            "Reason: Duplicates after the first sync",
            "Since 1 day 2 hours ago; owner engineering; due 2031-05-04.",
        ],
    ),
    "setup": (
        lambda: saved(Status.SETUP, mapping_complete=False, first_sync_finished_at=None),
        [
            "Account mapping is incomplete: every sync is refused with MAPPING_INCOMPLETE.",
            "1 of 3 vendor accounts not mapped or ignored yet.",
        ],
    ),
    "inactive": (
        lambda: saved(Status.INACTIVE, deactivated_at=timezone.now() - timedelta(days=3, seconds=30)),
        ["Switched off; no syncs run.", "Deactivated 3 days ago."],
    ),
    "credentials_invalid": (
        lambda: saved(
            Status.CREDENTIALS_INVALID,
            last_outcome=Outcome.AUTH_FAILED,
            consecutive_unsuccessful=12,
            auth_failing_since=timezone.now() - timedelta(days=3, hours=4, seconds=30),
        ),
        [
            "Authentication failing since 3 days 4 hours ago; 12 unsuccessful in a row.",
            "send a re-authentication link",
        ],
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("status", sorted(PAGE_CASES))
def test_the_page_shows_why_and_what_happens_next(support_client, engineering_user, status):
    build, texts = PAGE_CASES[status]
    integration = build()
    if status == "setup":
        AccountMapping.objects.bulk_create(
            [
                AccountMapping(integration=integration, vendor_account_id="acct-1", tenant_account="north"),
                AccountMapping(integration=integration, vendor_account_id="acct-2", ignored=True),
                AccountMapping(integration=integration, vendor_account_id="acct-9"),
            ]
        )

    why_panel = panel(page_of(support_client, integration), "why")

    for text in texts:
        assert text.lower() in why_panel.lower(), f"{text!r} not in {why_panel!r}"


# -- checks -------------------------------------------------------------------------------------------


def run_checks(integration, *, sessions=(), failures=0, unmapped=0, total=2):
    return panels.checks(
        integration,
        now=NOW,
        recent_sessions=list(sessions),
        connector_failures=failures,
        unmapped_accounts=unmapped,
        total_accounts=total,
    )


def with_credentials(values, set_at):
    integration = unsaved(Status.ACTIVE)
    integration.set_credentials(values, set_at=set_at)
    return integration


def texts(found, level=None):
    return [c.text for c in found if level is None or c.level == level]


@pytest.mark.parametrize(
    "age, level, text",
    [
        (
            timedelta(days=10),
            "ok",
            "Credentials are 10 days old; Vendor simulator forces re-authentication every 90 days: 80 days left.",
        ),
        (
            timedelta(days=85),
            "warn",
            "Credentials are 85 days old; Vendor simulator forces re-authentication every 90 days: 5 days left.",
        ),
        (
            timedelta(days=95),
            "bad",
            "Credentials are 95 days old; Vendor simulator forces re-authentication every 90 days: past due.",
        ),
    ],
)
def test_credentials_age_against_the_token_lifetime(age, level, text):
    found = run_checks(with_credentials({"api_key": "k"}, NOW - age))

    assert text in texts(found, level)


def test_no_credentials():
    assert "No credentials are stored." in texts(run_checks(unsaved(Status.CREDENTIALS_INVALID)), "bad")


def test_shared_mailbox_credentials():
    shared = run_checks(with_credentials({"username": "admin@acme.example", "password": "p"}, NOW))
    personal = run_checks(with_credentials({"username": "jane.doe@acme.example", "password": "p"}, NOW))

    warning = (
        "The username looks like a shared mailbox or an admin account (it matches admin@): whoever else uses it "
        "may change its password or its sign-in rules, and the sync stops. Use a dedicated service account for "
        "this integration."
    )
    assert warning in texts(shared, "warn")
    assert not [text for text in texts(personal) if "shared mailbox" in text]


@pytest.mark.parametrize(
    "unmapped, total, level, text",
    [
        (1, 3, "bad", "Mapping: 2 of 3 vendor accounts mapped or ignored."),
        (0, 2, "ok", "Mapping: 2 of 2 vendor accounts mapped or ignored."),
        (0, 0, "info", "No vendor accounts discovered yet."),
    ],
)
def test_mapping(unmapped, total, level, text):
    assert text in texts(run_checks(unsaved(Status.SETUP), unmapped=unmapped, total=total), level)


def test_other_integrations_of_the_connector_failing():
    assert "2 other Vendor simulator integrations failed in the last hour: a vendor-side problem?" in texts(
        run_checks(unsaved(Status.FAILING), failures=2), "warn"
    )
    assert "No other Vendor simulator integration failed in the last hour." in texts(
        run_checks(unsaved(Status.FAILING), failures=0), "ok"
    )


def test_rate_limiting_and_time_queued():
    sessions = [
        SyncSession(
            queued_at=NOW - timedelta(minutes=30),
            started_at=NOW - timedelta(minutes=23),
            rate_limited_waits=2,
        ),
        SyncSession(
            queued_at=NOW - timedelta(hours=2), started_at=NOW - timedelta(hours=2), rate_limited_waits=1
        ),
    ]

    found = run_checks(unsaved(Status.ACTIVE), sessions=sessions)

    assert "Rate limiting seen: 3 waits in the last 2 sessions." in texts(found, "warn")
    assert "Longest time queued in recent sessions: 7 min." in texts(found, "warn")


@pytest.mark.django_db
def test_connector_failures_in_the_last_hour_count_other_integrations_only(error_catalog):
    mine = IntegrationFactory()
    now = timezone.now()

    def failed(integration, minutes_ago, state=SyncSession.State.FAILED):
        SyncSessionFactory(
            integration=integration, state=state, finished_at=now - timedelta(minutes=minutes_ago)
        )

    failed(mine, 5)
    one, two = IntegrationFactory(), IntegrationFactory()
    failed(one, 10)
    failed(one, 20)  # the same integration twice counts once
    failed(two, 50, SyncSession.State.UNKNOWN)
    failed(IntegrationFactory(), 90)  # too long ago
    failed(IntegrationFactory(connector="rest"), 5)  # another connector
    SyncSessionFactory(integration=IntegrationFactory(), state=SyncSession.State.SUCCEEDED, finished_at=now)

    assert panels.connector_failures_last_hour(mine, now) == 2


@pytest.mark.django_db
def test_the_page_shows_the_checks_and_never_the_credentials(support_client, error_catalog):
    now = timezone.now()
    integration = saved(
        Status.FAILING,
        last_outcome=Outcome.FAILED,
        consecutive_unsuccessful=1,
        credentials={"username": "admin@acme.example", "password": "s3cr3t-Pa55"},
    )
    Integration.objects.filter(pk=integration.pk).update(credentials_set_at=now - timedelta(days=85, hours=1))
    AccountMapping.objects.bulk_create(
        [
            AccountMapping(integration=integration, vendor_account_id="acct-1", tenant_account="north"),
            AccountMapping(integration=integration, vendor_account_id="acct-2"),
        ]
    )
    SyncSessionFactory(
        integration=integration,
        state=SyncSession.State.FAILED,
        error_code_id="RATE_LIMITED",
        queued_at=now - timedelta(minutes=20),
        started_at=now - timedelta(minutes=19),
        finished_at=now - timedelta(minutes=15),
        rate_limited_waits=4,
    )
    neighbour = IntegrationFactory()
    SyncSessionFactory(
        integration=neighbour, state=SyncSession.State.FAILED, finished_at=now - timedelta(minutes=10)
    )

    response = page_of(support_client, integration)
    checks = panel(response, "checks")

    assert (
        "Credentials are 85 days old; Vendor simulator forces re-authentication every 90 days: 4 days"
        in checks
    )
    assert "Mapping: 1 of 2 vendor accounts mapped or ignored." in checks
    assert "1 other Vendor simulator integration failed in the last hour" in checks
    assert "Rate limiting seen: 4 waits in the last 1 session." in checks
    assert "shared mailbox" in checks
    assert 'class="sc-check-warn"' in response.content.decode()
    assert "Values are encrypted and never shown." in panel(response, "credentials")

    for url in (
        f"/admin/integrations/integration/{integration.pk}/change/",
        f"/admin/integrations/integration/{integration.pk}/history/",
        f"/admin/integrations/integration/{integration.pk}/action/send_reauth_link/",
        "/admin/integrations/integration/",
        "/admin/",
    ):
        content = support_client.get(url).content.decode()
        assert "admin@acme.example" not in content, url
        assert "s3cr3t-Pa55" not in content, url
        assert integration.credentials_ciphertext not in content, url


def test_the_alert_countdown_follows_the_tenants_own_threshold():
    """A tenant may be alerted sooner than ALERT_AFTER_UNSUCCESSFUL (alerts.rules uses Tenant.alert_threshold)."""
    integration = unsaved(Status.FAILING, last_outcome=Outcome.FAILED, consecutive_unsuccessful=3)
    integration.tenant.alert_after_unsuccessful = 5

    assert why(integration)[2][0] == "2 more unsuccessful syncs until the repeated-failure alert."
