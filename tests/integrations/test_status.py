"""The status machine, table-driven over every status and every outcome."""

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from integrations import status as m
from integrations.status import (
    Action,
    Facts,
    IllegalTransition,
    Outcome,
    OutcomeKind,
    Status,
)

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
THREE_DAYS = timedelta(days=3)

# A representative set of facts for each status (the state before the outcome).
RUNNING = Facts(mapping_complete=True, first_sync_finished=True, ever_succeeded=True)
BEFORE = {
    "setup_mapping": Facts(mapping_complete=False),
    "setup_first_sync": Facts(mapping_complete=True),
    Status.ACTIVE: replace(RUNNING, last_outcome=OutcomeKind.SUCCEEDED, last_outcome_at=NOW - timedelta(hours=1)),
    Status.WARNINGS: replace(RUNNING, last_outcome=OutcomeKind.WARNINGS, last_outcome_at=NOW - timedelta(hours=1)),
    Status.FAILING: replace(
        RUNNING,
        last_outcome=OutcomeKind.FAILED,
        last_error_code="VENDOR_UNAVAILABLE",
        consecutive_unsuccessful=4,
        unsuccessful_since=NOW - timedelta(hours=4),
        last_outcome_at=NOW - timedelta(hours=1),
    ),
    Status.UNKNOWN: replace(
        RUNNING,
        last_outcome=OutcomeKind.UNKNOWN,
        last_error_code="SYNC_LEASE_LOST",
        consecutive_unsuccessful=1,
        unsuccessful_since=NOW - timedelta(hours=1),
        last_outcome_at=NOW - timedelta(hours=1),
    ),
    Status.AUTH_FAILING: replace(
        RUNNING,
        last_outcome=OutcomeKind.AUTH_FAILED,
        last_error_code="AUTH_EXPIRED",
        consecutive_unsuccessful=2,
        unsuccessful_since=NOW - timedelta(days=1),
        auth_failing_since=NOW - timedelta(days=1),
        last_outcome_at=NOW - timedelta(hours=1),
    ),
    Status.CREDENTIALS_INVALID: replace(
        RUNNING,
        last_outcome=OutcomeKind.AUTH_FAILED,
        last_error_code="AUTH_INVALID",
        consecutive_unsuccessful=30,
        unsuccessful_since=NOW - timedelta(days=4),
        auth_failing_since=NOW - timedelta(days=4),
        last_outcome_at=NOW - timedelta(hours=1),
    ),
    Status.QUALITY_ASSURANCE: replace(RUNNING, quality_assurance=True, last_outcome=OutcomeKind.WARNINGS),
    Status.INACTIVE: replace(RUNNING, inactive=True, last_outcome=OutcomeKind.SUCCEEDED),
    Status.DELETED: replace(RUNNING, deleted=True, last_outcome=OutcomeKind.SUCCEEDED),
}

OUTCOMES = {
    "succeeded": Outcome("succeeded", NOW),
    "warnings": Outcome("warnings", NOW),
    "failed": Outcome("failed", NOW, "VENDOR_UNAVAILABLE"),
    "auth_failed": Outcome("failed", NOW, "AUTH_EXPIRED", auth_error=True),
    "unknown": Outcome("unknown", NOW, "SYNC_LEASE_LOST"),
    "cancelled": Outcome("cancelled", NOW),
}

# The ordinary life of a running integration: the outcome decides.
RUNNING_ROW = {
    "succeeded": Status.ACTIVE,
    "warnings": Status.WARNINGS,
    "failed": Status.FAILING,
    "auth_failed": Status.AUTH_FAILING,
    "unknown": Status.UNKNOWN,
}

