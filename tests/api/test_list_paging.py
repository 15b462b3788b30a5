"""GET /api/v1/integrations/ at scale: keyset pages by (name, id), `status` and `connector` filters, bad input.

A tenant with 537 integrations (created in bulk: many names shared, so the
id breaks ties; every listed status; three connectors), a few deleted ones
among them and another tenant's with the same names. Following `next` (as
`after`) from the first page to the last answers every live integration of
the key's tenant exactly once, in the database's order of (name, id), at any
`limit` from 1 to 200. Bad limits, cursors and filter values are a 400 in
the API's error shape and change nothing; the list answers afterwards. The
number of queries of a page does not depend on how many integrations the
tenant has.
"""

import pytest
from django.utils import timezone

from integrations import pagination, selectors
from integrations.models import Integration
from tests.factories import SyncIssueFactory, TenantFactory
from tests.portal.conftest import bulk_integrations, snapshot
from tests.queries import LISTED_STATUSES, add_integrations, measure, report

Status = Integration.Status
LIST = "/api/v1/integrations/"
JSON = "application/json"
TOTAL = 537
WORDS = ("Billing", "billing", "Contacts", "Mailbox", "PSA", "Distributor")
CONNECTORS = ("simulator", "pax8", "carddav")
STATUSES = (Status.SETUP, *LISTED_STATUSES)


def specs(count, suffix=""):
    """Names that often repeat (every 7th is "Shared"), statuses and connectors in turn."""
    return [
        {
            "name": "Shared" if n % 7 == 0 else f"{WORDS[n % len(WORDS)]} {n // 11:03d}{suffix}",
            "status": STATUSES[n % len(STATUSES)],
            "connector": CONNECTORS[n % len(CONNECTORS)],
        }
        for n in range(count)
    ]


@pytest.fixture
def world(error_catalog, api_client):
    acme = TenantFactory(name="Acme")
    globex = TenantFactory(name="Globex")
    bulk_integrations(acme, specs(TOTAL))
    deleted = bulk_integrations(
        acme,
        [
            {"name": name, "deleted_at": timezone.now(), "connector": "pax8"}
            for name in ("AAA deleted", "Shared", "Billing 003", "PSA 010")
        ],
    )
    bulk_integrations(globex, specs(60, suffix=" globex"))
    return acme, globex, api_client(acme), deleted


def listed(tenant, **filters):
    """The ids the list must answer, in the database's order (its collation decides the names' order)."""
    return list(
        Integration.objects.filter(tenant=tenant, deleted_at__isnull=True, **filters)
        .order_by("name", "pk")
        .values_list("pk", flat=True)
    )


def walk(api, params=None, limit=TOTAL + 2):
    """Follow `next` from the first page; the integration ids of each page."""
    params = dict(params or {})
    pages = []
    while True:
        response = api.get(LIST, params)
        assert response.status_code == 200, response.content[:500]
        body = response.json()
        assert set(body) == {"integrations", "next"}
        pages.append([item["id"] for item in body["integrations"]])
        assert len(pages) <= limit, "the pages do not end"
        if body["next"] is None:
            return pages
        params["after"] = body["next"]


def assert_paged(pages, expected, size):
    walked = [pk for page in pages for pk in page]
    assert walked == expected  # every one, once, in order
    assert all(len(page) == size for page in pages[:-1])  # full pages until the last
    assert pages[-1] or not expected  # no empty page at the end


