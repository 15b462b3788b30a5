"""Properties of the status machine over arbitrary histories.

Hypothesis draws an integration's life: finished sessions (clean, with item
issues, failed on authentication or on something else, unknown, cancelled)
at non-decreasing times, mixed with whatever people can do to it (delete,
restore, deactivate, reactivate, quality assurance in and out, new or revoked
credentials, mapping complete or incomplete). Every step goes through the
module's entry points, `on_session_finished` and `on_action`, and after every
step the result is checked against a reference read of the whole history
written from DESIGN.md's words, not from the module's code:

- precedence: deleted, inactive, credentials_invalid, quality_assurance,
  setup, then the outcome of the last finished session;
- the 3-day rule: credentials_invalid (without revoked credentials) only when
  every session of at least the last CREDENTIALS_INVALID_AFTER failed on
  authentication, with no other outcome and no new credentials between;
- the first-sync rule: the first sync with the mapping complete leaves setup,
  clean -> active, item issues or a non-auth failure -> quality_assurance,
  auth failure -> auth_failing; until an integration has succeeded once, item
  issues and non-auth failures send it to quality assurance;
- a cancelled session teaches nothing; an action that does not apply is
  refused and changes nothing;
- the transition's status and reason are always derive() of its facts.

derive() and on_action() are also checked on arbitrary facts, consistent or
not, so that the precedence and the refusal table hold on every combination
of flags, outcome and auth streak, not only on the ones a history reaches.

Deterministic (derandomized, no example database), so CI sees the same cases.
"""

from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta, timezone

from django.conf import settings as django_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from integrations import status as m
from integrations.status import (
    SUCCESSFUL,
    UNSUCCESSFUL,
    Action,
    Facts,
    IllegalTransition,
    Outcome,
    OutcomeKind,
    Status,
)

THREE_DAYS = timedelta(days=3)
START = datetime(2026, 11, 1, 9, 30, tzinfo=timezone.utc)
SECOND = timedelta(seconds=1)

AUTH_CODES = ("AUTH_EXPIRED", "AUTH_INVALID", "AUTH_FORBIDDEN")
FAILURE_CODES = (
    "VENDOR_UNAVAILABLE",
    "VENDOR_TIMEOUT",
    "VENDOR_BAD_RESPONSE",
    "RATE_LIMITED",
    "INTERNAL_ERROR",
)
UNKNOWN_CODES = ("SYNC_LEASE_LOST", "SYNC_TIMEOUT", "SYNC_NOT_STARTED")

# Deterministic and leaving no example database behind; the pure machine is fast, so be generous.
PROPERTY_SETTINGS = settings(max_examples=400, deadline=None, derandomize=True, database=None)
HISTORY_SETTINGS = settings(PROPERTY_SETTINGS, max_examples=700)


# -- what hypothesis draws ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    """A finished session, `gap` after the previous one."""

    gap: timedelta
    state: str
    error_code: str = ""
    auth_error: bool = False

    def __repr__(self):
        auth = " auth" if self.auth_error else ""
        return f"Session(+{self.gap}, {self.state}{auth} {self.error_code})".replace(" )", ")")


# Gaps that land on the edges of the 3-day rule, and ordinary ones.
gaps = st.one_of(
    st.sampled_from(
        [timedelta(0), SECOND, timedelta(days=1), THREE_DAYS - SECOND, THREE_DAYS, THREE_DAYS + SECOND]
    ),
    st.integers(min_value=0, max_value=36).map(lambda hours: timedelta(hours=hours)),
)

