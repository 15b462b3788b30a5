"""The portal's integration list at scale: keyset pages by (name, id), filters, name search, bad input.

A tenant with 537 integrations (created in bulk: many names shared, so the
id breaks ties; upper and lower case; every listed status; three connectors),
a few deleted ones among them and another tenant's with the same names.
Following the "Next page" links from the first page to the last lists every
live integration of the tenant exactly once, in the database's order of
(name, id), at any page size; the filters and the search travel with the
cursor. Bad cursors and filter values answer 400 with the reason and change
nothing; the page still works afterwards. The number of queries of a page
does not depend on how many integrations the tenant has.
"""

import re
from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from integrations import pagination, selectors
from integrations.models import Integration, Membership
from issues.models import SyncIssue
from portal import views
from tests.factories import SyncIssueFactory, TenantFactory
from tests.portal.conftest import bulk_integrations, snapshot
from tests.queries import LISTED_STATUSES, add_integrations, measure, report

Status = Integration.Status
LIST = reverse("portal:list")
TOTAL = 537
WORDS = ("Billing", "billing", "Contacts", "Mailbox", "PSA", "Distributor")
CONNECTORS = ("simulator", "pax8", "carddav")
STATUSES = (Status.SETUP, *LISTED_STATUSES)


def specs(count, start=0, suffix=""):
    """Names that often repeat (every 7th is "Shared"), statuses and connectors in turn."""
    return [
        {
            "name": "Shared" if n % 7 == 0 else f"{WORDS[n % len(WORDS)]} {n // 11:03d}{suffix}",
            "status": STATUSES[n % len(STATUSES)],
            "connector": CONNECTORS[n % len(CONNECTORS)],
        }
        for n in range(start, start + count)
    ]


@pytest.fixture
def world(member, error_catalog):
    acme = TenantFactory(name="Acme")
    globex = TenantFactory(name="Globex")
    bulk_integrations(acme, specs(TOTAL))
    # Deleted ones sort among the live ones, and one sorts before all of them.
    deleted = bulk_integrations(
        acme,
        [
            {"name": name, "deleted_at": timezone.now(), "connector": "pax8"}
            for name in ("AAA deleted", "Shared", "Billing 003", "billing zombie", "PSA 010")
        ],
    )
    bulk_integrations(globex, specs(60, suffix=" globex"))
    return acme, globex, member(acme, Membership.Role.VIEWER, username="victor"), deleted


def listed(tenant, **filters):
    """The ids the list must show, in the database's order (its collation decides the names' order)."""
    return list(
        Integration.objects.filter(tenant=tenant, deleted_at__isnull=True, **filters)
        .order_by("name", "pk")
        .values_list("pk", flat=True)
    )


def walk(client, url, limit=TOTAL + 2):
    """Follow the "Next page" links from url; the integration ids of each page."""
    pages = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content.decode()[:500]
        pages.append([integration.pk for integration, _, _ in response.context["cards"]])
        match = re.search(r'<a href="([^"]+)" rel="next">Next page</a>', response.content.decode())
        url = LIST + unescape(match.group(1)) if match else None
        assert len(pages) <= limit, "the pager does not end"
    return pages


def assert_paged(pages, expected, size):
    walked = [pk for page in pages for pk in page]
    assert walked == expected  # every one, once, in order
    assert all(len(page) == size for page in pages[:-1])  # full pages until the last
    assert pages[-1] or not expected  # no empty page at the end


