"""The console's searches find what Django's admin finds, with SQL that indexes serve.

syncconsole/search.py rewrites the admin search (`ILIKE`; related rows'
ids looked up first, or a subquery, EXISTS for a reverse relation, when a
term is found in many); the rows must be the ones Django's own
`ModelAdmin.get_search_results` finds for the same `search_fields`, never
twice. syncconsole/admin_tools.py reads a
changelist's page before counting it, so a short first page costs no COUNT.

On PostgreSQL (the second CI pass), issues/migrations/0006_search_indexes.py
has created trigram indexes, and the issue changelist's own search SQL,
captured from a request, is answered from them.
"""

import pytest
from django.contrib import admin
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from integrations.models import AccountMapping, Integration, SyncSession, Tenant
from issues.models import SyncIssue
from syncconsole import search
from syncconsole.admin_tools import CappedCountPaginator
from tests.factories import (
    IntegrationFactory,
    SyncIssueFactory,
    SyncSessionFactory,
    TenantFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

INTEGRATIONS = reverse("admin:integrations_integration_changelist")
ISSUES = reverse("admin:issues_syncissue_changelist")
ISSUE_TABLE = SyncIssue._meta.db_table
TRIGRAM_INDEXES = (
    "issue_external_id_trgm",
    "issue_item_label_trgm",
    "issue_message_trgm",
    "integration_name_trgm",
    "tenant_name_trgm",
)


@pytest.fixture
def root_client(client):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def console(error_catalog):
    """Two tenants, three integrations with mappings, and issues with ids, labels and messages to find."""
    acme = TenantFactory(name="Acme Corp", slug="acme")
    globex = TenantFactory(name="Globex", slug="globex-eu")
    pax8 = IntegrationFactory(tenant=acme, name="Pax8 billing")
    hubspot = IntegrationFactory(tenant=globex, name="HubSpot contacts")
    connectwise = IntegrationFactory(tenant=acme, name="ConnectWise 100%_done")
    # Two of HubSpot's mappings match "acct-7" in any case: Django's join lists HubSpot twice without DISTINCT.
    for vendor_account_id in ("ACCT-7", "acct-7", "acct-8"):
        AccountMapping.objects.create(integration=hubspot, vendor_account_id=vendor_account_id)
    AccountMapping.objects.create(integration=pax8, vendor_account_id="acct-70")
    issues = {
        "exact": SyncIssueFactory(integration=pax8, external_id="item-0012345", item_label="Invoice 2024-01"),
        "longer": SyncIssueFactory(
            integration=pax8, external_id="item-00123456", message="Price is negative."
        ),
        "label": SyncIssueFactory(integration=hubspot, external_id="c-1", item_label="Jane Doe"),
        "message": SyncIssueFactory(
            integration=hubspot, external_id="c-2", message="The field 'email' is missing (item-0012345)."
        ),
        "session": SyncIssueFactory(
            integration=connectwise, item_type="", external_id="", message="Timed out."
        ),
    }
    return {
        "acme": acme,
        "globex": globex,
        "pax8": pax8,
        "hubspot": hubspot,
        "connectwise": connectwise,
        **issues,
    }


@pytest.fixture(params=["ids", "subqueries"])
def relations_as(request, monkeypatch):
    """Related rows found as ids written into the query, or (a term found in more rows than that) as subqueries."""
    if request.param == "subqueries":
        monkeypatch.setattr(search, "IDS_WRITTEN_OUT", 0)
    return request.param


def django_search(model, term):
    """The pks Django's own admin search finds with the console's search fields (DISTINCT where it needs it)."""
    model_admin = admin.site._registry[model]
    request = RequestFactory().get("/", {"q": term})
    queryset = model.objects.all()
    found, may_have_duplicates = admin.ModelAdmin.get_search_results(model_admin, request, queryset, term)
    return sorted((found.distinct() if may_have_duplicates else found).values_list("pk", flat=True))


def console_search(model, term):
    """The pks the console's search lists, as a list: a row found twice would show twice."""
    model_admin = admin.site._registry[model]
    request = RequestFactory().get("/", {"q": term})
    found, may_have_duplicates = model_admin.get_search_results(request, model.objects.all(), term)
    assert may_have_duplicates is False
    return sorted(found.values_list("pk", flat=True))


# -- the same rows as Django's search ------------------------------------------------------------


@pytest.mark.parametrize(
    "term, expected",
    [
        ("Pax8", ["pax8"]),  # the integration's name
        ("billing", ["pax8"]),
        ("acme", ["pax8", "connectwise"]),  # the tenant's name (and slug)
        ("globex-eu", ["hubspot"]),  # the tenant's slug
        ("acct-7", ["hubspot"]),  # a vendor account id, exactly (any case), not acct-70
        ("ACCT-70", ["pax8"]),
        ("acct", []),  # account ids are not searched by part
        ("100%", ["connectwise"]),  # % and _ are the characters themselves, not wildcards
        ("0%_d", ["connectwise"]),
        ("%", ["connectwise"]),
        ("pax8 acme", ["pax8"]),  # every term somewhere
        ('"Pax8 billing"', ["pax8"]),  # a quoted phrase is one term
        ("nothing-like-this", []),
    ],
)
def test_integration_search_finds_what_django_finds(console, relations_as, term, expected):
    found = console_search(Integration, term)

    assert found == sorted(console[name].pk for name in expected)
    assert found == django_search(Integration, term)


@pytest.mark.parametrize(
    "term, expected",
    [
        ("item-0012345", ["exact", "longer", "message"]),  # an id (and its prefix), and a message naming it
        ("ITEM-00123456", ["longer"]),  # ids by prefix, in any case
        ("0012345", ["message"]),  # ids and labels from their start, messages anywhere
        ("Invoice", ["exact"]),  # a label by prefix
        ("jane", ["label"]),
        ("Doe", []),
        ("missing", ["message"]),  # a message by any part
        ("NEGATIVE", ["longer"]),
        ("'email'", ["message"]),  # a quoted word: the word
        ("Pax8", ["exact", "longer"]),  # the integration's name
        ("contacts", ["label", "message"]),
        ("Globex", ["label", "message"]),  # the tenant's name
        ("acme", ["exact", "longer", "session"]),
        ("acme invoice", ["exact"]),
        ("%", ["session"]),  # the integration "ConnectWise 100%_done"
        ("nothing-like-this", []),
    ],
)
def test_issue_search_finds_what_django_finds(console, relations_as, term, expected):
    found = console_search(SyncIssue, term)

    assert found == sorted(console[name].pk for name in expected)
    assert found == django_search(SyncIssue, term)


def test_an_integration_with_several_matching_mappings_is_listed_once(root_client, console, relations_as):
    AccountMapping.objects.create(integration=console["pax8"], vendor_account_id="Acct-7")

    response = root_client.get(INTEGRATIONS, {"q": "acct-7"})

    assert response.status_code == 200
    listed = [row.pk for row in response.context["cl"].result_list]
    assert sorted(listed) == sorted([console["hubspot"].pk, console["pax8"].pk])
    assert response.context["cl"].result_count == 2


@pytest.mark.parametrize("model", [Integration, SyncIssue])
def test_the_searches_add_no_join_and_no_distinct(console, relations_as, model):
    request = RequestFactory().get("/")
    model_admin = admin.site._registry[model]
    queryset = model_admin.get_queryset(request)
    found, _ = model_admin.get_search_results(request, queryset, "acct-7 acme")
    sql = str(found.query)

    assert "DISTINCT" not in sql
    assert sql.count(" JOIN ") == str(queryset.query).count(" JOIN "), sql


def test_the_issue_changelist_lists_the_search(root_client, console):
    response = root_client.get(ISSUES, {"q": "item-0012345"})

    assert response.status_code == 200
    cl = response.context["cl"]
    assert {row.pk for row in cl.result_list} == {console[name].pk for name in ("exact", "longer", "message")}
    assert cl.result_count == 3
    assert "3 results" in response.content.decode()


# -- a short page is its own count ----------------------------------------------------------------


def queries_on(table, queries):
    return [q["sql"] for q in queries.captured_queries if f'FROM "{table}"' in q["sql"]]


def test_a_short_page_of_issues_is_not_counted_again(root_client, console):
    with CaptureQueriesContext(connection) as queries:
        response = root_client.get(ISSUES, {"q": "item-0012345"})

    assert response.status_code == 200
    searched = queries_on(ISSUE_TABLE, queries)
    assert len(searched) == 1, searched  # the page; no COUNT
    assert "COUNT(" not in searched[0]


def test_a_full_page_of_issues_is_counted_once(root_client, console, django_assert_num_queries):
    per_page = admin.site._registry[SyncIssue].list_per_page
    for n in range(per_page):
        SyncIssueFactory(integration=console["pax8"], external_id=f"item-9{n:06d}")

    with CaptureQueriesContext(connection) as queries:
        response = root_client.get(ISSUES, {"q": "item-9"})

    assert response.status_code == 200
    assert response.context["cl"].result_count == per_page  # exactly a page: it must be counted
    searched = queries_on(ISSUE_TABLE, queries)
    assert len(searched) == 2, searched  # the page, then the capped count
    assert "COUNT(" in searched[1] and f"LIMIT {CappedCountPaginator.CAP + 1}" in searched[1]
    # The same request a row longer costs no more queries.
    SyncIssueFactory(integration=console["pax8"], external_id="item-9999999")
    with django_assert_num_queries(len(queries)):
        response = root_client.get(ISSUES, {"q": "item-9"})
    assert response.context["cl"].result_count == per_page + 1


def test_the_last_short_page_counts_itself_and_a_page_past_the_end_is_refused(root_client, console):
    per_page = admin.site._registry[SyncIssue].list_per_page
    for n in range(per_page + 3):
        SyncIssueFactory(integration=console["hubspot"], external_id=f"item-8{n:06d}")

    with CaptureQueriesContext(connection) as queries:
        response = root_client.get(ISSUES, {"q": "item-8", "p": "2"})

    assert response.status_code == 200
    cl = response.context["cl"]
    assert (cl.result_count, len(cl.result_list), cl.multi_page) == (per_page + 3, 3, True)
    assert len(queries_on(ISSUE_TABLE, queries)) == 1
    assert root_client.get(ISSUES, {"q": "item-8", "p": "3"}).url.endswith("?e=1")
    assert root_client.get(ISSUES, {"q": "item-8", "p": "0"}).url.endswith("?e=1")


def test_a_short_page_of_integrations_is_not_counted_again(root_client, console):
    with CaptureQueriesContext(connection) as queries:
        response = root_client.get(INTEGRATIONS, {"q": "acme"})

    assert response.status_code == 200
    assert response.context["cl"].result_count == 2
    assert not [sql for sql in queries_on(Integration._meta.db_table, queries) if "COUNT(" in sql]


def test_a_full_page_of_integrations_is_counted(root_client, console):
    per_page = admin.site._registry[Integration].list_per_page
    IntegrationFactory.create_batch(per_page, tenant=console["acme"])

    with CaptureQueriesContext(connection) as queries:
        response = root_client.get(INTEGRATIONS, {"q": "acme"})

    assert response.context["cl"].result_count == per_page + 2
    assert len(response.context["cl"].result_list) == per_page
    counts = [sql for sql in queries_on(Integration._meta.db_table, queries) if "COUNT(" in sql]
    assert len(counts) == 1, counts


def test_other_read_only_lists_read_a_short_page_once(root_client, console):
    SyncSessionFactory.create_batch(3, integration=console["pax8"], state=SyncSession.State.SUCCEEDED)

    with CaptureQueriesContext(connection) as queries:
        response = root_client.get(reverse("admin:integrations_syncsession_changelist"), {"q": "Pax8"})

    assert response.status_code == 200
    assert response.context["cl"].result_count == 3
    assert len(queries_on(SyncSession._meta.db_table, queries)) == 1


# -- PostgreSQL: the indexes and the plans -------------------------------------------------------


def on_postgres(test):
    skip = pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL (set DATABASE_URL=postgres://...): pg_trgm indexes and the planner's choices",
    )
    return pytest.mark.postgres(skip(test))


# A table of a few rows is cheapest read whole: through a seq scan, or with that
# off through a plain index scan of the list's order with the search as a
# filter. With both off, only paths with an index condition are left, so the
# plan shows which indexes can answer the SQL, whatever the table's size.
INDEXES_ONLY = ("enable_seqscan = off", "enable_indexscan = off")


def explain(sql, settings=()):
    """PostgreSQL's plan for `sql`; the settings (SET LOCAL) end with the test's transaction."""
    with connection.cursor() as cursor:
        for setting in settings:
            cursor.execute(f"SET LOCAL {setting}")
        cursor.execute(f"EXPLAIN {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


def captured(client, url, term, table):
    """The SQL a changelist ran for `?q=term` on `table` (searching it, not counting), as sent."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, {"q": term})
    assert response.status_code == 200
    return [sql for sql in queries_on(table, queries) if "COUNT(" not in sql and "ILIKE" in sql]


def bitmap_scans(plan):
    return {
        line.split(" on ", 1)[1].split()[0] for line in plan.splitlines() if "Bitmap Index Scan on " in line
    }


@on_postgres
def test_the_migration_created_the_trigram_indexes():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_indexdef(c.oid), i.indisvalid FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = ANY(%s)",
            [list(TRIGRAM_INDEXES)],
        )
        indexes = {name: (definition, valid) for name, definition, valid in cursor.fetchall()}

    assert sorted(indexes) == sorted(TRIGRAM_INDEXES)
    for name, (definition, valid) in indexes.items():
        assert "USING gin" in definition and "gin_trgm_ops" in definition, definition
        assert valid, name


@on_postgres
def test_the_issue_search_is_answered_from_the_indexes(root_client, console):
    (sql,) = captured(root_client, ISSUES, "item-0012345", ISSUE_TABLE)

    assert "UPPER(" not in sql  # Django's icontains, which no trigram index serves
    plan = explain(sql, INDEXES_ONLY)

    assert "Seq Scan on issues_syncissue" not in plan, plan
    used = bitmap_scans(plan)
    assert {"issue_external_id_trgm", "issue_item_label_trgm", "issue_message_trgm"} <= used, plan
    assert "issue_external_id" in used, plan  # the whole id, through the btree


@on_postgres
def test_names_are_looked_up_in_their_indexes_and_the_issues_by_id(root_client, console):
    (names,) = captured(root_client, ISSUES, "Pax8", Integration._meta.db_table)
    (tenants,) = captured(root_client, ISSUES, "Globex", Tenant._meta.db_table)
    (sql,) = captured(root_client, ISSUES, "Pax8", ISSUE_TABLE)

    assert "integration_name_trgm" in bitmap_scans(explain(names, INDEXES_ONLY))
    assert "tenant_name_trgm" in bitmap_scans(explain(tenants, INDEXES_ONLY))
    assert f'"integration_id" IN ({console["pax8"].pk})' in sql
    plan = explain(sql, INDEXES_ONLY)
    assert "Seq Scan on issues_syncissue" not in plan, plan
    assert any("integration" in index for index in bitmap_scans(plan) - set(TRIGRAM_INDEXES)), plan


MESSAGES = (
    'Required field "email" is missing.',
    'Field "phone" is not a valid phone number: "+1 555 01".',
    'Field "country" has an unknown value "Untied States".',
    "The vendor account of this item is not mapped to one of yours.",
    "Another item has the same external id; the later one was skipped.",
    "The item could not be synced.",
)
NAMES = ("Jane Doe", "John Smith", "Acme Corp", "Initech", "Umbrella", "Hooli", "Stark Industries")


@pytest.mark.slow
@on_postgres
def test_the_planner_picks_the_trigram_indexes_over_50000_issues(root_client, console):
    now = timezone.now()
    integrations = [console["pax8"], console["hubspot"], console["connectwise"]]
    SyncIssue.objects.bulk_create(
        [
            SyncIssue(
                tenant_id=integrations[n % 3].tenant_id,
                integration=integrations[n % 3],
                error_code_id="ITEM_MISSING_FIELD",
                state=("open", "resolved", "resolved", "ignored")[n % 4],
                item_type="contact",
                external_id=f"item-{n + 1_000_000:07d}",
                item_label=f"Contact {NAMES[n % len(NAMES)]} #{n}",
                message=MESSAGES[n % len(MESSAGES)],
                first_seen_at=now,
                last_seen_at=now,
            )
            for n in range(50_000)
        ],
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        # New rows wait in each GIN index's pending list, which every search
        # reads, until (auto)vacuum merges them: done here as vacuum would.
        for index in TRIGRAM_INDEXES[:3]:
            cursor.execute("SELECT gin_clean_pending_list(%s::regclass)", [index])
        cursor.execute(f"ANALYZE {ISSUE_TABLE}")

    (sql,) = captured(root_client, ISSUES, "item-1012345", ISSUE_TABLE)
    plan = explain(sql)

    assert "Seq Scan on issues_syncissue" not in plan, plan
    assert {"issue_external_id_trgm", "issue_item_label_trgm", "issue_message_trgm"} <= bitmap_scans(plan), (
        plan
    )