auth_failures = st.builds(Session, gaps, st.just("failed"), st.sampled_from(AUTH_CODES), st.just(True))
sessions = st.one_of(
    st.builds(Session, gaps, st.just("succeeded")),
    # A sync with item issues may name one of them; it is still a success.
    st.builds(Session, gaps, st.just("warnings"), st.sampled_from(["", "ITEM_MISSING_FIELD"])),
    auth_failures,
    st.builds(Session, gaps, st.just("failed"), st.sampled_from(FAILURE_CODES)),
    st.builds(Session, gaps, st.just("unknown"), st.sampled_from(UNKNOWN_CODES)),
    st.builds(Session, gaps, st.just("cancelled")),
)
# Days of failing sign-ins in a row: where the 3-day rule lives.
auth_streaks = st.lists(
    st.builds(
        Session,
        st.sampled_from([timedelta(hours=12), timedelta(days=1), THREE_DAYS - SECOND, THREE_DAYS]),
        st.just("failed"),
        st.sampled_from(AUTH_CODES),
        st.just(True),
    ),
    min_size=2,
    max_size=5,
)
steps = st.one_of(sessions.map(lambda s: [s]), st.sampled_from(list(Action)).map(lambda a: [a]), auth_streaks)
histories = st.lists(steps, max_size=25).map(lambda chunks: [step for chunk in chunks for step in chunk])
initial_facts = st.sampled_from(
    [
        Facts(),  # created, account mapping to do
        Facts(mapping_complete=True),  # a connector that needs no mapping
    ]
)


# -- the reference: DESIGN.md read against the history so far ---------------------------------------

OUTCOME_STATUS = {
    OutcomeKind.NONE: Status.SETUP,  # first sync finished, only a cancelled run on record
    OutcomeKind.SUCCEEDED: Status.ACTIVE,
    OutcomeKind.WARNINGS: Status.WARNINGS,
    OutcomeKind.FAILED: Status.FAILING,
    OutcomeKind.AUTH_FAILED: Status.AUTH_FAILING,
    OutcomeKind.UNKNOWN: Status.UNKNOWN,
}


KIND = {"succeeded": OutcomeKind.SUCCEEDED, "warnings": OutcomeKind.WARNINGS, "unknown": OutcomeKind.UNKNOWN, "cancelled": OutcomeKind.NONE}


def kind_of(session):
    if session.state == "failed":
        return OutcomeKind.AUTH_FAILED if session.auth_error else OutcomeKind.FAILED
    return KIND[session.state]


@dataclass
class Finished:
    """A session the integration learnt from (cancelled ones are not kept), as it happened."""

    kind: str
    at: datetime
    error_code: str
    mapping_complete: bool  # when it finished
    deleted: bool
    never_succeeded_before: bool