@pytest.mark.slow
@pytest.mark.django_db
@pytest.mark.parametrize("size", [1, 2, 49, None, 199, 200])
def test_every_integration_once_in_order_at_any_limit(world, size):
    acme, _, api, _ = world
    expected = listed(acme)
    assert len(expected) == TOTAL

    pages = walk(api, {} if size is None else {"limit": size}, limit=-(-TOTAL // (size or 50)) + 1)

    assert_paged(pages, expected, size or 50)  # 50 unless told
    assert len(pages) == -(-TOTAL // (size or 50))


@pytest.mark.django_db
def test_each_item_keeps_the_fields_of_an_integration(world):
    acme, _, api, _ = world
    body = api.get(LIST, {"limit": 3}).json()
    assert isinstance(body["next"], str) and body["next"]
    first = body["integrations"][0]
    assert first == api.get(f"{LIST}{first['id']}/").json()
    assert set(first) == {
        "id", "name", "connector", "kind", "status", "status_words", "status_reason", "status_changed_at",
        "syncing", "last_session", "last_success_at", "open_issues", "next_sync_at",
    }  # fmt: skip
    last = api.get(
        LIST, {"limit": 200, "after": pagination.BY_NAME.encode(Integration.objects.get(pk=listed(acme)[-3]))}
    )
    assert [i["id"] for i in last.json()["integrations"]] == listed(acme)[-2:]
    assert last.json()["next"] is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "filters"),
    [
        ({"status": "ok"}, {"status": Status.ACTIVE}),
        ({"status": "auth_failing"}, {"status__in": [Status.AUTH_FAILING, Status.CREDENTIALS_INVALID]}),
        ({"status": "paused"}, {"status": Status.QUALITY_ASSURANCE}),
        ({"status": "setup"}, {"status": Status.SETUP}),
        ({"status": "unknown"}, {"status": Status.UNKNOWN}),
        ({"connector": "pax8"}, {"connector": "pax8"}),
        ({"status": "warnings", "connector": "carddav"}, {"status": Status.WARNINGS, "connector": "carddav"}),
        ({"status": "inactive", "connector": "rest"}, {"pk": None}),
        ({"status": "", "connector": ""}, {}),
    ],
    ids=lambda v: "&".join(f"{k}={x}" for k, x in v.items()),
)
def test_filters_combine_with_paging(world, params, filters):
    acme, _, api, _ = world
    expected = listed(acme, **filters)

    pages = walk(api, {**params, "limit": 7})

    assert_paged(pages, expected, 7)
    for page in pages[:2]:
        for item in Integration.objects.filter(pk__in=page):
            if params.get("status"):
                assert selectors.api_status(item.status) == params["status"]


@pytest.mark.django_db
def test_deleted_and_other_tenants_integrations_are_never_listed(world, api_client):
    _, globex, api, deleted = world
    theirs = set(Integration.objects.filter(tenant=globex).values_list("pk", flat=True))
    gone = {i.pk for i in deleted}
    for params in (
        {},
        {"connector": "pax8"},
        {"status": "ok"},
        {"status": "setup", "connector": "simulator"},
    ):
        shown = {pk for page in walk(api, {**params, "limit": 200}) for pk in page}
        assert not shown & (theirs | gone), params
    # And Globex's own key sees only Globex's.
    assert [pk for page in walk(api_client(globex), {"limit": 200}) for pk in page] == listed(globex)


BAD_CURSOR = "The page cursor is not valid; start again from the first page."
BAD_LIMIT = "'limit' must be a whole number from 1 to 200."


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": "0"}, BAD_LIMIT),
        ({"limit": "201"}, BAD_LIMIT),
        ({"limit": "-1"}, BAD_LIMIT),
        ({"limit": "ten"}, BAD_LIMIT),
        ({"limit": ""}, BAD_LIMIT),
        ({"limit": "1.5"}, BAD_LIMIT),
        ({"limit": "99999999999999999999999"}, BAD_LIMIT),
        ({"limit": "²"}, BAD_LIMIT),
        ({"after": "garbage"}, BAD_CURSOR),
        ({"after": "tampered"}, BAD_CURSOR),
        ({"after": "an issue's"}, BAD_CURSOR),
        ({"after": "x\x00"}, BAD_CURSOR),
        (
            {"status": "bogus"},
            (
                "Unknown status 'bogus'; 'status' must be one of setup, ok, warnings, failing, unknown, "
                "auth_failing, paused, inactive."
            ),
        ),
        ({"status": "active"}, "Unknown status 'active'; 'status' must be one of setup, ok,"),
        ({"status": "deleted"}, "Unknown status 'deleted'; 'status' must be one of setup, ok,"),
        ({"status": "ok\x00"}, "Unknown status 'ok\\x00'; 'status' must be one of"),
        ({"connector": "nope"}, "Unknown connector 'nope'; 'connector' must be one of carddav,"),
        ({"connector": "pax8", "status": "OK"}, "Unknown status 'OK'; 'status' must be one of"),
    ],
    ids=lambda v: "&".join(f"{k}={x[:12]!r}" for k, x in v.items()) if isinstance(v, dict) else "",
)
def test_bad_limits_cursors_and_filters_are_400_json_and_change_nothing(world, params, message):
    acme, globex, api, _ = world
    if params.get("after") == "tampered":
        token = api.get(LIST, {"limit": 5}).json()["next"]
        params = {"after": token[:-2] + ("xy" if not token.endswith("xy") else "yz")}
    elif params.get("after") == "an issue's":
        params = {
            "after": pagination.encode(
                SyncIssueFactory(integration=Integration.objects.filter(tenant=acme).first())
            )
        }
    before = snapshot(acme, globex)

    response = api.get(LIST, params)

    assert response.status_code == 400, response.content[:300]
    assert response["Content-Type"] == JSON
    body = response.json()
    assert body == {"error": {"code": "bad_request", "message": body["error"]["message"]}}
    assert body["error"]["message"].startswith(message)
    # The key's last use is recorded on every authenticated request; nothing else changes.
    after = snapshot(acme, globex)
    assert {k: v for k, v in after.items() if k not in ("tenants", "api_keys")} == {
        k: v for k, v in before.items() if k not in ("tenants", "api_keys")
    }
    # The list still answers, page after page.
    first = api.get(LIST)
    assert first.status_code == 200 and len(first.json()["integrations"]) == 50
    assert api.get(LIST, {"after": first.json()["next"]}).status_code == 200


