"""The pages `make bench-pages` measures, and how each is measured.

Each page is asked for in-process through Django's test `Client` (a staff
superuser or the big tenant's admin logged in with `force_login`, or the API
key as a Bearer header), over https, with the settings the process started
with (production: DEBUG off). Two warm-ups, then N timed requests; one more
request inside `CaptureQueriesContext` counts the SQL queries and gives the
size. A changelist and its stock twin are asked in turn, round after round,
so that a busy moment of the machine weighs on both. A page that does not
answer 200 is reported with its status, not timed.
"""

import html
import math
import re
import time
from dataclasses import dataclass
from urllib.parse import urljoin

TARGET_P50_MS = 100
TARGET_P95_MS = 250
FOLLOW_NEXT = 20  # the portal's deep keyset page: this many "Next page" links from the first page
DEEP_ADMIN_PAGE = 100  # the admin's issue list, page 100: the last one a capped count of 10,000 lists


@dataclass
class Page:
    name: str
    url: str | None  # None: the page could not be built (the note says why)
    who: str  # "staff", "customer" or "api"
    stock_url: str | None = None  # the same list in Django's stock admin, for changelists
    note: str = ""

    @property
    def changelist(self):
        return self.stock_url is not None


@dataclass
class Timing:
    status: int | None = None
    p50: float | None = None
    p95: float | None = None
    queries: int | None = None
    kb: float | None = None
    note: str = ""

    @property
    def measured(self):
        return self.p50 is not None


@dataclass
class Row:
    page: Page
    ours: Timing
    stock: Timing | None

    @property
    def ratio(self):
        if self.stock is None or not (self.ours.measured and self.stock.measured) or not self.stock.p50:
            return None
        return self.ours.p50 / self.stock.p50

    def misses(self):
        """The targets this page misses: [] when it meets them all."""
        if not self.ours.measured:
            return [self.ours.note or "not measured"]
        missed = []
        if self.ours.p50 > TARGET_P50_MS:
            missed.append("p50")
        if self.ours.p95 > TARGET_P95_MS:
            missed.append("p95")
        if self.page.changelist and self.ratio is not None and self.ratio > 1:
            missed.append("stock")
        return missed


def percentile(values, fraction):
    """Nearest rank: the smallest value with at least `fraction` of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def clients(dataset):
    """{"staff", "customer", "api"}: test Clients that return 500 pages rather than raise."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    User = get_user_model()
    backend = "django.contrib.auth.backends.ModelBackend"
    staff = Client(raise_request_exception=False)
    staff.force_login(User.objects.get(pk=dataset.superuser_id), backend=backend)
    customer = Client(raise_request_exception=False)
    customer.force_login(User.objects.get(pk=dataset.tenant_admin_id), backend=backend)
    api = Client(raise_request_exception=False, headers={"Authorization": f"Bearer {dataset.api_key}"})
    return {"staff": staff, "customer": customer, "api": api}


def get(client, url):
    return client.get(url, secure=True)


def time_pages(client, urls, runs, warmups):
    """[Timing] for each of `urls`, asked in turn within each round so that a busy moment weighs on all alike."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    timings = [Timing() for _ in urls]
    live = []  # indexes of the urls that answer 200
    for index, url in enumerate(urls):
        try:
            response = get(client, url)
        except Exception as exc:  # a page that breaks is a row of the table, not the end of the run
            timings[index].note = f"error: {type(exc).__name__}: {exc}"[:120]
            continue
        timings[index].status = response.status_code
        if response.status_code == 200:
            live.append(index)
        else:
            timings[index].note = f"HTTP {response.status_code}"
    seconds = {index: [] for index in live}
    for _ in range(warmups - 1):
        for index in live:
            get(client, urls[index])
    for _ in range(runs):
        for index in live:
            started = time.perf_counter()
            get(client, urls[index])
            seconds[index].append(time.perf_counter() - started)
    for index in live:
        with CaptureQueriesContext(connection) as queries:
            response = get(client, urls[index])
        ms = [s * 1000 for s in seconds[index]]
        timing = timings[index]
        timing.p50, timing.p95 = percentile(ms, 0.5), percentile(ms, 0.95)
        timing.queries = len(queries.captured_queries)
        timing.kb = len(response.content) / 1024
    return timings


# -- the pages ------------------------------------------------------------------


def order_param(model_admin, user, names):
    """The changelist's `o=` index of the first of `names` in its columns (action checkbox counted), or None."""
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = user
    columns = list(model_admin.get_list_display(request))
    if model_admin.get_actions(request):  # as ModelAdmin.changelist_view does
        columns = ["action_checkbox", *columns]
    for name in names:
        if name in columns:
            return columns.index(name)
    return None