EXPECTED = {
    "setup_mapping": dict.fromkeys(OUTCOMES, Status.SETUP),
    "setup_first_sync": {
        # The first-sync rule.
        "succeeded": Status.ACTIVE,
        "warnings": Status.QUALITY_ASSURANCE,
        "failed": Status.QUALITY_ASSURANCE,
        "auth_failed": Status.AUTH_FAILING,
        "unknown": Status.UNKNOWN,
        "cancelled": Status.SETUP,
    },
    Status.ACTIVE: {**RUNNING_ROW, "cancelled": Status.ACTIVE},
    Status.WARNINGS: {**RUNNING_ROW, "cancelled": Status.WARNINGS},
    Status.FAILING: {**RUNNING_ROW, "cancelled": Status.FAILING},
    Status.UNKNOWN: {**RUNNING_ROW, "cancelled": Status.UNKNOWN},
    # One day into the auth streak: another auth failure keeps it failing.
    Status.AUTH_FAILING: {**RUNNING_ROW, "cancelled": Status.AUTH_FAILING},
    # A staff-run sync that gets through proves the credentials work again.
    Status.CREDENTIALS_INVALID: {
        **RUNNING_ROW,
        "auth_failed": Status.CREDENTIALS_INVALID,
        "cancelled": Status.CREDENTIALS_INVALID,
    },
    Status.QUALITY_ASSURANCE: dict.fromkeys(OUTCOMES, Status.QUALITY_ASSURANCE),
    Status.INACTIVE: dict.fromkeys(OUTCOMES, Status.INACTIVE),
    Status.DELETED: dict.fromkeys(OUTCOMES, Status.DELETED),
}

CASES = [(before, outcome, EXPECTED[before][outcome]) for before in BEFORE for outcome in OUTCOMES]


def test_table_covers_every_status_and_outcome():
    statuses = {m.derive(facts, THREE_DAYS)[0] for facts in BEFORE.values()}
    assert statuses == set(Status.values)
    assert len(CASES) == len(BEFORE) * len(OUTCOMES)


@pytest.mark.parametrize(("before", "outcome", "expected"), CASES)
def test_outcome_table(before, outcome, expected):
    facts = BEFORE[before]
    current, _ = m.derive(facts, THREE_DAYS)
    t = m.on_session_finished(facts, current, OUTCOMES[outcome], THREE_DAYS)
    assert t.status == expected
    assert t.reason
    assert t.changed == (expected != current)


@pytest.mark.parametrize("before", [k for k in BEFORE if not k.startswith("setup_mapping")])
def test_counters(before):
    facts = BEFORE[before]
    current, _ = m.derive(facts, THREE_DAYS)
    for name in ("failed", "auth_failed", "unknown"):
        t = m.on_session_finished(facts, current, OUTCOMES[name], THREE_DAYS)
        assert t.facts.consecutive_unsuccessful == facts.consecutive_unsuccessful + 1
        assert t.facts.unsuccessful_since == (facts.unsuccessful_since or NOW)
    for name in ("succeeded", "warnings"):
        t = m.on_session_finished(facts, current, OUTCOMES[name], THREE_DAYS)
        assert t.facts.consecutive_unsuccessful == 0
        assert t.facts.unsuccessful_since is None
        assert t.facts.auth_failing_since is None
        assert t.facts.ever_succeeded
    cancelled = m.on_session_finished(facts, current, OUTCOMES["cancelled"], THREE_DAYS)
    assert cancelled.facts == facts


def test_unsuccessful_streak_counts_up_and_resets():
    facts, status = BEFORE[Status.ACTIVE], Status.ACTIVE
    for expected_count in range(1, 12):
        t = m.on_session_finished(facts, status, OUTCOMES["failed"], THREE_DAYS)
        facts, status = t.facts, t.status
        assert facts.consecutive_unsuccessful == expected_count
    t = m.on_session_finished(facts, status, OUTCOMES["unknown"], THREE_DAYS)
    assert t.facts.consecutive_unsuccessful == 12
    t = m.on_session_finished(t.facts, t.status, OUTCOMES["succeeded"], THREE_DAYS)
    assert (t.status, t.facts.consecutive_unsuccessful) == (Status.ACTIVE, 0)


def auth_failure_at(moment):
    return Outcome("failed", moment, "AUTH_INVALID", auth_error=True)


