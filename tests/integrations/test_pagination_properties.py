"""Keyset pagination over any filtered issue list returns every row once, in order.

Hypothesis draws a set of issues (many of them seen at the very same moment,
so the tie-breaker on the id matters; moments a microsecond apart, so the
cursor must keep microseconds), spread over two integrations of one tenant,
then a filter (code, category, severity, state, item search) and a page size.
Following the real signed cursors from the first page to the last must give
the filtered rows exactly once each, in the order of the full ordered
queryset (newest `last_seen_at` first, then highest id), with every page but
the last one full and no empty page at the end.

The same walk is made through `integrations.pagination` directly, through
the API endpoint following `next`, and through the portal's Issues tab
following its "Next page" link.

Each example runs in its own transaction, rolled back when it ends
(`hypothesis.extra.django.TestCase`), so no rows leak from one example into
the next; the tenant, its integrations and the catalog are made once per
class.
"""

import html
import importlib
import math
import re
from datetime import datetime, timedelta, timezone
from unittest import mock
from urllib.parse import urljoin

from django.apps import apps
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from integrations import api_keys, pagination, selectors
from issues.models import ErrorCode, Severity, SyncIssue
from portal import views
from tests.factories import IntegrationFactory, MembershipFactory, TenantFactory, UserFactory

BASE = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
# Few distinct moments, so that many rows tie; some a microsecond apart.
MOMENTS = [
    BASE,
    BASE + timedelta(microseconds=1),
    BASE + timedelta(milliseconds=500),
    BASE + timedelta(seconds=1),
    BASE + timedelta(seconds=1, microseconds=1),
    BASE + timedelta(hours=1),
    BASE - timedelta(days=1),
]
CODES = [
    "ITEM_MISSING_FIELD",
    "ITEM_INVALID_VALUE",
    "ITEM_UNMAPPED",
    "VENDOR_BAD_RESPONSE",
    "SYNC_LEASE_LOST",
]
STATES = SyncIssue.State.values
# Lower-case item searches only: SQLite's LIKE ignores case where PostgreSQL's does not.
SEARCHES = ["item-0", "item-01", "person 1", "Person", "acme"]

issue = st.fixed_dictionaries(
    {
        "moment": st.sampled_from(MOMENTS),
        "code": st.sampled_from(CODES),
        "severity": st.sampled_from(Severity.values),
        "state": st.sampled_from(["open", "open", *STATES]),
        "label": st.sampled_from(["", "Person 1", "Person 12", "person 2", "Acme Ltd"]),
        "other_integration": st.sampled_from([False, False, False, True]),
    }
)
# Empty and tiny lists, and lists long enough for many pages and many ties.
issues = st.one_of(st.lists(issue, max_size=3), st.lists(issue, min_size=12, max_size=40))
filters = st.one_of(
    st.just({}),  # the default: open issues
    st.fixed_dictionaries({"state": st.sampled_from(["all", ""])}),
    st.fixed_dictionaries(
        {},
        optional={
            "code": st.sampled_from(["", *CODES]),
            "category": st.sampled_from(["", *ErrorCode.Category.values]),
            "severity": st.sampled_from(["", *Severity.values]),
            "state": st.sampled_from(["", "all", *STATES]),
            "q": st.sampled_from(["", *SEARCHES]),
        },
    ),
)
page_sizes = st.one_of(st.integers(min_value=1, max_value=4), st.integers(min_value=5, max_value=12))

EXAMPLES = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def matches(issue, params, categories):
    """The filter as the portal and the API document it, read against one drawn issue."""
    if params.get("code") and issue["code"] != params["code"]:
        return False
    if params.get("category") and categories[issue["code"]] != params["category"]:
        return False
    if params.get("severity") and issue["severity"] != params["severity"]:
        return False
    state = params.get("state", "open")  # open issues unless told
    if state and state != "all" and issue["state"] != state:
        return False
    q = params.get("q", "").strip()
    if q and not (issue["external_id"].startswith(q) or issue["label"].lower().startswith(q.lower())):
        return False
    return True


def walk(fetch, limit):
    """Follow next cursors from the first page: the list of pages (lists of ids)."""
    pages, cursor = [], ""
    while True:
        ids, cursor = fetch(cursor)
        pages.append(ids)
        if not cursor:
            return pages
        assert len(pages) <= limit, f"still a next page after {len(pages)} pages: {pages}"


def assert_paged(pages, expected, size):
    event(f"pages: {len(pages) if len(pages) < 4 else '4 or more'}")
    walked = [pk for page in pages for pk in page]
    assert walked == expected, {"pages": pages, "expected": expected}
    assert len(pages) == max(1, math.ceil(len(expected) / size))
    assert all(len(page) == size for page in pages[:-1])
    assert pages[-1] or not expected