def open_issue_column(model_admin, user):
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = user
    return [c for c in model_admin.get_list_display(request) if isinstance(c, str) and "open_issue" in c]


def follow_next(client, url, times):
    """(url of the page reached, pages followed): follows rel="next" links as a person clicking would."""
    followed = 0
    for _ in range(times):
        response = get(client, url)
        if response.status_code != 200:
            break
        found = next_link(response.content.decode())
        if not found:
            break
        url = urljoin(url, found)
        followed += 1
    return url, followed


def next_link(page_html):
    for tag in re.findall(r"<a\b[^>]*>", page_html):
        if re.search(r"""rel=["']?next""", tag):
            href = re.search(r'href="([^"]*)"', tag)
            if href:
                return html.unescape(href.group(1))
    return None


def build_pages(dataset, by_client):
    from django.contrib import admin
    from django.contrib.auth import get_user_model

    from bench.stock_urls import stock_site
    from integrations.models import Integration

    superuser = get_user_model().objects.get(pk=dataset.superuser_id)
    heavy = dataset.heavy_integration_id
    integrations, stock_integrations = "/admin/integrations/integration/", "/stock-admin/integrations/integration/"
    issues, stock_issues = "/admin/issues/syncissue/", "/stock-admin/issues/syncissue/"

    ours_admin = admin.site._registry[Integration]
    column = open_issue_column(ours_admin, superuser)
    ours_o = order_param(ours_admin, superuser, column)
    stock_o = order_param(stock_site._registry[Integration], superuser, ["consecutive_unsuccessful"])
    by_open = Page(
        "admin: integrations by open issues",
        f"{integrations}?o=-{ours_o}" if ours_o is not None else None,
        "staff",
        stock_url=f"{stock_integrations}?o=-{stock_o}",
        note="" if ours_o is not None else "no open-issue column",
    )

    portal_issues = f"/portal/integrations/{heavy}/issues/"
    deep_url, followed = follow_next(by_client["customer"], portal_issues, FOLLOW_NEXT)
    deep = Page(f"portal: Issues, next ×{followed}", deep_url, "customer",
                note="" if followed == FOLLOW_NEXT else f"only {followed} next links")  # fmt: skip

    return [
        Page("admin: dashboard", "/admin/", "staff"),
        Page("admin: integrations", integrations, "staff", stock_url=stock_integrations),
        Page("admin: integrations ?status=failing", f"{integrations}?status__exact=failing", "staff",
             stock_url=f"{stock_integrations}?status__exact=failing"),
        Page("admin: integrations ?q=Pax8", f"{integrations}?q=Pax8", "staff", stock_url=f"{stock_integrations}?q=Pax8"),
        by_open,
        Page("admin: integration page (big)", f"{integrations}{heavy}/change/", "staff"),
        Page("admin: issues", issues, "staff", stock_url=stock_issues),
        Page("admin: issues open+critical", f"{issues}?state__exact=open&severity__exact=critical", "staff",
             stock_url=f"{stock_issues}?state__exact=open&severity__exact=critical"),
        Page("admin: issues ?q=item-0012345", f"{issues}?q=item-0012345", "staff",
             stock_url=f"{stock_issues}?q=item-0012345"),
        Page(f"admin: issues ?p={DEEP_ADMIN_PAGE}", f"{issues}?p={DEEP_ADMIN_PAGE}", "staff",
             stock_url=f"{stock_issues}?p={DEEP_ADMIN_PAGE}"),
        Page("portal: integrations (big tenant)", "/portal/", "customer"),
        Page("portal: General tab", f"/portal/integrations/{heavy}/", "customer"),
        Page("portal: Issues tab", portal_issues, "customer"),
        Page("portal: Issues ?q=item-0012345", f"{portal_issues}?q=item-0012345", "customer"),
        deep,
        Page("api: GET integrations/", "/api/v1/integrations/", "api"),
        Page("api: GET integrations/<id>/", f"/api/v1/integrations/{heavy}/", "api"),
        Page("api: GET integrations/<id>/issues/", f"/api/v1/integrations/{heavy}/issues/", "api"),
    ]  # fmt: skip


