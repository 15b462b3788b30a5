"""The dataset `make bench-pages` measures on, written with INSERT ... SELECT generate_series.

At scale 1: 200 tenants (one with 2,000 integrations), 20,000 integrations
across statuses and connectors, their account mappings, 200,000 sessions
(`last_session` set, a few running), a few timeline events each, ~2,000,000
issues (five integrations with 100,000 each, the rest spread unevenly), staff
users, a tenant admin and an API key. `generate(scale)` returns what the page
list needs (ids, users, the raw API key); `find()` reads it back from a kept
database. This module writes the people, tenants, integrations and mappings;
bench/pages_history.py the sessions, events and issues; bench/pages_sql.py
says how (every column accounted for, foreign-key triggers off, indexes
rebuilt after the load).
"""

import json
from dataclasses import dataclass

from bench import pages_history
from bench.pages_sql import (
    bulk_load_session,
    insert_select,
    next_id,
    reset_sequence,
    say,
    secondary_indexes_rebuilt,
    share_case,
    step,
)

BIG_TENANT_SLUG = "bench-big-msp"
SUPERUSER = "bench-admin"
TENANT_ADMIN = "bench-customer"
HEAVY_NAME = "Simulator big-issues {}"
HEAVY_COUNT = 5  # integrations with 100,000 issues each at scale 1; the first two in the big tenant

# key, name prefix, share of integrations (%), settings
CONNECTORS = (
    ("simulator", "Simulator", 35, {"account": "healthy", "page_size": 1000}),
    ("rest", "REST contacts", 25, {"base_url": "https://api.vendor.example/v2", "items.endpoint": "/contacts"}),
    ("carddav", "CardDAV address book", 20, {"addressbook": "/contacts/", "mark_source_items": False}),
    ("pax8", "Pax8 subscriptions", 8, {}),
    ("connectwise_manage", "ConnectWise Manage", 5, {}),
    ("proofpoint_essentials", "Proofpoint Essentials", 3, {}),
    ("microsoft_graph_mailboxes", "Microsoft Graph mailboxes", 2, {}),
    ("hubspot_contacts", "HubSpot contacts", 2, {}),
)
# status, share (%), outcome of the last finished session, its error code, % of new issues still open
STATUSES = (
    ("active", 55, "succeeded", "", 15),
    ("warnings", 15, "warnings", "", 55),
    ("failing", 8, "failed", "VENDOR_UNAVAILABLE", 50),
    ("unknown", 2, "unknown", "SYNC_LEASE_LOST", 40),
    ("auth_failing", 4, "auth_failed", "AUTH_INVALID", 40),
    ("credentials_invalid", 3, "auth_failed", "AUTH_EXPIRED", 40),
    ("quality_assurance", 2, "failed", "VENDOR_BAD_RESPONSE", 70),
    ("setup", 4, "", "", 0),
    ("inactive", 4, "succeeded", "", 10),
    ("deleted", 3, "succeeded", "", 10),
)
LABELS = ("Jane Doe", "John Smith", "Acme Corp", "Globex", "Initech", "Umbrella", "Hooli", "Stark Industries",
          "Wayne Enterprises", "Tyrell", "Cyberdyne", "Soylent", "Vandelay", "Pied Piper", "Dunder Mifflin",
          "Oceanic", "Wonka", "Gringotts", "Monarch", "Nakatomi")  # fmt: skip


@dataclass
class Sizes:
    tenants: int
    integrations: int
    big_tenant_integrations: int
    sessions: int
    issues: int
    heavy_issues: int

    @classmethod
    def at(cls, scale):
        tenants = max(5, round(200 * scale))
        integrations = max(tenants * 5, round(20_000 * scale))
        big = max(HEAVY_COUNT, round(2_000 * scale))
        return cls(
            tenants=tenants,
            integrations=integrations,
            big_tenant_integrations=min(big, integrations - tenants),
            sessions=round(200_000 * scale),
            issues=round(2_000_000 * scale),
            heavy_issues=round(100_000 * scale),
        )


