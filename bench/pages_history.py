"""The history part of the `make bench-pages` dataset: sessions, timeline events, issues.

Every statement reads the temporary `bench_plan` table bench/pages_data.py
builds (one row per integration: its id, tenant, status, last outcome). Sessions come
first (an integration's `last_session` is its newest finished one), then the
issues, which point at it while open.
"""

from bench.pages_sql import insert_select, next_id, reset_sequence

# The last finished session's state, by the integration's last outcome.
SESSION_STATE = {"succeeded": "succeeded", "warnings": "warnings", "failed": "failed", "auth_failed": "failed",
                 "unknown": "unknown", "": "succeeded"}  # fmt: skip
# What an item issue says, by its code (three wordings each); other codes get GENERIC.
MESSAGES = {
    "ITEM_MISSING_FIELD": (
        'Required field "email" is missing.',
        'Required field "name" is missing.',
        'Required field "country" is missing.',
    ),
    "ITEM_INVALID_VALUE": (
        'Field "phone" is not a valid phone number: "+1 555 01".',
        'Field "country" has an unknown value "Untied States".',
        'Field "vat_number" is longer than 20 characters.',
    ),
    "ITEM_UNMAPPED": (
        "The vendor account of this item is not mapped to one of yours.",
        "The item belongs to a vendor account that is ignored.",
        "The vendor account of this item is not mapped to one of yours.",
    ),
    "ITEM_DUPLICATE": (
        "Another item has the same external id; the later one was skipped.",
        "Another item has the same email address; the later one was skipped.",
        "Another item has the same external id; the later one was skipped.",
    ),
}
GENERIC = ("The item could not be synced.",) * 3
ITEM_TYPES = ("contact", "account", "subscription")