class KeysetPaginationProperties(TestCase):
    @classmethod
    def setUpTestData(cls):
        # A transactional test elsewhere may have flushed the seeded catalog.
        importlib.import_module("issues.migrations.0002_seed_error_codes").seed(apps, None)
        cls.categories = dict(ErrorCode.objects.filter(code__in=CODES).values_list("code", "category"))
        cls.tenant = TenantFactory()
        cls.integration = IntegrationFactory(tenant=cls.tenant)
        cls.other = IntegrationFactory(tenant=cls.tenant)  # same tenant, same moments: must never show
        cls.user = UserFactory()
        MembershipFactory(user=cls.user, tenant=cls.tenant)
        _, cls.api_key = api_keys.create_api_key(cls.tenant, "pagination")

    def make_issues(self, drawn, params):
        """Create the drawn issues; the ids the filter must return, newest first then highest id."""
        drawn = [{**issue, "external_id": f"item-{n:03d}"} for n, issue in enumerate(drawn)]
        rows = []
        for issue in drawn:
            rows.append(
                SyncIssue(
                    tenant=self.tenant,
                    integration=self.other if issue["other_integration"] else self.integration,
                    error_code_id=issue["code"],
                    severity=issue["severity"],
                    state=issue["state"],
                    item_type="item",
                    external_id=issue["external_id"],
                    item_label=issue["label"],
                    first_seen_at=issue["moment"] - timedelta(days=2),
                    last_seen_at=issue["moment"],
                )
            )
        SyncIssue.objects.bulk_create(rows)
        assert all(row.pk for row in rows)
        keys = [
            (issue["moment"], row.pk)
            for issue, row in zip(drawn, rows)
            if not issue["other_integration"] and matches(issue, params, self.categories)
        ]
        moments = [moment for moment, _ in keys]
        event(f"rows tied on the moment: {'yes' if len(set(moments)) < len(moments) else 'no'}")
        return [pk for _, pk in sorted(keys, reverse=True)]

    @EXAMPLES
    @given(issues, filters, page_sizes)
    def test_module_cursors_return_each_row_once_in_order(self, drawn, params, size):
        expected = self.make_issues(drawn, params)
        qs = selectors.filtered_issues(self.integration, params)
        assert [row.pk for row in qs] == expected  # the full ordered queryset

        def fetch(cursor):
            rows, next_cursor = pagination.page_by_last_seen(qs, cursor, size)
            if next_cursor:
                # The cursor names the last row of the page it follows.
                assert pagination.decode(next_cursor) == (rows[-1].last_seen_at, rows[-1].pk)
            return [row.pk for row in rows], next_cursor

        assert_paged(walk(fetch, len(expected) + 1), expected, size)

    @settings(EXAMPLES, max_examples=30)
    @given(issues, filters, page_sizes)
    def test_api_next_links_return_each_row_once_in_order(self, drawn, params, size):
        expected = self.make_issues(drawn, params)
        url = f"/api/v1/integrations/{self.integration.pk}/issues/"

        def fetch(cursor):
            query = {**params, "limit": size, **({"after": cursor} if cursor else {})}
            response = self.client.get(url, query, HTTP_AUTHORIZATION=f"Bearer {self.api_key}")
            assert response.status_code == 200, response.content[:300]
            body = response.json()
            return [issue["id"] for issue in body["issues"]], body["next"]

        assert_paged(walk(fetch, len(expected) + 1), expected, size)

    @settings(EXAMPLES, max_examples=20)
    @given(issues, filters, st.integers(min_value=1, max_value=8))
    def test_portal_next_page_links_return_each_row_once_in_order(self, drawn, params, size):
        expected = self.make_issues(drawn, params)
        self.client.force_login(self.user)
        path = f"/portal/integrations/{self.integration.pk}/issues/"
        row_link = re.compile(rf'href="/portal/integrations/{self.integration.pk}/issues/(\d+)/help/"')
        next_link = re.compile(r'<a href="([^"]*)" rel="next">')
        url = [path, params]

        def fetch(cursor):
            response = self.client.get(*url)
            assert response.status_code == 200, response.content[:300]
            page = response.content.decode()
            ids = [int(pk) for pk in row_link.findall(page)]
            link = next_link.search(page)
            if link:
                url[:] = [urljoin(path, html.unescape(link.group(1))), None]
            return ids, link and link.group(1)

        with mock.patch.object(views, "ISSUES_PER_PAGE", size):
            assert_paged(walk(fetch, len(expected) + 1), expected, size)