def measure(dataset, runs, warmups, say):
    """[Row]: every page, and its stock twin where it has one (the two asked in turn)."""
    by_client = clients(dataset)
    rows = []
    for page in build_pages(dataset, by_client):
        urls = [url for url in (page.url, page.stock_url) if url]
        timings = time_pages(by_client[page.who], urls, runs, warmups)
        ours = timings.pop(0) if page.url else Timing(note=page.note)
        stock = timings.pop(0) if page.stock_url else None
        if page.note and ours.measured:
            ours.note = page.note
        rows.append(Row(page, ours, stock))
        say(f"  {page.name}: {fmt(ours.p50)} ms" + (f" (stock {fmt(stock.p50)} ms)" if stock else ""))
    return rows


# -- the table --------------------------------------------------------------------


def fmt(value, digits=0):
    return "-" if value is None else f"{value:,.{digits}f}"


def table(rows):
    header = ("page", "p50 ms", "p95 ms", "queries", "KB", "stock p50", "ratio", "")
    lines = []
    for row in rows:
        ours, stock = row.ours, row.stock
        missed = row.misses()
        flags = ("✗ " + ", ".join(missed)) if missed else ""
        if ours.note and ours.measured:
            flags = f"{flags} ({ours.note})".strip()
        if stock is not None and not stock.measured:
            flags = f"{flags} (stock: {stock.note})".strip()
        lines.append((
            row.page.name, fmt(ours.p50, 1), fmt(ours.p95, 1), fmt(ours.queries), fmt(ours.kb, 1),
            fmt(stock.p50, 1) if stock else "", fmt(row.ratio, 2) if row.ratio is not None else "", flags,
        ))  # fmt: skip
    widths = [max(len(str(line[i])) for line in [header, *lines]) for i in range(len(header))]
    out = []
    for index, line in enumerate([header, *lines]):
        cells = [line[0].ljust(widths[0])] + [str(c).rjust(w) for c, w in zip(line[1:-1], widths[1:-1])] + [line[-1]]
        out.append("  ".join(cells).rstrip())
        if index == 0:
            out.append("  ".join("-" * w for w in widths[:-1]))
    missing = sum(1 for row in rows if row.misses())
    out.append("")
    out.append(
        "p50/p95: of the timed requests (nearest rank); queries and KB: one more request. stock: the same list "
        "in a plain ModelAdmin\n(bench/stock_urls.py); ratio: our p50 / stock p50. The stock list has no "
        "open-issue column: its \"by open issues\"\nrow sorts by consecutive_unsuccessful."
    )
    out.append(
        f"{missing} of {len(rows)} pages miss a target (p50 <= {TARGET_P50_MS} ms, p95 <= {TARGET_P95_MS} ms, "
        "changelists no slower than stock)."
    )
    return "\n".join(out)