@dataclass
class History:
    """Everything that happened to one integration, in order; the expectations are read from it."""

    mapping_complete: bool
    deleted: bool = False
    inactive: bool = False
    quality_assurance: bool = False
    credentials_revoked: bool = False
    finished: list = field(default_factory=list)
    # Index into `finished` of the first session after the latest new credentials.
    credentials_from: int = 0

    def refuses(self, action):
        """Is the action refused now? (Nothing to undo, or deleted: restore first.)"""
        return {
            Action.DELETE: self.deleted,
            Action.RESTORE: not self.deleted,
            Action.DEACTIVATE: self.deleted or self.inactive,
            Action.REACTIVATE: self.deleted or not self.inactive,
            Action.ENTER_QA: self.deleted or self.inactive or self.quality_assurance,
            Action.RELEASE_QA: self.deleted or not self.quality_assurance,
            Action.CREDENTIALS_UPDATED: self.deleted,
            Action.CREDENTIALS_REVOKED: self.deleted or self.credentials_revoked,
            Action.MAPPING_COMPLETED: self.deleted or self.mapping_complete,
            Action.MAPPING_INCOMPLETE: self.deleted or not self.mapping_complete,
        }[action]

    def act(self, action):
        if action in (Action.DELETE, Action.RESTORE):
            self.deleted = action == Action.DELETE
        elif action in (Action.DEACTIVATE, Action.REACTIVATE):
            self.inactive = action == Action.DEACTIVATE
        elif action in (Action.ENTER_QA, Action.RELEASE_QA):
            self.quality_assurance = action == Action.ENTER_QA
        elif action == Action.CREDENTIALS_UPDATED:
            self.credentials_revoked = False
            self.credentials_from = len(self.finished)
        elif action == Action.CREDENTIALS_REVOKED:
            self.credentials_revoked = True
        else:
            self.mapping_complete = action == Action.MAPPING_COMPLETED

    def finish(self, kind, at, error_code):
        if kind == OutcomeKind.NONE:
            return
        session = Finished(kind, at, error_code, self.mapping_complete, self.deleted, not self.ever_succeeded)
        self.finished.append(session)
        # The first-sync rule, as DESIGN.md and the module's contract state it.
        if (
            session.never_succeeded_before
            and kind in (OutcomeKind.WARNINGS, OutcomeKind.FAILED)
            and session.mapping_complete
            and not session.deleted
        ):
            self.quality_assurance = True

    # The facts, each read from the history.

    @property
    def last(self):
        return self.finished[-1] if self.finished else None

    @property
    def ever_succeeded(self):
        return any(s.kind in SUCCESSFUL for s in self.finished)

    @property
    def first_sync_finished(self):
        return any(s.mapping_complete for s in self.finished)

    def trailing(self, kinds, since=0):
        """The latest run of sessions (from index `since` on) whose outcome is in `kinds`."""
        run = []
        for session in reversed(self.finished[since:]):
            if session.kind not in kinds:
                break
            run.append(session)
        return run[::-1]

    @property
    def unsuccessful_streak(self):
        return self.trailing(UNSUCCESSFUL)

    @property
    def auth_streak(self):
        """Auth failures with no other outcome between, and no new credentials since the first."""
        return self.trailing((OutcomeKind.AUTH_FAILED,), since=self.credentials_from)

    @property
    def three_day_rule(self):
        streak = self.auth_streak
        return bool(streak) and streak[-1] is self.last and self.last.at - streak[0].at >= THREE_DAYS

    def expected_facts(self):
        last = self.last
        streak = self.unsuccessful_streak
        auth = self.auth_streak
        return Facts(
            deleted=self.deleted,
            inactive=self.inactive,
            quality_assurance=self.quality_assurance,
            mapping_complete=self.mapping_complete,
            first_sync_finished=self.first_sync_finished,
            ever_succeeded=self.ever_succeeded,
            last_outcome=last.kind if last else OutcomeKind.NONE,
            last_outcome_at=last.at if last else None,
            last_error_code=last.error_code if last and last.kind in UNSUCCESSFUL else "",
            consecutive_unsuccessful=len(streak),
            unsuccessful_since=streak[0].at if streak else None,
            auth_failing_since=auth[0].at if auth else None,
            credentials_revoked=self.credentials_revoked,
        )

    def expected_status(self):
        """DESIGN.md's precedence, highest first."""
        if self.deleted:
            return Status.DELETED
        if self.inactive:
            return Status.INACTIVE
        if self.credentials_revoked or self.three_day_rule:
            return Status.CREDENTIALS_INVALID
        if self.quality_assurance:
            return Status.QUALITY_ASSURANCE
        if not self.mapping_complete or not self.first_sync_finished or self.last is None:
            return Status.SETUP
        return OUTCOME_STATUS[self.last.kind]


# -- running a history through the machine -----------------------------------------------------------


def check_transition(t, status_before):
    assert t.previous_status == status_before
    assert t.changed == (t.status != status_before)
    assert (t.status, t.reason) == m.derive(t.facts, THREE_DAYS)
    assert t.status in Status.values
    assert isinstance(t.reason, str) and t.reason.strip()
    if t.status in (Status.FAILING, Status.UNKNOWN) or (t.status == Status.AUTH_FAILING and t.facts.auth_failing_since):
        assert t.facts.last_error_code in t.reason


def check_against_history(t, history):
    expected = history.expected_facts()
    for f in fields(Facts):
        got, want = getattr(t.facts, f.name), getattr(expected, f.name)
        assert got == want, f"fact {f.name}: machine has {got!r}, the history gives {want!r}"
    assert t.status == history.expected_status(), t.reason


