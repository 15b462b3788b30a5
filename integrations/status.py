"""The integration status machine: pure functions, no I/OutcomeKind.

An integration's status is derived from a handful of facts (flags set by
people, the setup state, the last finished session and the current streaks)
with DESIGN.md's precedence, highest first:

    deleted, inactive, credentials_invalid, quality_assurance, setup,
    then the outcome of the last finished session.

A transition takes the current facts and either a finished session's
outcome or a person's action, checks that it is legal, and returns the new
facts with the status and reason they imply. `integrations.services` applies
the result to the row and writes the IntegrationEvent.
"""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum

from integrations.models import Integration

Status = Integration.Status
OutcomeKind = Integration.Outcome  # the last finished session as the machine sees it
SUCCESSFUL = Integration.SUCCESSFUL_OUTCOMES
UNSUCCESSFUL = Integration.UNSUCCESSFUL_OUTCOMES


class Action(str, Enum):
    """What a person (or a setup step) can do to an integration's status."""

    DEACTIVATE = "deactivate"
    REACTIVATE = "reactivate"
    DELETE = "delete"
    RESTORE = "restore"
    ENTER_QA = "enter_qa"
    RELEASE_QA = "release_qa"
    CREDENTIALS_UPDATED = "credentials_updated"
    CREDENTIALS_REVOKED = "credentials_revoked"
    MAPPING_COMPLETED = "mapping_completed"
    MAPPING_INCOMPLETE = "mapping_incomplete"


class IllegalTransition(ValueError):
    """The action does not apply to the integration as it is now."""


@dataclass(frozen=True)
class Facts:
    """Everything the status depends on. Mirrors columns of Integration."""

    deleted: bool = False
    inactive: bool = False
    quality_assurance: bool = False
    mapping_complete: bool = False
    first_sync_finished: bool = False
    ever_succeeded: bool = False
    last_outcome: str = OutcomeKind.NONE
    last_outcome_at: datetime | None = None
    last_error_code: str = ""
    consecutive_unsuccessful: int = 0
    unsuccessful_since: datetime | None = None
    auth_failing_since: datetime | None = None
    credentials_revoked: bool = False


@dataclass(frozen=True)
class Outcome:
    """A finished session as the status machine needs it."""

    state: str  # SyncSession.State value
    finished_at: datetime
    error_code: str = ""
    auth_error: bool = False  # the error code's category is auth

    @property
    def kind(self):
        if self.state == "succeeded":
            return OutcomeKind.SUCCEEDED
        if self.state == "warnings":
            return OutcomeKind.WARNINGS
        if self.state == "failed":
            return OutcomeKind.AUTH_FAILED if self.auth_error else OutcomeKind.FAILED
        if self.state == "unknown":
            return OutcomeKind.UNKNOWN
        if self.state == "cancelled":
            return OutcomeKind.NONE
        raise IllegalTransition(f"A session in state {self.state!r} has not finished.")


@dataclass(frozen=True)
class Transition:
    facts: Facts
    status: str
    reason: str
    previous_status: str

    @property
    def changed(self):
        return self.status != self.previous_status


def credentials_invalid(facts, threshold):
    """Auth has failed on every sync for at least `threshold`, nothing else between."""
    return (
        facts.last_outcome == OutcomeKind.AUTH_FAILED
        and facts.auth_failing_since is not None
        and facts.last_outcome_at is not None
        and facts.last_outcome_at - facts.auth_failing_since >= threshold
    )


def derive(facts, threshold):
    """(status, reason) for the facts, by DESIGN.md's precedence."""
    if facts.deleted:
        return Status.DELETED, "Deleted by staff; restorable until purged."
    if facts.inactive:
        return Status.INACTIVE, "Switched off; no syncs run."
    if facts.credentials_revoked:
        return Status.CREDENTIALS_INVALID, "Credentials were revoked; syncs are paused until someone re-authenticates."
    if credentials_invalid(facts, threshold):
        return Status.CREDENTIALS_INVALID, (
            f"Every sync since {_when(facts.auth_failing_since)} failed on authentication "
            f"({facts.last_error_code}); syncs are paused until new credentials are saved."
        )
    if facts.quality_assurance:
        return Status.QUALITY_ASSURANCE, "Under quality assurance: scheduled syncs are paused while staff review."
    if not facts.mapping_complete:
        return Status.SETUP, "Account mapping is incomplete: every vendor account must be mapped or ignored."
    if not facts.first_sync_finished:
        return Status.SETUP, "Waiting for the first sync to finish."
    return _from_outcome(facts)