def create_sessions(cursor, sizes):
    from integrations.models import Integration, SyncSession

    base = next_id(cursor, SyncSession)
    # Exactly `sizes.sessions`, spread evenly over the integrations past setup.
    cursor.execute(
        """
        WITH ranked AS (
            SELECT g, row_number() OVER (ORDER BY g) AS r, count(*) OVER () AS n
            FROM bench_plan WHERE status <> 'setup'
        ), counted AS (
            SELECT g, floor(%(total)s::numeric * r / n) - floor(%(total)s::numeric * (r - 1) / n) AS sessions FROM ranked
        )
        UPDATE bench_plan p SET sessions = c.sessions FROM counted c WHERE c.g = p.g;
        UPDATE bench_plan SET open_session = false WHERE sessions < 2;
        WITH offsets AS (SELECT g, sum(sessions) OVER (ORDER BY g) - sessions AS o FROM bench_plan)
        UPDATE bench_plan p SET session_offset = %(base)s + o.o FROM offsets o WHERE o.g = p.g;
        UPDATE bench_plan SET last_session_id = session_offset + CASE WHEN open_session THEN 2 ELSE 1 END
        WHERE sessions > 0;
        """,
        {"total": sizes.sessions, "base": base},
    )
    # k = 0 is the newest; fk counts finished sessions from the newest (-1: the running one).
    fk = "(k - CASE WHEN p.open_session THEN 1 ELSE 0 END)"
    last_state = " ".join(f"WHEN '{o}' THEN '{s}'" for o, s in SESSION_STATE.items())
    state = (
        f"CASE WHEN {fk} < 0 THEN 'running' "
        f"WHEN {fk} < greatest(p.unsuccessful, 1) THEN CASE p.outcome {last_state} ELSE 'succeeded' END "
        "WHEN mod(p.g * 31 + k * 17, 100) < 6 THEN 'failed' "
        "WHEN mod(p.g * 31 + k * 17, 100) < 12 THEN 'warnings' ELSE 'succeeded' END"
    )
    queued = f"CASE WHEN {fk} < 0 THEN now() - make_interval(secs => 20 + mod(p.g, 200)) " \
        "ELSE now() - make_interval(mins => k * k * 37 + mod(p.g, 53) + 6) END"
    seen = "(50 + mod(p.g * 13 + k * 7, 2000))"
    cursor.execute(
        f"""
        CREATE TEMP TABLE bench_sessions AS
        SELECT p.session_offset + k + 1 AS id, p.id AS integration_id, p.g, k, p.error_code AS integration_code,
               {state} AS state, {queued} AS queued_at, {seen} AS seen
        FROM bench_plan p CROSS JOIN LATERAL generate_series(0, p.sessions - 1) k
        """
    )
    count = insert_select(
        cursor,
        SyncSession,
        {
            "id": "s.id",
            "integration_id": "s.integration_id",
            "kind": "CASE WHEN mod(s.k, 8) = 7 THEN 'full' ELSE 'quick' END",
            "trigger": "CASE mod(s.g + s.k, 20) WHEN 0 THEN 'staff' WHEN 1 THEN 'customer' WHEN 2 THEN 'api' "
            "ELSE 'schedule' END",
            "state": "s.state",
            "error_code_id": "CASE s.state WHEN 'failed' THEN coalesce(nullif(s.integration_code, ''), 'VENDOR_TIMEOUT') "
            "WHEN 'unknown' THEN 'SYNC_LEASE_LOST' END",
            "error_message": "CASE s.state WHEN 'failed' THEN 'The vendor answered 503 Service Unavailable three times.' "
            "WHEN 'unknown' THEN 'The worker stopped sending heartbeats; the lease ran out.' ELSE '' END",
            "queued_at": "s.queued_at",
            "started_at": "s.queued_at + interval '2 seconds'",
            "finished_at": "CASE WHEN s.state <> 'running' "
            "THEN s.queued_at + make_interval(secs => 7 + mod(s.g * (s.k + 1), 300)) END",
            "heartbeat_at": "CASE WHEN s.state = 'running' THEN now() - interval '5 seconds' "
            "ELSE s.queued_at + make_interval(secs => 6 + mod(s.g * (s.k + 1), 300)) END",
            "lease_expires_at": "CASE WHEN s.state = 'running' THEN now() + interval '2 minutes' END",
            "worker": "'bench-worker-' || mod(s.g, 4)",
            "items_seen": "s.seen",
            "items_created": "mod(s.g + s.k, 10)",
            "items_updated": "mod(s.g * 3 + s.k, 40)",
            "items_unchanged": "s.seen - mod(s.g + s.k, 10) - mod(s.g * 3 + s.k, 40)",
            "items_failed": "CASE WHEN s.state = 'warnings' THEN 1 + mod(s.g, 30) ELSE 0 END",
            "items_warnings": "CASE WHEN s.state = 'warnings' THEN mod(s.g, 5) ELSE 0 END",
            "http_requests": "2 + s.seen / 1000",
            "pages": "1 + s.seen / 1000",
            "items_total": "s.seen + CASE WHEN s.state = 'running' THEN 500 ELSE 0 END",
            "log": "jsonb_build_array("
            "jsonb_build_object('at', to_char(s.queued_at, 'YYYY-MM-DD\"T\"HH24:MI:SS'), 'level', 'info', "
            "'message', 'Sync started.'), "
            "jsonb_build_object('at', to_char(s.queued_at + interval '3 seconds', 'YYYY-MM-DD\"T\"HH24:MI:SS'), "
            "'level', 'info', 'message', 'Page 1: ' || s.seen || ' items.'), "
            "jsonb_build_object('at', to_char(s.queued_at + interval '7 seconds', 'YYYY-MM-DD\"T\"HH24:MI:SS'), "
            "'level', CASE WHEN s.state IN ('failed', 'unknown') THEN 'error' ELSE 'info' END, "
            "'message', 'Finished: ' || s.state || '.'))",
        },
        "FROM bench_sessions s ORDER BY s.id",
    )
    cursor.execute(
        f"UPDATE {Integration._meta.db_table} i SET last_session_id = p.last_session_id "
        "FROM bench_plan p WHERE p.id = i.id AND p.last_session_id IS NOT NULL"
    )
    cursor.execute("DROP TABLE bench_sessions")
    reset_sequence(cursor, SyncSession)
    return count