@dataclass
class Dataset:
    """What the page list needs to know about the data."""

    big_tenant_id: int
    heavy_integration_id: int  # in the big tenant, with `heavy_issues` issues
    superuser_id: int
    tenant_admin_id: int
    api_key: str
    written: str = ""  # what generate() wrote, in words


# -- the steps -----------------------------------------------------------------


def error_codes():
    """(item-level codes, session-level codes) from the catalog."""
    from issues.models import ErrorCode

    codes = set(ErrorCode.objects.values_list("code", flat=True))
    needed = {code for *_, code, _ in STATUSES if code} | {"VENDOR_TIMEOUT", "SYNC_LEASE_LOST"}
    if needed - codes:
        raise RuntimeError(f"The error catalog lacks {', '.join(sorted(needed - codes))}: the sessions refer to them.")
    items = sorted(c for c in codes if c.startswith("ITEM_")) or sorted(codes)
    return items, sorted({code for *_, code, _ in STATUSES if code})


def create_people():
    from django.contrib.auth import get_user_model

    User = get_user_model()
    superuser = User(username=SUPERUSER, email="bench-admin@example.com", is_staff=True, is_superuser=True)
    superuser.set_unusable_password()
    superuser.save()
    for n in range(1, 5):
        support = User(username=f"bench-support-{n}", email=f"support{n}@example.com", is_staff=True)
        support.set_unusable_password()
        support.save()
    customer = User(username=TENANT_ADMIN, email="it@big-msp.example.com", first_name="Casey", last_name="Customer")
    customer.set_unusable_password()
    customer.save()
    return superuser, customer


def create_tenants(cursor, sizes):
    from integrations.models import Tenant

    base = next_id(cursor, Tenant)
    insert_select(
        cursor,
        Tenant,
        {
            "id": "%(base)s + g",
            "name": "CASE WHEN g = 1 THEN 'Big MSP (bench)' "
            "ELSE 'Tenant ' || lpad(g::text, 3, '0') || ' ' || (%(labels)s::text[])[1 + mod(g, 20)] END",
            "slug": "CASE WHEN g = 1 THEN %(big_slug)s ELSE 'bench-tenant-' || g END",
            "environment": "CASE WHEN mod(g, 10) = 0 THEN 'development' ELSE 'production' END",
            "alert_emails": "'alerts@tenant' || g || '.example.com'",
            "last_api_request_at": "now() - make_interval(mins => mod(g * 37, 600))",
            "new_vendor_accounts": "CASE WHEN mod(g, 4) = 0 THEN 'ask' ELSE 'map' END",
            "created_at": "now() - make_interval(days => 400 - mod(g, 365))",
        },
        "FROM generate_series(1, %(tenants)s) g",
        {"base": base, "tenants": sizes.tenants, "labels": list(LABELS), "big_slug": BIG_TENANT_SLUG},
    )
    reset_sequence(cursor, Tenant)
    return base + 1  # the big tenant