def _from_outcome(facts):
    outcome, code = facts.last_outcome, facts.last_error_code
    if outcome == OutcomeKind.SUCCEEDED:
        return Status.ACTIVE, "The last sync succeeded."
    if outcome == OutcomeKind.WARNINGS:
        return Status.WARNINGS, "The last sync succeeded, but some items have issues."
    if outcome == OutcomeKind.AUTH_FAILED and facts.auth_failing_since is None:
        return Status.AUTH_FAILING, "New credentials were saved after authentication failed; the next sync checks them."
    if outcome == OutcomeKind.AUTH_FAILED:
        return Status.AUTH_FAILING, (
            f"The last sync failed on authentication ({code}); failing since "
            f"{_when(facts.auth_failing_since)}."
        )
    if outcome == OutcomeKind.FAILED:
        return Status.FAILING, (
            f"The last sync failed ({code}); {facts.consecutive_unsuccessful} unsuccessful in a row."
        )
    if outcome == OutcomeKind.UNKNOWN:
        return Status.UNKNOWN, f"The engine could not confirm how the last sync ended ({code})."
    # First sync finished with no outcome on record: only after a cancelled run.
    return Status.SETUP, "Waiting for the first sync to finish."


def _when(moment):
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "an unknown time"


def on_session_finished(facts, current_status, outcome, threshold):
    """The transition for a finished session's outcome."""
    kind = outcome.kind
    if kind == OutcomeKind.NONE:  # cancelled: nothing about the integration is learnt
        status, reason = derive(facts, threshold)
        return Transition(facts, status, reason, current_status)

    changes = {
        "last_outcome": kind,
        "last_outcome_at": outcome.finished_at,
        "last_error_code": outcome.error_code if kind in UNSUCCESSFUL else "",
    }
    if kind in SUCCESSFUL:
        changes.update(consecutive_unsuccessful=0, unsuccessful_since=None, auth_failing_since=None)
    else:
        changes.update(
            consecutive_unsuccessful=facts.consecutive_unsuccessful + 1,
            unsuccessful_since=facts.unsuccessful_since or outcome.finished_at,
        )
        if kind == OutcomeKind.AUTH_FAILED:
            changes["auth_failing_since"] = facts.auth_failing_since or outcome.finished_at
        else:
            changes["auth_failing_since"] = None

    # The first-sync rule: item issues or a non-auth failure on an integration
    # that never succeeded go to quality assurance for staff to review.
    if not facts.ever_succeeded and kind in (OutcomeKind.WARNINGS, OutcomeKind.FAILED) and facts.mapping_complete and not facts.deleted:
        changes["quality_assurance"] = True
    if kind in SUCCESSFUL:
        changes["ever_succeeded"] = True
    if facts.mapping_complete:
        changes["first_sync_finished"] = True

    new = replace(facts, **changes)
    status, reason = derive(new, threshold)
    return Transition(new, status, reason, current_status)


_ACTION_RULES = {
    # action: (refused when, message, changes)
    Action.DELETE: (lambda f: f.deleted, "It is already deleted.", {"deleted": True}),
    Action.RESTORE: (lambda f: not f.deleted, "It is not deleted.", {"deleted": False}),
    Action.DEACTIVATE: (
        lambda f: f.deleted or f.inactive,
        "It is already inactive or deleted.",
        {"inactive": True},
    ),
    Action.REACTIVATE: (
        lambda f: f.deleted or not f.inactive,
        "It is not inactive (or it is deleted: restore it first).",
        {"inactive": False},
    ),
    Action.ENTER_QA: (
        lambda f: f.deleted or f.inactive or f.quality_assurance,
        "It is already in quality assurance, or it is inactive or deleted.",
        {"quality_assurance": True},
    ),
    Action.RELEASE_QA: (
        lambda f: f.deleted or not f.quality_assurance,
        "It is not in quality assurance.",
        {"quality_assurance": False},
    ),
    Action.CREDENTIALS_UPDATED: (
        lambda f: f.deleted,
        "It is deleted: restore it first.",
        {"auth_failing_since": None, "credentials_revoked": False},
    ),
    Action.CREDENTIALS_REVOKED: (
        lambda f: f.deleted or f.credentials_revoked,
        "Its credentials are already revoked.",
        {"credentials_revoked": True},
    ),
    Action.MAPPING_COMPLETED: (
        lambda f: f.deleted or f.mapping_complete,
        "Its account mapping is already complete.",
        {"mapping_complete": True},
    ),
    Action.MAPPING_INCOMPLETE: (
        lambda f: f.deleted or not f.mapping_complete,
        "Its account mapping is already incomplete.",
        {"mapping_complete": False},
    ),
}


def on_action(facts, current_status, action, threshold):
    """The transition for a person's action; IllegalTransition if it does not apply."""
    action = Action(action)
    refused, message, changes = _ACTION_RULES[action]
    if refused(facts):
        raise IllegalTransition(f"Cannot {action.value.replace('_', ' ')}: {message}")
    new = replace(facts, **changes)
    status, reason = derive(new, threshold)
    return Transition(new, status, reason, current_status)


def countdown_to_credentials_invalid(facts, threshold, now):
    """How long auth may keep failing before credentials_invalid, or None."""
    if facts.last_outcome != OutcomeKind.AUTH_FAILED or facts.auth_failing_since is None:
        return None
    remaining = facts.auth_failing_since + threshold - now
    return max(remaining, timedelta(0))
