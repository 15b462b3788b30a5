"""What the query-count tests share: measuring a request, saying which queries grew, busy integrations.

A list page with an N+1 runs one more query per row it lists: the same SQL
with another id each time. `grown` collapses the literals of every query to
`?` and names the shapes that ran more often in the larger measurement, so a
failing query-count test points at the repeated query instead of leaving the
reader to compare two long lists by eye.

An N+1 shows only on rows that have the relation: an integration without a
last session reads `last_session` as None without a query. `add_integrations`
therefore builds integrations the way a list shows them at their busiest.
"""

import re
from collections import Counter
from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations.models import Integration, SyncSession
from issues.models import SyncIssue

Status = Integration.Status

_LITERALS = re.compile(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b")
_IN_LISTS = re.compile(r" IN \((?:\?, )*\?\)")
# A list that fits on one page is read without LIMIT, a longer one with it: the same query.
_PAGE_LIMIT = re.compile(r" LIMIT \?(?: OFFSET \?)?$")


def measure(client, url, method="get", **kwargs):
    """(response, [SQL of every query the request ran])."""
    with CaptureQueriesContext(connection) as queries:
        response = getattr(client, method)(url, **kwargs)
    return response, [q["sql"] for q in queries.captured_queries]


def shape(sql):
    """The SQL with its literals (and IN lists of them, and a final LIMIT) replaced by `?`."""
    return _PAGE_LIMIT.sub("", _IN_LISTS.sub(" IN (?...)", _LITERALS.sub("?", sql)))


def brief(sql):
    """The SQL without its column list: `SELECT ... FROM "table" WHERE ...` says which query repeats."""
    depth = 0
    for at, char in enumerate(sql):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and sql.startswith(" FROM ", at):
            return sql[:7] + "..." + sql[at:] if sql.startswith("SELECT ") else sql
    return sql


def grown(small, large):
    """What differs between two measurements of one page, as lines for an assertion message."""
    before, after = Counter(map(shape, small)), Counter(map(shape, large))
    lines = [f"{len(small)} queries at the small size, {len(large)} at the large size"]
    for sql in sorted(set(before) | set(after), key=lambda s: after[s] - before[s], reverse=True):
        if before[sql] != after[sql]:
            lines.append(f"  {before[sql]} -> {after[sql]} times: {brief(sql)[:400]}")
    return lines


def report(small, large):
    """An assertion message for {page: [SQL]} measured at two sizes: every page whose count changed."""
    lines = []
    for page in small:
        if len(small[page]) != len(large.get(page, ())):
            lines += [f"{page}:", *grown(small[page], large.get(page, []))]
    return "\n".join(lines)


# The statuses a tenant's list shows, in turn, and the last session each one follows from.
LISTED_STATUSES = (
    Status.ACTIVE,
    Status.WARNINGS,
    Status.FAILING,
    Status.AUTH_FAILING,
    Status.CREDENTIALS_INVALID,
    Status.QUALITY_ASSURANCE,
    Status.INACTIVE,
)
LAST_SESSION = {
    Status.WARNINGS: (SyncSession.State.WARNINGS, None),
    Status.FAILING: (SyncSession.State.FAILED, "VENDOR_UNAVAILABLE"),
    Status.AUTH_FAILING: (SyncSession.State.FAILED, "AUTH_EXPIRED"),
    Status.CREDENTIALS_INVALID: (SyncSession.State.FAILED, "AUTH_EXPIRED"),
}


def add_integrations(make, tenant, count, name="Integration"):
    """`count` more integrations of the tenant, each with a last session and open issues.

    `make(tenant, status, **fields)` creates one integration whose facts agree
    with its status (the portal's `integration_in` fixture). Every integration
    gets a finished last session (a failed one carries its error code) and
    two open issues; every third one also has a sync running now.
    """
    now = timezone.now()
    start = Integration.objects.filter(tenant=tenant).count()
    rows = [
        make(tenant, LISTED_STATUSES[n % len(LISTED_STATUSES)], name=f"{name} {n:03d}")
        for n in range(start, start + count)
    ]
    last = SyncSession.objects.bulk_create(
        [
            SyncSession(
                integration=row,
                state=LAST_SESSION.get(row.status, (SyncSession.State.SUCCEEDED, None))[0],
                error_code_id=LAST_SESSION.get(row.status, (None, None))[1],
                error_message="" if row.status not in LAST_SESSION else "it broke",
                queued_at=now - timedelta(minutes=20 + n),
                started_at=now - timedelta(minutes=19 + n),
                finished_at=now - timedelta(minutes=15 + n),
                items_seen=100 + n,
            )
            for n, row in enumerate(rows)
        ]
    )
    for row, session in zip(rows, last):
        row.last_session = session
    Integration.objects.bulk_update(rows, ["last_session"])
    SyncSession.objects.bulk_create(
        [
            SyncSession(
                integration=row,
                state=SyncSession.State.RUNNING,
                trigger=SyncSession.Trigger.CUSTOMER,
                queued_at=now - timedelta(minutes=1),
                started_at=now,
                items_seen=10 * n,
                items_total=1000,
            )
            for n, row in enumerate(rows)
            if n % 3 == 0 and row.status != Status.INACTIVE
        ]
    )
    SyncIssue.objects.bulk_create(
        [
            SyncIssue(
                tenant=tenant,
                integration=row,
                error_code_id="ITEM_MISSING_FIELD",
                item_type="item",
                external_id=f"listed-{k}",
                item_label=f"Item {k}",
                first_seen_at=now - timedelta(days=1),
                last_seen_at=now,
            )
            for row in rows
            for k in range(2)
        ]
    )
    return rows


ISSUE_CODES = ("ITEM_MISSING_FIELD", "ITEM_INVALID_VALUE", "ITEM_DUPLICATE", "ITEM_UNMAPPED")


def add_issues(integration, total, now):
    """Bulk-create item issues on `integration` until it has `total`: mixed codes, severities and states."""
    from datetime import timedelta

    from issues.models import SyncIssue

    have = SyncIssue.objects.filter(integration=integration).count()
    return SyncIssue.objects.bulk_create(
        [
            SyncIssue(
                tenant_id=integration.tenant_id,
                integration=integration,
                error_code_id=ISSUE_CODES[n % len(ISSUE_CODES)],
                severity=("warning", "error", "info")[n % 3],
                state=("open", "open", "resolved", "ignored")[n % 4],
                item_type="item",
                external_id=f"item-{n:07d}",
                item_label=f"Item {n}",
                first_seen_at=now - timedelta(days=2),
                last_seen_at=now - timedelta(seconds=n),
                occurrences=1 + n % 5,
            )
            for n in range(have, total)
        ],
        batch_size=2000,
    )