def plan_integrations(cursor, sizes, big_tenant_id, base):
    """A temporary table with one row per integration to create: id, tenant, connector, status, what follows."""
    nb = sizes.big_tenant_integrations
    heavy = [1, 2] + [nb + n for n in range(1, HEAVY_COUNT - 1)]
    connector_key = share_case("mod(g * 7919, 100)", CONNECTORS, 2)
    status = share_case("mod(g * 104729 + 13, 100)", STATUSES, 1)
    cursor.execute("DROP TABLE IF EXISTS bench_plan")
    cursor.execute(
        f"""
        CREATE TEMP TABLE bench_plan AS
        SELECT g, %(base)s + g AS id,
               CASE WHEN g <= %(nb)s THEN %(big)s
                    ELSE %(big)s + 1 + mod(g - %(nb)s - 1, %(tenants)s - 1) END AS tenant_id,
               g = ANY(%(heavy)s::int[]) AS heavy,
               CASE WHEN g = ANY(%(heavy)s::int[]) THEN 'simulator' ELSE {connector_key} END AS connector,
               CASE WHEN g = ANY(%(heavy)s::int[]) THEN 'warnings' ELSE {status} END AS status,
               array_position(%(heavy)s::int[], g) AS heavy_rank
        FROM generate_series(1, %(n)s) g
        """,
        {"base": base, "nb": nb, "big": big_tenant_id, "tenants": sizes.tenants, "heavy": heavy,
         "n": sizes.integrations},
    )  # fmt: skip
    outcome = " ".join(f"WHEN '{s}' THEN '{o}'" for s, _, o, _, _ in STATUSES)
    code = " ".join(f"WHEN '{s}' THEN '{c}'" for s, _, _, c, _ in STATUSES)
    open_pct = " ".join(f"WHEN '{s}' THEN {p}" for s, _, _, _, p in STATUSES)
    cursor.execute(
        f"""
        ALTER TABLE bench_plan
            ADD COLUMN outcome text, ADD COLUMN error_code text, ADD COLUMN open_pct int,
            ADD COLUMN unsuccessful int, ADD COLUMN open_session boolean,
            ADD COLUMN sessions int DEFAULT 0, ADD COLUMN session_offset bigint DEFAULT 0,
            ADD COLUMN last_session_id bigint;
        UPDATE bench_plan SET
            outcome = CASE status {outcome} END,
            error_code = CASE status {code} END,
            open_pct = CASE WHEN heavy THEN 50 ELSE CASE status {open_pct} END END,
            unsuccessful = CASE WHEN status = 'failing' THEN 1 + mod(g, 20)
                                WHEN status IN ('auth_failing', 'credentials_invalid') THEN 3 + mod(g, 10)
                                WHEN status IN ('unknown', 'quality_assurance') THEN 1 ELSE 0 END,
            open_session = status IN ('active', 'warnings') AND mod(g, 50) = 7;
        """
    )
    return heavy