@pytest.mark.parametrize(
    ("elapsed", "expected"),
    [
        (timedelta(0), Status.AUTH_FAILING),
        (timedelta(days=1), Status.AUTH_FAILING),
        (timedelta(days=2, hours=23), Status.AUTH_FAILING),
        (timedelta(days=2, hours=23, minutes=59, seconds=59), Status.AUTH_FAILING),
        (timedelta(days=3), Status.CREDENTIALS_INVALID),
        (timedelta(days=5), Status.CREDENTIALS_INVALID),
    ],
)
def test_three_day_rule(elapsed, expected):
    start = NOW
    t = m.on_session_finished(BEFORE[Status.ACTIVE], Status.ACTIVE, auth_failure_at(start), THREE_DAYS)
    assert (t.status, t.facts.auth_failing_since) == (Status.AUTH_FAILING, start)
    t = m.on_session_finished(t.facts, t.status, auth_failure_at(start + elapsed), THREE_DAYS)
    assert t.status == expected
    assert t.facts.auth_failing_since == start


def test_another_outcome_between_restarts_the_auth_streak():
    t = m.on_session_finished(BEFORE[Status.ACTIVE], Status.ACTIVE, auth_failure_at(NOW), THREE_DAYS)
    for outcome in ("failed", "unknown", "succeeded"):
        between = m.on_session_finished(
            t.facts, t.status, replace(OUTCOMES[outcome], finished_at=NOW + timedelta(days=1)), THREE_DAYS
        )
        assert between.facts.auth_failing_since is None
        after = m.on_session_finished(
            between.facts, between.status, auth_failure_at(NOW + timedelta(days=3, hours=1)), THREE_DAYS
        )
        assert after.status == Status.AUTH_FAILING
        assert after.facts.auth_failing_since == NOW + timedelta(days=3, hours=1)


def test_threshold_is_a_parameter():
    t = m.on_session_finished(BEFORE[Status.ACTIVE], Status.ACTIVE, auth_failure_at(NOW), timedelta(hours=1))
    t = m.on_session_finished(t.facts, t.status, auth_failure_at(NOW + timedelta(hours=1)), timedelta(hours=1))
    assert t.status == Status.CREDENTIALS_INVALID


def test_first_sync_rule_applies_while_never_succeeded():
    # Auth failed first, new credentials, then the first real data has issues.
    facts = BEFORE["setup_first_sync"]
    t = m.on_session_finished(facts, Status.SETUP, OUTCOMES["auth_failed"], THREE_DAYS)
    assert t.status == Status.AUTH_FAILING and t.facts.first_sync_finished
    t = m.on_session_finished(t.facts, t.status, OUTCOMES["warnings"], THREE_DAYS)
    assert t.status == Status.QUALITY_ASSURANCE
    # Once it has succeeded, item issues are ordinary warnings.
    t = m.on_session_finished(BEFORE[Status.ACTIVE], Status.ACTIVE, OUTCOMES["warnings"], THREE_DAYS)
    assert t.status == Status.WARNINGS


def test_unknown_first_sync_does_not_enter_quality_assurance():
    t = m.on_session_finished(BEFORE["setup_first_sync"], Status.SETUP, OUTCOMES["unknown"], THREE_DAYS)
    assert t.status == Status.UNKNOWN and not t.facts.quality_assurance


@pytest.mark.parametrize("outcome", list(OUTCOMES))
def test_deleted_stays_deleted_whatever_the_session_says(outcome):
    for flags in ({}, {"inactive": True}, {"quality_assurance": True}, {"mapping_complete": False}):
        facts = replace(BEFORE[Status.DELETED], **flags)
        t = m.on_session_finished(facts, Status.DELETED, OUTCOMES[outcome], THREE_DAYS)
        assert t.status == Status.DELETED
        assert not t.changed


def test_precedence_order():
    everything = replace(
        BEFORE[Status.CREDENTIALS_INVALID],
        deleted=True,
        inactive=True,
        quality_assurance=True,
        mapping_complete=False,
    )
    order = [
        ("deleted", Status.DELETED),
        ("inactive", Status.INACTIVE),
        ("auth_failing_since", Status.CREDENTIALS_INVALID),
        ("quality_assurance", Status.QUALITY_ASSURANCE),
        ("mapping_complete", Status.SETUP),
    ]
    facts = everything
    for field, expected in order:
        assert m.derive(facts, THREE_DAYS)[0] == expected
        cleared = {"mapping_complete": True} if field == "mapping_complete" else {field: None if field == "auth_failing_since" else False}
        facts = replace(facts, **cleared)
    assert m.derive(facts, THREE_DAYS)[0] == Status.AUTH_FAILING