@pytest.mark.slow
@pytest.mark.django_db
@pytest.mark.parametrize("size", [1, 2, 50, 199, 200, TOTAL, 1000])
def test_every_integration_once_in_order_at_any_page_size(world, log_in, monkeypatch, size):
    acme, _, viewer, _ = world
    monkeypatch.setattr(views, "INTEGRATIONS_PER_PAGE", size)
    expected = listed(acme)
    assert len(expected) == TOTAL

    pages = walk(log_in(viewer), LIST, limit=-(-TOTAL // size) + 1)

    assert_paged(pages, expected, size)
    assert len(pages) == -(-TOTAL // size)


@pytest.mark.django_db
def test_the_first_page_is_a_page_and_names_the_way_on(world, log_in):
    acme, _, viewer, _ = world
    response = log_in(viewer).get(LIST)
    assert response.status_code == 200
    assert [i.pk for i, _, _ in response.context["cards"]] == listed(acme)[: views.INTEGRATIONS_PER_PAGE]
    content = response.content.decode()
    assert 'rel="next">Next page</a>' in content
    assert "First page" not in content
    second = log_in(viewer).get(LIST + unescape(re.search(r'<a href="([^"]+)" rel="next"', content).group(1)))
    assert 'href="?">First page</a>' in second.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "filters"),
    [
        ({"status": "warnings"}, {"status": Status.WARNINGS}),
        ({"status": "setup"}, {"status": Status.SETUP}),
        ({"connector": "pax8"}, {"connector": "pax8"}),
        ({"q": "billing"}, {"name__icontains": "billing"}),
        ({"q": "BILLING 01"}, {"name__icontains": "billing 01"}),
        ({"q": "  shared "}, {"name": "Shared"}),
        ({"q": "ill", "status": "failing"}, {"name__icontains": "ill", "status": Status.FAILING}),
        (
            {"q": "a", "status": "active", "connector": "carddav"},
            {"name__icontains": "a", "status": Status.ACTIVE, "connector": "carddav"},
        ),
        ({"q": "globex"}, {"pk": None}),
        ({"q": "zombie"}, {"pk": None}),
        ({"q": "%"}, {"pk": None}),
        ({"status": "inactive", "connector": "rest"}, {"pk": None}),
    ],
    ids=lambda v: "&".join(f"{k}={v}" for k, v in v.items()) if isinstance(v, dict) else str(v),
)
def test_filters_and_search_combine_and_travel_with_the_cursor(world, log_in, monkeypatch, params, filters):
    acme, _, viewer, _ = world
    monkeypatch.setattr(views, "INTEGRATIONS_PER_PAGE", 7)
    expected = listed(acme, **filters)
    query = "&".join(f"{name}={value.replace(' ', '+')}" for name, value in params.items())

    pages = walk(log_in(viewer), f"{LIST}?{query}")

    assert_paged(pages, expected, 7)
    if len(pages) > 1:  # the filled-in form shows what the pages are filtered by
        response = log_in(viewer).get(f"{LIST}?{query}")
        content = response.content.decode()
        for name, value in params.items():
            assert response.context["current"][name] == value
            match = re.search(r'<a href="([^"]+)" rel="next"', content)
            assert f"{name}=" in unescape(match.group(1))
        if "q" in params:
            assert f'name="q" value="{escape(params["q"])}"' in content


@pytest.mark.django_db
def test_the_form_offers_every_listed_status_and_connector(world, log_in):
    _, _, viewer, _ = world
    content = log_in(viewer).get(LIST, {"status": "failing"}).content.decode()
    for status in STATUSES:
        assert f'<option value="{status}"' in content
    assert '<option value="deleted"' not in content
    assert '<option value="failing" selected>' in content
    assert '<option value="pax8"' in content
    assert ">Clear</a>" in content


@pytest.mark.django_db
def test_deleted_and_other_tenants_integrations_are_never_listed(world, log_in, monkeypatch):
    _, globex, viewer, deleted = world
    monkeypatch.setattr(views, "INTEGRATIONS_PER_PAGE", 200)
    theirs = set(Integration.objects.filter(tenant=globex).values_list("pk", flat=True))
    gone = {i.pk for i in deleted}
    client = log_in(viewer)
    for url in (LIST, f"{LIST}?q=deleted", f"{LIST}?q=shared", f"{LIST}?connector=pax8", f"{LIST}?q=globex"):
        shown = {pk for page in walk(client, url) for pk in page}
        assert not shown & (theirs | gone), url
    content = client.get(f"{LIST}?q=AAA").content.decode()
    assert "AAA deleted" not in content
    assert "No integrations match." in content
    assert "globex" not in client.get(LIST).content.decode().lower()


def tampered(token):
    return token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")


def cursor_of(tenant, position=10):
    return pagination.page_by_name(selectors.filtered_integrations(tenant, {}), "", position)[1]


BAD_CURSOR = "The page cursor is not valid; start again from the first page."


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"after": "garbage"}, BAD_CURSOR),
        ({"after": "tampered"}, BAD_CURSOR),
        ({"after": "an issue's"}, BAD_CURSOR),
        ({"after": "x\x00"}, BAD_CURSOR),
        ({"status": "bogus"}, "Unknown status 'bogus'; 'status' must be one of setup, active, warnings,"),
        ({"status": "deleted"}, "Unknown status 'deleted'; 'status' must be one of"),
        ({"status": "Active"}, "Unknown status 'Active'; 'status' must be one of"),
        ({"status": "ok"}, "Unknown status 'ok'; 'status' must be one of"),
        ({"connector": "nope"}, "Unknown connector 'nope'; 'connector' must be one of carddav,"),
        ({"connector": "PAX8", "status": "active"}, "Unknown connector 'PAX8'; 'connector' must be one of"),
        ({"q": "x" * 201}, "The search text is too long (200 characters at most)."),
        ({"q": "Billing\x00"}, "The search text cannot contain NUL characters."),
        ({"status": "a" * 5000}, "Unknown status 'aaaaaaaaaa"),
    ],
    ids=lambda v: "&".join(f"{k}={x[:12]!r}" for k, x in v.items()) if isinstance(v, dict) else "",
)
def test_bad_cursors_and_filters_are_400_and_change_nothing(world, log_in, params, message):
    acme, globex, viewer, _ = world
    if params.get("after") == "tampered":
        params = {"after": tampered(cursor_of(acme))}
    elif params.get("after") == "an issue's":
        params = {
            "after": pagination.encode(
                SyncIssueFactory(integration=Integration.objects.filter(tenant=acme).first())
            )
        }
    client = log_in(viewer)
    before = snapshot(acme, globex)

    response = client.get(LIST, params)

    assert response.status_code == 400
    content = response.content.decode()
    assert escape(message) in content
    assert response.context["cards"] == []
    assert '<form class="filters card"' in content  # the form is there to correct the input
    assert snapshot(acme, globex) == before
    # The list itself still works, and so does its next page.
    pages = client.get(LIST)
    assert pages.status_code == 200 and len(pages.context["cards"]) == views.INTEGRATIONS_PER_PAGE
    assert client.get(LIST, {"after": cursor_of(acme)}).status_code == 200