def create_integrations(cursor, ciphertext):
    from integrations.models import Integration

    settings_case = " ".join(
        f"WHEN '{key}' THEN %(settings_{index})s::jsonb" for index, (key, *_) in enumerate(CONNECTORS)
    )
    name_case = " ".join(f"WHEN '{key}' THEN '{prefix}'" for key, prefix, *_ in CONNECTORS)
    params = {f"settings_{index}": json.dumps(row[3]) for index, row in enumerate(CONNECTORS)}
    params.update({"ciphertext": ciphertext, "heavy_name": HEAVY_NAME.replace("{}", "")})
    insert_select(
        cursor,
        Integration,
        {
            "id": "p.id",
            "tenant_id": "p.tenant_id",
            "connector": "p.connector",
            "kind": "CASE WHEN p.connector = 'connectwise_manage' THEN 'psa' ELSE 'vendor' END",
            "name": f"CASE WHEN p.heavy THEN %(heavy_name)s || p.heavy_rank "
            f"ELSE (CASE p.connector {name_case} ELSE p.connector END) || ' ' || lpad(p.g::text, 5, '0') END",
            "settings": f"CASE p.connector {settings_case} ELSE '{{}}'::jsonb END",
            "credentials_ciphertext": "%(ciphertext)s",
            "credentials_set_at": "now() - make_interval(days => 5 + mod(p.g, 80))",
            "credentials_expire_at": "CASE WHEN p.connector = 'pax8' THEN now() + make_interval(days => mod(p.g, 60)) END",
            "status": "p.status",
            "status_changed_at": "now() - make_interval(hours => mod(p.g * 13, 720))",
            "status_reason": "CASE p.status WHEN 'active' THEN 'The last sync succeeded.' "
            "WHEN 'warnings' THEN 'The last sync succeeded with item issues.' "
            "WHEN 'setup' THEN 'Waiting for the account mapping.' "
            "ELSE 'The last ' || (1 + p.unsuccessful) || ' syncs did not succeed.' END",
            "mapping_complete": "p.status <> 'setup' OR mod(p.g, 2) = 0",
            "first_sync_finished_at": "CASE WHEN p.status <> 'setup' "
            "THEN now() - make_interval(days => 30 + mod(p.g, 300)) END",
            "last_outcome": "p.outcome",
            "last_outcome_at": "CASE WHEN p.status <> 'setup' THEN now() - make_interval(mins => mod(p.g, 55)) END",
            "last_error_code": "p.error_code",
            "consecutive_unsuccessful": "p.unsuccessful",
            "unsuccessful_since": "CASE WHEN p.unsuccessful > 0 THEN now() - make_interval(hours => p.unsuccessful) END",
            "auth_failing_since": "CASE WHEN p.status = 'auth_failing' THEN now() - interval '1 day' "
            "WHEN p.status = 'credentials_invalid' THEN now() - interval '4 days' END",
            "quality_assurance_since": "CASE WHEN p.status = 'quality_assurance' THEN now() - interval '2 days' END",
            "quality_assurance_reason": "CASE WHEN p.status = 'quality_assurance' "
            "THEN 'First sync found item problems; checking the vendor data.' ELSE '' END",
            "quality_assurance_due": "CASE WHEN p.status = 'quality_assurance' THEN current_date + 3 END",
            "deactivated_at": "CASE WHEN p.status = 'inactive' THEN now() - interval '10 days' END",
            "deleted_at": "CASE WHEN p.status = 'deleted' THEN now() - interval '5 days' END",
            "last_success_at": "CASE WHEN p.status = 'setup' THEN NULL "
            "ELSE now() - make_interval(hours => p.unsuccessful, mins => mod(p.g, 55)) END",
            "next_sync_at": "CASE WHEN p.status IN ('setup', 'credentials_invalid', 'quality_assurance', "
            "'inactive', 'deleted') THEN NULL ELSE now() + make_interval(mins => mod(p.g, 60)) END",
            "sync_interval": "interval '1 hour'",
            "paused": "mod(p.g, 97) = 0",
            "paused_reason": "CASE WHEN mod(p.g, 97) = 0 THEN 'Paused while the vendor migrates.' ELSE '' END",
            "created_at": "now() - make_interval(days => 31 + mod(p.g, 300))",
        },
        "FROM bench_plan p ORDER BY p.g",
        params,
    )
    reset_sequence(cursor, Integration)


def create_mappings(cursor):
    from integrations.models import AccountMapping

    base = next_id(cursor, AccountMapping)
    count = insert_select(
        cursor,
        AccountMapping,
        {
            "id": "%(base)s + row_number() OVER (ORDER BY p.g, k)",
            "integration_id": "p.id",
            "vendor_account_id": "'acct-' || p.g || '-' || k",
            "vendor_account_name": "(%(labels)s::text[])[1 + mod(p.g + k, 20)] || ' ' || k",
            "tenant_account": "CASE WHEN p.status = 'setup' AND mod(p.g, 2) = 1 AND k = 1 THEN '' "
            "WHEN k = 3 THEN '' ELSE 'customer-' || mod(p.g * k, 5000) END",
            "ignored": "k = 3",
            "discovered_at": "now() - make_interval(days => 31 + mod(p.g, 300))",
        },
        "FROM bench_plan p CROSS JOIN LATERAL generate_series(1, 1 + mod(p.g, 3)) k",
        {"base": base, "labels": list(LABELS)},
    )
    reset_sequence(cursor, AccountMapping)
    return count


def create_access(big_tenant_id, customer):
    from integrations.api_keys import create_api_key
    from integrations.models import Membership, Tenant

    tenant = Tenant.objects.get(pk=big_tenant_id)
    Membership.objects.create(user=customer, tenant=tenant, role=Membership.Role.ADMIN, receives_alerts=True)
    _, raw = create_api_key(tenant, "bench pages")
    return raw