def check_three_day_rule(t, history):
    """Unless the credentials were revoked, credentials_invalid comes only from the 3-day rule."""
    if t.status != Status.CREDENTIALS_INVALID or t.facts.credentials_revoked:
        return
    last = history.last
    assert last is not None and last.kind == OutcomeKind.AUTH_FAILED
    # Some auth failure at least 3 days before the last session starts a run that
    # nothing but auth failures follows, and no new credentials were saved within it.
    first_of_run = len(history.finished) - len(history.trailing((OutcomeKind.AUTH_FAILED,)))
    run_start = max(first_of_run, history.credentials_from)
    assert run_start < len(history.finished)
    assert last.at - history.finished[run_start].at >= THREE_DAYS
    assert all(s.kind == OutcomeKind.AUTH_FAILED for s in history.finished[run_start:])
    assert "authentication" in t.reason and last.error_code in t.reason


def check_outcome_rules(t, history, session, before):
    """What a finished session does when nothing above the outcome overrides it."""
    kind = kind_of(session)
    overridden = before.deleted or before.inactive or before.credentials_revoked
    if kind == OutcomeKind.NONE:
        assert t.facts == before
        return
    if overridden or not before.mapping_complete:
        if not overridden:
            assert t.status in (Status.SETUP, Status.QUALITY_ASSURANCE, Status.CREDENTIALS_INVALID)
        return
    if before.quality_assurance:
        assert t.status in (Status.QUALITY_ASSURANCE, Status.CREDENTIALS_INVALID)
        return
    first_sync = not before.first_sync_finished
    assert t.facts.first_sync_finished
    if kind == OutcomeKind.SUCCEEDED:
        assert t.status == Status.ACTIVE
    elif kind == OutcomeKind.WARNINGS:
        assert t.status == (Status.QUALITY_ASSURANCE if not before.ever_succeeded else Status.WARNINGS)
    elif kind == OutcomeKind.FAILED:
        assert t.status == (Status.QUALITY_ASSURANCE if not before.ever_succeeded else Status.FAILING)
    elif kind == OutcomeKind.UNKNOWN:
        assert t.status == Status.UNKNOWN
    else:
        assert t.status == (Status.CREDENTIALS_INVALID if history.three_day_rule else Status.AUTH_FAILING)
    if first_sync:
        # The first sync's outcome leaves setup, whatever it was.
        assert t.status != Status.SETUP


def run(initial, history_steps, checks=()):
    """Apply the steps through the module's entry points, checking every step; the final (facts, status)."""
    facts = initial
    status, _ = m.derive(facts, THREE_DAYS)
    assert status == Status.SETUP
    history = History(mapping_complete=initial.mapping_complete)
    now = START
    for step in history_steps:
        before_facts, before_status = facts, status
        if isinstance(step, Session):
            now += step.gap
            outcome = Outcome(step.state, now, step.error_code, auth_error=step.auth_error)
            t = m.on_session_finished(facts, status, outcome, THREE_DAYS)
            history.finish(kind_of(step), now, step.error_code)
        else:
            refused = history.refuses(step)
            try:
                t = m.on_action(facts, status, step, THREE_DAYS)
            except IllegalTransition:
                assert refused, f"{step.value} was refused on {facts}"
                continue
            assert not refused, f"{step.value} was allowed on {facts}"
            history.act(step)
        check_transition(t, before_status)
        check_against_history(t, history)
        check_three_day_rule(t, history)
        if isinstance(step, Session):
            check_outcome_rules(t, history, step, before_facts)
        for check in checks:
            check(t, history, step, before_facts)
        facts, status = t.facts, t.status
    return facts, status


# -- the properties ----------------------------------------------------------------------------------


def test_the_threshold_is_three_days():
    assert django_settings.CREDENTIALS_INVALID_AFTER == THREE_DAYS


@HISTORY_SETTINGS
@given(initial_facts, histories)
def test_any_history_follows_the_design(initial, history_steps):
    run(initial, history_steps)


