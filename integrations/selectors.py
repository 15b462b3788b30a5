"""What the portal and the API read: tenant-scoped querysets and plain words.

Everything a customer sees goes through `for_tenant`, so an id of another
tenant is simply not found (404), never forbidden (which would confirm it
exists).
"""

from datetime import timedelta

from django.conf import settings
from django.db.models import F, OuterRef, Q, Subquery

from integrations.models import Integration, SyncSession
from integrations.statuses import DECLARATIONS, cause_of
from issues.models import ErrorCode, SyncIssue

Status = Integration.Status

def customer_words(subject):
    """(headline, what it means) in the customer's words, from the status's declaration.

    Given an integration rather than a status, the meaning is the one for the
    cause that put it there (`statuses.cause_of`): revoked credentials read
    differently from credentials that kept failing.
    """
    status, cause = (subject.status, cause_of(subject)) if hasattr(subject, "status") else (subject, "")
    found = DECLARATIONS.get(status)
    return (found.headline, found.meaning_for(cause)) if found else (status, "")


def api_status(status):
    """The stable word programs read for a status."""
    found = DECLARATIONS.get(status)
    return found.api_word if found else "unknown"


def api_status_words():
    return sorted({d.api_word for d in DECLARATIONS.values() if d.status != Integration.Status.DELETED})


def with_list_columns(queryset):
    """Integrations with what every list of them shows, read in the list's one query.

    The console's changelist and the portal's and the API's lists use these
    annotations, never a query per row:

    - `sync_session_id`, `sync_state`, `sync_seen`, `sync_total`: the queued or
      running session, if any (at most one: a conditional unique constraint);
    - `last_sync_at`: when the last session finished.

    The open issues are the stored `open_issue_count` field (kept by whoever
    opens and closes issues, see `issues.counts`), not counted here.
    """
    open_sessions = SyncSession.objects.filter(
        integration=OuterRef("pk"), state__in=SyncSession.OPEN_STATES
    ).order_by()
    return queryset.annotate(
        sync_session_id=Subquery(open_sessions.values("pk")[:1]),
        sync_state=Subquery(open_sessions.values("state")[:1]),
        sync_seen=Subquery(open_sessions.values("items_seen")[:1]),
        sync_total=Subquery(open_sessions.values("items_total")[:1]),
        last_sync_at=F("last_session__finished_at"),
    )


def integrations_for_tenant(tenant):
    """The tenant's integrations (deleted ones are gone for the customer), with the list columns annotated."""
    return with_list_columns(
        Integration.objects.filter(tenant=tenant, deleted_at__isnull=True)
        .select_related("tenant", "last_session", "last_session__error_code")
        .order_by("name", "pk")
    )


def what_next(integration, now):
    """One sentence: what will happen without anyone doing anything."""
    status = integration.status
    if status == Status.SETUP:
        if not integration.mapping_complete:
            return "Map your vendor accounts to start the first sync."
        return "The first sync is running or about to run."
    fixed = DECLARATIONS[status].next_step
    if fixed:
        return fixed
    if integration.paused and integration.paused_by_customer:
        return "Scheduled syncs are paused by your organisation's admin; resume them to sync again."
    if integration.paused:
        return "Syncs are paused by our support team."
    if integration.next_sync_at:
        if integration.next_sync_at <= now:
            return "The next sync is due now."
        minutes = max(1, int((integration.next_sync_at - now).total_seconds() // 60))
        if minutes < 120:
            return f"Next sync in {minutes} minute{'s' if minutes != 1 else ''}."
        return f"Next sync in {minutes // 60} hours."
    return "The next sync will be scheduled after the current one."


def recent_sessions(integration, limit=30):
    return list(integration.sessions.select_related("error_code").order_by("-queued_at")[:limit])


ISSUE_FILTERS = ("code", "category", "severity", "state", "q")


class BadFilter(ValueError):
    pass


def filtered_issues(integration, params):
    """The integration's issues filtered by the query parameters; BadFilter on unknown values."""
    if any("\x00" in str(params.get(name, "")) for name in ISSUE_FILTERS):
        raise BadFilter("Filters cannot contain NUL characters.")
    qs = SyncIssue.objects.filter(integration=integration).select_related("error_code")
    code = params.get("code", "")
    if code:
        if not ErrorCode.objects.filter(pk=code).exists():
            raise BadFilter(f"Unknown error code {code!r}.")
        qs = qs.filter(error_code_id=code)
    category = params.get("category", "")
    if category:
        if category not in ErrorCode.Category.values:
            raise BadFilter(f"Unknown category {category!r}; use one of {', '.join(ErrorCode.Category.values)}.")
        qs = qs.filter(error_code__category=category)
    severity = params.get("severity", "")
    if severity:
        from issues.models import Severity

        if severity not in Severity.values:
            raise BadFilter(f"Unknown severity {severity!r}; use one of {', '.join(Severity.values)}.")
        qs = qs.filter(severity=severity)
    state = params.get("state", "open")
    if state and state != "all":
        if state not in SyncIssue.State.values:
            raise BadFilter(f"Unknown state {state!r}; use open, resolved, ignored or all.")
        qs = qs.filter(state=state)
    q = params.get("q", "").strip()
    if q:
        if len(q) > 200:
            raise BadFilter("The search text is too long (200 characters at most).")
        qs = qs.filter(Q(external_id__startswith=q) | Q(item_label__istartswith=q))
    return qs


INTEGRATION_FILTERS = ("status", "connector", "q")


def integration_status_filter(api=False):
    """{a value the `status` filter takes: the statuses it stands for}, in the order statuses are declared.

    The portal takes the statuses themselves; the API takes the words its answers
    give (`api_status`), one of which can stand for several statuses.
    """
    groups = {}
    for found in DECLARATIONS.values():
        if found.status != Status.DELETED:
            groups.setdefault(found.api_word if api else found.status, []).append(found.status)
    return groups


def _refuse(name, value, allowed):
    return BadFilter(f"Unknown {name} {str(value)[:60]!r}; '{name}' must be one of {', '.join(allowed)}.")


def filtered_integrations(tenant, params, *, api=False):
    """The tenant's integrations (never deleted ones) filtered by status, connector key and name.

    `q` is a case-insensitive part of the name, looked for among the tenant's
    rows only (the tenant's index narrows them first). BadFilter names the
    parameter and the values it takes.
    """
    from integrations.connectors.base import connector_keys

    qs = integrations_for_tenant(tenant)
    status = params.get("status", "")
    if status:
        statuses = integration_status_filter(api)
        if status not in statuses:
            raise _refuse("status", status, statuses)
        qs = qs.filter(status__in=statuses[status])
    connector = params.get("connector", "")
    if connector:
        known = connector_keys()
        if connector not in known:
            raise _refuse("connector", connector, known)
        qs = qs.filter(connector=connector)
    q = params.get("q", "").strip()
    if q:
        if "\x00" in q:
            raise BadFilter("The search text cannot contain NUL characters.")
        if len(q) > 200:
            raise BadFilter("The search text is too long (200 characters at most).")
        qs = qs.filter(name__icontains=q)
    return qs


def development_inactive_cutoff(now):
    return now - settings.DEVELOPMENT_INACTIVE_AFTER


DAY = timedelta(days=1)