ACTION_CASES = [
    # (before, action, expected status or None when refused)
    (Status.ACTIVE, Action.DELETE, Status.DELETED),
    (Status.DELETED, Action.DELETE, None),
    (Status.DELETED, Action.RESTORE, Status.ACTIVE),
    (Status.ACTIVE, Action.RESTORE, None),
    (Status.FAILING, Action.DEACTIVATE, Status.INACTIVE),
    (Status.INACTIVE, Action.DEACTIVATE, None),
    (Status.DELETED, Action.DEACTIVATE, None),
    (Status.INACTIVE, Action.REACTIVATE, Status.ACTIVE),
    (Status.ACTIVE, Action.REACTIVATE, None),
    (Status.WARNINGS, Action.ENTER_QA, Status.QUALITY_ASSURANCE),
    (Status.QUALITY_ASSURANCE, Action.ENTER_QA, None),
    (Status.INACTIVE, Action.ENTER_QA, None),
    (Status.QUALITY_ASSURANCE, Action.RELEASE_QA, Status.WARNINGS),
    (Status.ACTIVE, Action.RELEASE_QA, None),
    (Status.CREDENTIALS_INVALID, Action.CREDENTIALS_UPDATED, Status.AUTH_FAILING),
    (Status.AUTH_FAILING, Action.CREDENTIALS_UPDATED, Status.AUTH_FAILING),
    (Status.DELETED, Action.CREDENTIALS_UPDATED, None),
    (Status.ACTIVE, Action.CREDENTIALS_REVOKED, Status.CREDENTIALS_INVALID),
    ("setup_mapping", Action.MAPPING_COMPLETED, Status.SETUP),
    (Status.ACTIVE, Action.MAPPING_COMPLETED, None),
    (Status.ACTIVE, Action.MAPPING_INCOMPLETE, Status.SETUP),
]


@pytest.mark.parametrize(("before", "action", "expected"), ACTION_CASES)
def test_actions(before, action, expected):
    facts = BEFORE[before]
    current, _ = m.derive(facts, THREE_DAYS)
    if expected is None:
        with pytest.raises(IllegalTransition):
            m.on_action(facts, current, action, THREE_DAYS)
        return
    t = m.on_action(facts, current, action, THREE_DAYS)
    assert t.status == expected


def test_new_credentials_clear_the_streak_and_the_next_failure_starts_a_new_one():
    facts = BEFORE[Status.CREDENTIALS_INVALID]
    t = m.on_action(facts, Status.CREDENTIALS_INVALID, Action.CREDENTIALS_UPDATED, THREE_DAYS)
    assert t.facts.auth_failing_since is None
    again = m.on_session_finished(t.facts, t.status, auth_failure_at(NOW), THREE_DAYS)
    assert (again.status, again.facts.auth_failing_since) == (Status.AUTH_FAILING, NOW)
    ok = m.on_session_finished(t.facts, t.status, OUTCOMES["succeeded"], THREE_DAYS)
    assert ok.status == Status.ACTIVE


def test_revoked_credentials_stay_invalid_until_new_ones():
    t = m.on_action(BEFORE[Status.ACTIVE], Status.ACTIVE, Action.CREDENTIALS_REVOKED, THREE_DAYS)
    t2 = m.on_session_finished(t.facts, t.status, OUTCOMES["succeeded"], THREE_DAYS)
    assert t2.status == Status.CREDENTIALS_INVALID
    t3 = m.on_action(t2.facts, t2.status, Action.CREDENTIALS_UPDATED, THREE_DAYS)
    assert t3.status == Status.ACTIVE


def test_unfinished_session_is_refused():
    with pytest.raises(IllegalTransition):
        m.on_session_finished(BEFORE[Status.ACTIVE], Status.ACTIVE, Outcome("running", NOW), THREE_DAYS)


def test_countdown_to_credentials_invalid():
    facts = BEFORE[Status.AUTH_FAILING]
    left = m.countdown_to_credentials_invalid(facts, THREE_DAYS, NOW)
    assert left == timedelta(days=2)
    assert m.countdown_to_credentials_invalid(BEFORE[Status.ACTIVE], THREE_DAYS, NOW) is None