@pytest.mark.django_db
def test_the_status_message_names_every_value_it_takes(world, log_in):
    _, _, viewer, _ = world
    response = log_in(viewer).get(LIST, {"status": "bogus"})
    error = re.search(r'<p class="error" role="alert">([^<]*)</p>', response.content.decode()).group(1)
    allowed = unescape(error).split("must be one of ", 1)[1].rstrip(".").split(", ")
    assert allowed == [s for s in Status.values if s != Status.DELETED]


@pytest.mark.django_db
def test_a_cursor_from_another_tenant_starts_after_that_name_in_ours(world, log_in):
    # A cursor names a place in the order, not a row: another tenant's cursor shows only our rows.
    acme, globex, viewer, _ = world
    response = log_in(viewer).get(LIST, {"after": cursor_of(globex, 3)})
    assert response.status_code == 200
    shown = [i.pk for i, _, _ in response.context["cards"]]
    assert shown and set(shown) <= set(listed(acme))


# -- queries per page ---------------------------------------------------------------------------------


def pages_of(tenant):
    """{page: url}: the first page, a later one, a searched one, a filtered one and the last one."""
    ordered = listed(tenant)
    page = views.INTEGRATIONS_PER_PAGE
    last = Integration.objects.get(pk=ordered[-(page // 2) - 1])
    return {
        "first": LIST,
        "second": f"{LIST}?after={cursor_of(tenant, page)}",
        "searched": f"{LIST}?connector=simulator&q=acme&after={cursor_of(tenant, 2)}",
        "by status": f"{LIST}?status=active",
        "last": f"{LIST}?after={pagination.BY_NAME.encode(last)}",
    }


@pytest.mark.slow
@pytest.mark.django_db
def test_queries_per_page_do_not_grow_with_the_tenants_integrations(
    member, log_in, integration_in, django_assert_max_num_queries
):
    # Busy integrations (a last session, open issues, some syncing now) so that an N+1 would show.
    acme = TenantFactory(name="Acme")
    client = log_in(member(acme, Membership.Role.ADMIN, username="alice"))
    add_integrations(integration_in, acme, 60, name="Acme")
    for url in pages_of(acme).values():
        client.get(url)  # warm up
    small = {name: measure(client, url) for name, url in pages_of(acme).items()}

    add_integrations(integration_in, acme, 300, name="Acme")
    large = {name: measure(client, url) for name, url in pages_of(acme).items()}

    for name in small:
        small_rows = len(small[name][0].context["cards"])
        large_rows = len(large[name][0].context["cards"])
        assert small[name][0].status_code == large[name][0].status_code == 200, name
        assert 0 < small_rows <= large_rows, (name, small_rows, large_rows)
    small_queries = {name: queries for name, (_, queries) in small.items()}
    large_queries = {name: queries for name, (_, queries) in large.items()}
    assert {n: len(q) for n, q in large_queries.items()} == {n: len(q) for n, q in small_queries.items()}, (
        report(small_queries, large_queries)
    )
    assert SyncIssue.objects.filter(tenant=acme, state="open").count() == 720  # two per integration
    with django_assert_max_num_queries(10):
        assert client.get(pages_of(acme)["searched"]).status_code == 200