def create_events(cursor):
    from integrations.models import IntegrationEvent

    base = next_id(cursor, IntegrationEvent)
    count = insert_select(
        cursor,
        IntegrationEvent,
        {
            "id": "%(base)s + row_number() OVER (ORDER BY p.g, k)",
            "integration_id": "p.id",
            "kind": "CASE k WHEN 1 THEN 'created' WHEN 2 THEN 'status_changed' WHEN 3 THEN 'sync_requested' "
            "ELSE 'status_changed' END",
            "from_status": "CASE WHEN k = 2 THEN 'setup' WHEN k = 4 THEN 'active' ELSE '' END",
            "to_status": "CASE WHEN k = 2 THEN 'active' WHEN k = 4 THEN p.status ELSE '' END",
            "note": "CASE k WHEN 1 THEN 'Created by onboarding.' WHEN 3 THEN 'Sync requested by support.' ELSE '' END",
            "created_at": "now() - make_interval(days => 31 + mod(p.g, 300)) + make_interval(hours => k * (1 + mod(p.g, 200)))",
            "data": "'{}'::jsonb",
        },
        "FROM bench_plan p CROSS JOIN LATERAL generate_series(1, CASE WHEN p.status = 'setup' THEN 1 "
        "WHEN p.status = 'active' THEN 3 ELSE 4 END) k",
        {"base": base},
    )
    reset_sequence(cursor, IntegrationEvent)
    return count


def plan_issues(cursor, sizes, heavy_count):
    """Issues per integration: the heavy ones get `heavy_issues`, the rest share what is left, unevenly."""
    rest = max(0, sizes.issues - heavy_count * sizes.heavy_issues)
    cursor.execute(
        """
        DROP TABLE IF EXISTS bench_issue_plan;
        CREATE TEMP TABLE bench_issue_plan AS
        WITH weights AS (
            SELECT p.*, power(mod(p.g * 2654435761, 1000003)::numeric / 1000003, 3) AS w
            FROM bench_plan p WHERE p.sessions > 0
        ), spread AS (
            SELECT w.*, sum(w) FILTER (WHERE NOT heavy) OVER () AS total,
                   sum(w) FILTER (WHERE NOT heavy) OVER (ORDER BY g) AS upto
            FROM weights w
        )
        SELECT g, id AS integration_id, tenant_id, status, open_pct, last_session_id,
               CASE WHEN heavy THEN %(heavy)s
                    ELSE (floor(%(rest)s * upto / total) - floor(%(rest)s * (upto - w) / total))::int END AS n
        FROM spread;
        DELETE FROM bench_issue_plan WHERE n <= 0;
        ALTER TABLE bench_issue_plan ADD COLUMN issue_offset bigint, ADD COLUMN distinct_n int;
        WITH offsets AS (SELECT g, sum(n) OVER (ORDER BY g) - n AS o FROM bench_issue_plan)
        UPDATE bench_issue_plan i SET issue_offset = o.o, distinct_n = greatest(1, (i.n * 3) / 4)
        FROM offsets o WHERE o.g = i.g;
        """,
        {"heavy": sizes.heavy_issues, "rest": rest},
    )