@pytest.mark.django_db
def test_the_document_describes_the_parameters(world):
    from portal.api import document

    operation = document("http://testserver/api/v1/")["paths"]["/integrations/"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert set(parameters) == {"status", "connector", "limit", "after"}
    assert parameters["status"]["schema"]["enum"] == list(selectors.integration_status_filter(api=True))
    assert "pax8" in parameters["connector"]["schema"]["enum"]
    assert (
        parameters["limit"]["schema"] | {"default": 50, "minimum": 1, "maximum": 200}
        == parameters["limit"]["schema"]
    )
    assert "400" in operation["responses"] or 400 in operation["responses"]
    listing = document("http://testserver/api/v1/")["components"]["schemas"]["IntegrationList"]
    assert listing["required"] == ["integrations", "next"]


# -- queries per page ---------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db
def test_queries_per_page_do_not_grow_with_the_tenants_integrations(
    api_client, integration_in, django_assert_max_num_queries
):
    # Busy integrations (a last session, open issues, some syncing now) so that an N+1 would show.
    acme = TenantFactory(name="Acme")
    api = api_client(acme)

    def pages():
        first = api.get(LIST, {"limit": 20}).json()
        return {
            "first": {},
            "limit 200": {"limit": 200},
            "second": {"after": first["next"], "limit": 20},
            "filtered": {"status": "failing", "connector": "simulator"},
            "filtered, after": {"status": "ok", "after": first["next"]},
        }

    def visit():
        measured = {}
        for name, params in pages().items():
            response, queries = measure(api, LIST, data=params)
            assert response.status_code == 200, (name, response.content[:300])
            measured[name] = (len(response.json()["integrations"]), queries)
        return measured

    add_integrations(integration_in, acme, 60, name="Acme")
    visit()  # warm up
    small = visit()
    add_integrations(integration_in, acme, 300, name="Acme")
    large = visit()

    for name, (rows, _) in small.items():
        assert 0 < rows <= large[name][0], (name, rows, large[name][0])
    small_queries = {name: queries for name, (_, queries) in small.items()}
    large_queries = {name: queries for name, (_, queries) in large.items()}
    assert {n: len(q) for n, q in large_queries.items()} == {n: len(q) for n, q in small_queries.items()}, (
        report(small_queries, large_queries)
    )
    with django_assert_max_num_queries(6):
        assert api.get(LIST, {"limit": 200}).status_code == 200