def generate(scale):
    """Write the dataset; returns (Dataset, [(step, seconds)])."""
    from django.db import connection, transaction

    from integrations import crypto
    from integrations.models import Integration, SyncSession
    from issues.models import SyncIssue

    sizes = Sizes.at(scale)
    say(
        f"Generating at scale {scale}: {sizes.tenants:,} tenants, {sizes.integrations:,} integrations "
        f"({sizes.big_tenant_integrations:,} in the big tenant), {sizes.sessions:,} sessions, "
        f"~{sizes.issues:,} issues ({HEAVY_COUNT} integrations with {sizes.heavy_issues:,})"
    )
    timings = []
    item_codes, session_codes = error_codes()
    ciphertext = crypto.encrypt_json({"api_key": "good-key"})
    with connection.cursor() as cursor, bulk_load_session(cursor):
        with step("users", timings), transaction.atomic():
            superuser, customer = create_people()
        with step("tenants", timings), transaction.atomic():
            big_tenant_id = create_tenants(cursor, sizes)
        with step("integrations", timings), transaction.atomic():
            base = next_id(cursor, Integration)
            heavy = plan_integrations(cursor, sizes, big_tenant_id, base)
            create_integrations(cursor, ciphertext)
        with step("account mappings", timings), transaction.atomic():
            mappings = create_mappings(cursor)
        with (
            secondary_indexes_rebuilt(cursor, SyncSession, timings),
            step("sessions", timings),
            transaction.atomic(),
        ):
            sessions = pages_history.create_sessions(cursor, sizes)
        with step("timeline events", timings), transaction.atomic():
            events = pages_history.create_events(cursor)
        with secondary_indexes_rebuilt(cursor, SyncIssue, timings), step("issues", timings), transaction.atomic():
            pages_history.plan_issues(cursor, sizes, HEAVY_COUNT)
            issues = pages_history.create_issues(cursor, item_codes, session_codes, LABELS)
        with step("stored counters", timings), transaction.atomic():
            filled = pages_history.fill_stored_counters(cursor)
        with step("tenant admin, API key", timings), transaction.atomic():
            api_key = create_access(big_tenant_id, customer)
        cursor.execute("DROP TABLE IF EXISTS bench_plan, bench_issue_plan")
    with step("VACUUM ANALYZE", timings), connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    written = (
        f"{sizes.tenants:,} tenants, {sizes.integrations:,} integrations ({sizes.big_tenant_integrations:,} in the "
        f"big tenant), {mappings:,} account mappings, {sessions:,} sessions, {events:,} events, {issues:,} issues "
        f"({HEAVY_COUNT} integrations with {sizes.heavy_issues:,})"
        + (f"; stored counters filled: {', '.join(filled)}" if filled else "")
    )
    return (
        Dataset(
            big_tenant_id=big_tenant_id,
            heavy_integration_id=base + heavy[0],
            superuser_id=superuser.pk,
            tenant_admin_id=customer.pk,
            api_key=api_key,
            written=written,
        ),
        timings,
    )


def find():
    """The Dataset of a kept database (--reuse): the same users and integration, a new API key."""
    from django.contrib.auth import get_user_model

    from integrations.api_keys import create_api_key
    from integrations.models import Integration, Tenant

    User = get_user_model()
    tenant = Tenant.objects.get(slug=BIG_TENANT_SLUG)
    heavy = Integration.objects.get(tenant=tenant, name=HEAVY_NAME.format(1))
    _, raw = create_api_key(tenant, "bench pages (reuse)")
    return Dataset(
        big_tenant_id=tenant.pk,
        heavy_integration_id=heavy.pk,
        superuser_id=User.objects.get(username=SUPERUSER).pk,
        tenant_admin_id=User.objects.get(username=TENANT_ADMIN).pk,
        api_key=raw,
    )
