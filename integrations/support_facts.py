"""What support asks first when a customer needs help with an integration, read from the timeline.

Support's first steps for a problem nobody has named yet (seed 000: force a
sync, re-authenticate a token-based integration, check the mapping) start
from four questions: which integration, since when, was a re-authentication
or a forced sync already tried, and is the account mapping complete. The
answers are in the integration's timeline (IntegrationEvent) and sessions,
so the portal's "contact support" fills them in and the customer only
corrects what is wrong. A help request keeps them as [label, value] rows
(`SupportRequest.facts`), which the console shows as a table.

A fixed number of queries (four, plus the mapping's one), whatever the
length of the timeline: only the events since the problem began are read,
newest first and at most EVENTS_READ of them.
"""

from dataclasses import dataclass
from datetime import timezone as dt_timezone

from integrations import selectors
from integrations.connectors.base import get_connector_class
from integrations.mapping import mapping_state
from integrations.models import Integration, IntegrationEvent, SyncSession
from integrations.words import counted

Status = Integration.Status
Kind = IntegrationEvent.Kind
EVENTS_READ = 50
REAUTH_KINDS = (Kind.LINK_SENT, Kind.LINK_USED, Kind.CREDENTIALS_UPDATED)
UNSUCCESSFUL_STATES = (SyncSession.State.FAILED, SyncSession.State.UNKNOWN)


def when(moment):
    return f"{moment.astimezone(dt_timezone.utc):%Y-%m-%d %H:%M} UTC" if moment else ""


@dataclass(frozen=True)
class SupportFacts:
    integration: str
    status: str
    problem_began_at: object  # a datetime, or None when the status shows no problem
    problem_began: str  # in words, with how it is known
    first_failure: str
    reauthenticated: bool
    reauthentication: str
    forced_sync: bool
    forced_syncs: str
    mapping: str

    def rows(self, *, began=None, reauthenticated=None, forced_sync=None):
        """[label, value] rows for the request; the customer's corrections, when given, replace the timeline's."""
        return [
            ["Integration", self.integration],
            ["Status when asked", self.status],
            ["Problem began", began or self.problem_began],
            ["First unsuccessful sync", self.first_failure or "none since then"],
            ["Re-authentication tried", _answer(reauthenticated, self.reauthenticated, self.reauthentication)],
            ["Forced sync tried", _answer(forced_sync, self.forced_sync, self.forced_syncs)],
            ["Account mapping", self.mapping],
        ]


def _answer(customer, found, detail):
    said = ("yes" if found else "no") if customer is None else customer
    if customer is not None and customer != ("yes" if found else "no"):
        return f"{said} (the customer's answer; the timeline shows: {detail})"
    return f"{said}: {detail}"


def support_facts(integration):
    """The answers the timeline gives for `integration` now."""
    began_at, began = problem_began(integration)
    events = list(
        integration.events.filter(kind__in=(*REAUTH_KINDS, Kind.SYNC_REQUESTED))
        .filter(**({"created_at__gte": began_at} if began_at else {}))
        .select_related("session")
        .order_by("-created_at", "-id")[:EVENTS_READ]
    )
    reauth = [e for e in events if e.kind in REAUTH_KINDS]
    forced = [e for e in events if e.kind == Kind.SYNC_REQUESTED]
    label = get_connector_class(integration.connector).label or integration.connector
    return SupportFacts(
        integration=f"{integration.name} ({label})",
        status=selectors.customer_words(integration)[0],
        problem_began_at=began_at,
        problem_began=began,
        first_failure=first_failure(integration, began_at),
        reauthenticated=any(e.kind in (Kind.LINK_USED, Kind.CREDENTIALS_UPDATED) for e in reauth),
        reauthentication=describe_reauth(reauth, began_at),
        forced_sync=bool(forced),
        forced_syncs=describe_forced(forced, began_at),
        mapping=describe_mapping(integration),
    )


def problem_began(integration):
    """(when, in words): when the integration last moved from a sound status into one needing attention.

    A status needing attention that followed another (failing, then
    authentication failing) continues the same problem. Without that event
    (purged by retention), the stored streak start says "at least since".
    """
    status = integration.status
    if status in Integration.NEEDS_ATTENTION or status == Status.WARNINGS:
        troubled = Integration.NEEDS_ATTENTION
        if status == Status.WARNINGS:
            troubled = (*troubled, Status.WARNINGS)
        event = (
            integration.events.filter(kind=Kind.STATUS_CHANGED, to_status__in=troubled)
            .exclude(from_status__in=troubled)
            .order_by("-created_at", "-id")
            .first()
        )
        if event is not None:
            before = selectors.customer_words(event.from_status)[0] if event.from_status else "new"
            after = selectors.customer_words(event.to_status)[0]
            return event.created_at, f"{when(event.created_at)} (the status went from {before} to {after})"
        since = integration.unsuccessful_since or integration.status_changed_at
        if since:
            return since, f"at least since {when(since)}"
        return None, "unknown: the timeline does not say"
    if status == Status.SETUP:
        since = integration.status_changed_at or integration.created_at
        return since, f"in setup since {when(since)}"
    return None, f"not from the status ({selectors.customer_words(status)[0]}); please say when you noticed it"


def first_failure(integration, began_at):
    if began_at is None:
        return ""
    session = (
        integration.sessions.filter(state__in=UNSUCCESSFUL_STATES, finished_at__gte=began_at)
        .order_by("finished_at", "id")
        .first()
    )
    if session is None:
        return ""
    code = f" with {session.error_code_id}" if session.error_code_id else ""
    return f"session {session.pk}, {session.get_state_display().lower()}{code} at {when(session.finished_at)}"


def describe_reauth(events, began_at):
    since = f" since {when(began_at)}" if began_at else ""
    done = [e for e in events if e.kind in (Kind.LINK_USED, Kind.CREDENTIALS_UPDATED)]
    if done:
        return f"new credentials saved {when(done[0].created_at)}" + (f" ({done[0].note})" if done[0].note else "")
    sent = [e for e in events if e.kind == Kind.LINK_SENT]
    if sent:
        return f"a re-authentication link was sent {when(sent[0].created_at)} and not used yet"
    return f"no new credentials{since}"


def describe_forced(events, began_at):
    if not events:
        return "no sync asked for by a person" + (f" since {when(began_at)}" if began_at else "")
    latest, session = events[0], events[0].session
    what = "a sync"
    if session is not None:
        what = f"a {session.get_kind_display().lower()} sync ({session.get_trigger_display().lower()})"
        what += f", {session.get_state_display().lower()}"
        if session.error_code_id:
            what += f" with {session.error_code_id}"
    more = f"; {len(events)} asked for in all" if len(events) > 1 else ""
    return f"{what}, asked for {when(latest.created_at)}{more}"


def describe_mapping(integration):
    state = mapping_state(integration)
    if state.total == 0:
        return "no vendor accounts to map" if integration.mapping_complete else "no vendor accounts discovered yet"
    if state.complete:
        return f"complete: {counted(state.total, 'vendor account')}, each mapped or ignored"
    return f"incomplete: {state.unmapped:,} of {counted(state.total, 'vendor account')} not mapped yet"