def create_issues(cursor, item_codes, session_codes, labels):
    """Item issues from the plan, then one open session-level issue per integration whose last sync failed.

    External ids are item-0000001.. per integration; the last quarter of an
    integration's rows repeat earlier items and are always closed, so at most
    one issue per (integration, item type, external id, code) is open.
    """
    from issues.models import SyncIssue

    base = next_id(cursor, SyncIssue)
    # x: the item; c: its code (0-based); h: a per-row number for the mixes; closed: repeats and
    # the share that is not open.
    row = (
        "(SELECT q.*, mod(q.x * 7 + q.g, %(ncodes)s) AS c, mod(q.g * 7919 + q.j * 104729, 1000) AS h, "
        "q.j > q.distinct_n OR mod(q.g * 31 + q.j * 7, 100) >= q.open_pct AS closed, "
        "(%(item_types)s::text[])[1 + mod(q.x, 3)] AS item_type "
        "FROM (SELECT p.*, j, mod(j - 1, p.distinct_n) + 1 AS x "
        "FROM bench_issue_plan p CROSS JOIN LATERAL generate_series(1::bigint, p.n) j) q) r"
    )
    messages = [text for code in item_codes for text in MESSAGES.get(code, GENERIC)]
    seen = (
        "date_trunc('minute', now() - make_interval(secs => CASE WHEN r.closed "
        "THEN 86400 * 7 + mod(r.g * 7919 + r.j * 7727, 86400 * 83) ELSE mod(r.g * 7919 + r.j * 7727, 86400 * 7) END))"
    )
    items = insert_select(
        cursor,
        SyncIssue,
        {
            "id": "%(base)s + r.issue_offset + r.j",
            "tenant_id": "r.tenant_id",
            "integration_id": "r.integration_id",
            "first_session_id": "CASE WHEN NOT r.closed THEN r.last_session_id END",
            "last_session_id": "CASE WHEN NOT r.closed THEN r.last_session_id END",
            "error_code_id": "(%(codes)s::text[])[1 + r.c]",
            "severity": "CASE WHEN mod(r.h, 20) = 0 THEN 'critical' WHEN mod(r.h, 4) = 1 THEN 'warning' "
            "WHEN mod(r.h, 50) = 3 THEN 'info' ELSE 'error' END",
            "source": "CASE mod(r.x, 10) WHEN 0 THEN 'mapping' WHEN 1 THEN 'platform' WHEN 2 THEN 'platform' "
            "ELSE 'vendor' END",
            "item_type": "r.item_type",
            "external_id": "'item-' || lpad(r.x::text, 7, '0')",
            "item_label": "initcap(r.item_type) || ' ' || (%(labels)s::text[])[1 + mod(r.x, 20)] || ' #' || r.x",
            "vendor_url": "CASE WHEN mod(r.h, 4) = 0 THEN '' "
            "ELSE 'https://vendor.example/' || r.item_type || 's/' || r.x END",
            "message": "(%(messages)s::text[])[1 + r.c * 3 + mod(r.x, 3)]",
            "details": "jsonb_build_object('attempts', 1 + mod(r.h, 5), 'page', 1 + r.x / 1000)",
            "occurrences": "1 + mod(r.h * 3, 40)",
            "first_seen_at": f"{seen} - make_interval(hours => mod(r.x, 500)::int)",
            "last_seen_at": seen,
            "state": "CASE WHEN NOT r.closed THEN 'open' WHEN mod(r.h, 10) = 0 THEN 'ignored' ELSE 'resolved' END",
            "resolved_at": f"CASE WHEN r.closed THEN least(now(), {seen} + interval '30 minutes') END",
            "resolution_note": "CASE WHEN r.closed AND mod(r.h, 10) = 0 THEN 'Known vendor data problem.' ELSE '' END",
        },
        f"FROM {row}",
        {"base": base, "codes": item_codes, "ncodes": len(item_codes), "labels": list(labels),
         "messages": messages, "item_types": list(ITEM_TYPES)},
    )  # fmt: skip
    sessions = insert_select(
        cursor,
        SyncIssue,
        {
            "id": f"(SELECT max(id) FROM {SyncIssue._meta.db_table}) + row_number() OVER (ORDER BY p.g)",
            "tenant_id": "p.tenant_id",
            "integration_id": "p.id",
            "first_session_id": "p.last_session_id",
            "last_session_id": "p.last_session_id",
            "error_code_id": "p.error_code",
            "severity": "'error'",
            "source": "CASE WHEN p.error_code LIKE 'SYNC%%' THEN 'engine' ELSE 'vendor' END",
            "item_type": "''",
            "external_id": "''",
            "message": "'The sync did not finish: ' || p.error_code || '.'",
            "occurrences": "greatest(p.unsuccessful, 1)",
            "first_seen_at": "now() - make_interval(hours => greatest(p.unsuccessful, 1))",
            "last_seen_at": "now() - make_interval(mins => mod(p.g, 55))",
            "state": "'open'",
        },
        "FROM bench_plan p WHERE p.sessions > 0 AND p.error_code = ANY(%(codes)s::text[])",
        {"codes": session_codes},
    )
    reset_sequence(cursor, SyncIssue)
    return items + sessions


def fill_stored_counters(cursor):
    """An integer column on Integration named like open_issue* is filled with the open issues it counts.

    The bench writes issues with SQL, around whatever keeps such a counter in
    step; without this the lists would sort by zeros. Nothing happens when
    there is no such column.
    """
    from django.db import models

    from integrations.models import Integration
    from issues.models import SyncIssue

    table = Integration._meta.db_table
    filled = []
    for field in Integration._meta.concrete_fields:
        if "open_issue" in field.name and isinstance(field, models.IntegerField):
            cursor.execute(f'UPDATE {table} SET "{field.column}" = 0')
            cursor.execute(
                f"""
                UPDATE {table} i SET "{field.column}" = c.n
                FROM (SELECT integration_id, count(*) AS n FROM {SyncIssue._meta.db_table}
                      WHERE state = 'open' GROUP BY integration_id) c
                WHERE c.integration_id = i.id
                """
            )
            filled.append(field.column)
    return filled