def _precedence(t, history, step, before):
    f = t.facts
    if f.deleted:
        assert t.status == Status.DELETED
    elif f.inactive:
        assert t.status == Status.INACTIVE
    elif f.credentials_revoked:
        assert t.status == Status.CREDENTIALS_INVALID
    elif t.status == Status.CREDENTIALS_INVALID:
        assert history.three_day_rule
    elif f.quality_assurance:
        assert t.status == Status.QUALITY_ASSURANCE
    elif not f.mapping_complete or not f.first_sync_finished:
        assert t.status == Status.SETUP


@HISTORY_SETTINGS
@given(initial_facts, histories)
def test_precedence_holds_for_any_history(initial, history_steps):
    run(initial, history_steps, checks=[_precedence])


# Any facts at all, consistent or not: derive() and on_action() must hold the precedence and the
# refusal table on every combination of flags, outcome and auth streak.
any_facts = st.builds(
    Facts,
    deleted=st.booleans(),
    inactive=st.booleans(),
    quality_assurance=st.booleans(),
    mapping_complete=st.booleans(),
    first_sync_finished=st.booleans(),
    ever_succeeded=st.booleans(),
    last_outcome=st.sampled_from([OutcomeKind.NONE, OutcomeKind.SUCCEEDED, OutcomeKind.WARNINGS, OutcomeKind.FAILED, OutcomeKind.AUTH_FAILED, OutcomeKind.UNKNOWN]),
    last_outcome_at=st.one_of(st.none(), gaps.map(lambda gap: START + gap)),
    last_error_code=st.sampled_from(["", *AUTH_CODES, *FAILURE_CODES]),
    auth_failing_since=st.sampled_from([None, START]),
    credentials_revoked=st.booleans(),
)


@PROPERTY_SETTINGS
@given(any_facts)
def test_derive_holds_the_precedence_for_any_facts(facts):
    three_days_of_auth = (
        facts.last_outcome == OutcomeKind.AUTH_FAILED
        and facts.auth_failing_since is not None
        and facts.last_outcome_at is not None
        and facts.last_outcome_at - facts.auth_failing_since >= THREE_DAYS
    )
    if facts.deleted:
        expected = Status.DELETED
    elif facts.inactive:
        expected = Status.INACTIVE
    elif facts.credentials_revoked or three_days_of_auth:
        expected = Status.CREDENTIALS_INVALID
    elif facts.quality_assurance:
        expected = Status.QUALITY_ASSURANCE
    elif not facts.mapping_complete or not facts.first_sync_finished:
        expected = Status.SETUP
    else:
        expected = OUTCOME_STATUS[facts.last_outcome]
    status, reason = m.derive(facts, THREE_DAYS)
    assert status == expected, reason
    assert m.credentials_invalid(facts, THREE_DAYS) == three_days_of_auth


@PROPERTY_SETTINGS
@given(any_facts, st.sampled_from(list(Action)))
def test_actions_apply_exactly_when_they_make_sense(facts, action):
    history = History(
        mapping_complete=facts.mapping_complete,
        deleted=facts.deleted,
        inactive=facts.inactive,
        quality_assurance=facts.quality_assurance,
        credentials_revoked=facts.credentials_revoked,
    )
    status, _ = m.derive(facts, THREE_DAYS)
    if history.refuses(action):
        try:
            m.on_action(facts, status, action, THREE_DAYS)
        except IllegalTransition as exc:
            assert str(exc).startswith("Cannot ")
        else:
            raise AssertionError(f"{action.value} was allowed on {facts}")
        return
    t = m.on_action(facts, status, action, THREE_DAYS)
    check_transition(t, status)
    history.act(action)
    changed = {f.name for f in fields(Facts) if getattr(t.facts, f.name) != getattr(facts, f.name)}
    expected = {
        name
        for name in ("deleted", "inactive", "quality_assurance", "credentials_revoked", "mapping_complete")
        if getattr(history, name) != getattr(facts, name)
    }
    if action == Action.CREDENTIALS_UPDATED and facts.auth_failing_since is not None:
        expected.add("auth_failing_since")  # new credentials start any auth streak afresh
    assert changed == expected
    assert t.facts.auth_failing_since == (
        None if action == Action.CREDENTIALS_UPDATED else facts.auth_failing_since
    )


BETWEEN = [
    Session(timedelta(hours=1), "succeeded"),
    Session(timedelta(hours=1), "warnings"),
    Session(timedelta(hours=1), "failed", "VENDOR_UNAVAILABLE"),
    Session(timedelta(hours=1), "unknown", "SYNC_LEASE_LOST"),
    Action.CREDENTIALS_UPDATED,
    Session(timedelta(hours=1), "cancelled"),  # teaches nothing: the streak goes on
]


def _total(steps_):
    return sum((s.gap for s in steps_ if isinstance(s, Session)), timedelta(0))


@PROPERTY_SETTINGS
@given(
    st.lists(auth_failures, min_size=1, max_size=12),
    st.sampled_from(BETWEEN),
    st.lists(auth_failures, min_size=1, max_size=12),
)
def test_the_three_day_rule(before, between, after):
    """Auth streaks on a running integration: invalid from exactly 3 days on, never across another outcome."""
    running = Facts(mapping_complete=True, first_sync_finished=True, ever_succeeded=True)
    history_steps = [Session(timedelta(0), "succeeded"), *before, between, *after]
    facts, status = run(running, history_steps)
    streak = [*before, between, *after] if getattr(between, "state", "") == "cancelled" else after
    streak_start = START + _total(history_steps) - _total(streak[1:])
    elapsed = _total(streak[1:])
    assert facts.auth_failing_since == streak_start
    assert facts.last_outcome == OutcomeKind.AUTH_FAILED
    assert facts.last_error_code == after[-1].error_code
    assert m.credentials_invalid(facts, THREE_DAYS) == (elapsed >= THREE_DAYS)
    assert status == (Status.CREDENTIALS_INVALID if elapsed >= THREE_DAYS else Status.AUTH_FAILING)
    countdown = m.countdown_to_credentials_invalid(facts, THREE_DAYS, facts.last_outcome_at)
    assert countdown == max(THREE_DAYS - elapsed, timedelta(0))


@PROPERTY_SETTINGS
@given(st.lists(sessions, min_size=1, max_size=8), st.booleans())
def test_the_first_sync_rule(history_steps, mapping_first):
    """Until one sync succeeds, item issues and non-auth failures go to quality assurance."""
    facts, status = run(
        Facts(), [Action.MAPPING_COMPLETED, *history_steps] if mapping_first else history_steps
    )
    learnt = [kind_of(s) for s in history_steps if kind_of(s) != OutcomeKind.NONE]
    if not mapping_first:
        # Nothing leaves setup while the mapping is incomplete, and no session counts as the first sync;
        # only the 3-day rule, which outranks setup, can show through.
        assert (facts.first_sync_finished, facts.quality_assurance) == (False, False)
        assert status == (Status.CREDENTIALS_INVALID if m.credentials_invalid(facts, THREE_DAYS) else Status.SETUP)
        return
    first_success = next((i for i, k in enumerate(learnt) if k in SUCCESSFUL), len(learnt))
    to_review = any(k in (OutcomeKind.WARNINGS, OutcomeKind.FAILED) for k in learnt[: first_success + 1])
    assert facts.quality_assurance == to_review
    assert facts.first_sync_finished == bool(learnt)
    if to_review:
        assert status == Status.QUALITY_ASSURANCE or (
            status == Status.CREDENTIALS_INVALID and m.credentials_invalid(facts, THREE_DAYS)
        )
    elif not learnt:
        assert status == Status.SETUP
    elif learnt[0] == OutcomeKind.SUCCEEDED and len(learnt) == 1:
        assert status == Status.ACTIVE
    elif learnt[0] == OutcomeKind.AUTH_FAILED and len(learnt) == 1:
        assert status == Status.AUTH_FAILING
    elif learnt[0] == OutcomeKind.UNKNOWN and len(learnt) == 1:
        assert status == Status.UNKNOWN
