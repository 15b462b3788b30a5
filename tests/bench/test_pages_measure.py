"""bench/pages_measure.py: the figures and flags of `make bench-pages`, without a database."""

from bench.pages_measure import TARGET_P50_MS, TARGET_P95_MS, Page, Row, Timing, next_link, percentile, table


def timing(p50, p95=None):
    return Timing(status=200, p50=p50, p95=p95 if p95 is not None else p50, queries=3, kb=1.0)


def test_percentiles_are_nearest_rank():
    values = list(range(1, 21))
    assert percentile(values, 0.5) == 10
    assert percentile(values, 0.95) == 19
    assert percentile([7], 0.95) == 7


def test_next_link_is_found_in_either_attribute_order_and_unescaped():
    assert next_link('<p><a href="?a=1&amp;after=xyz" rel="next">Next page</a></p>') == "?a=1&after=xyz"
    assert next_link("<a rel=\"next\" class=\"x\" href=\"/p/?after=abc\">Next</a>") == "/p/?after=abc"
    assert next_link('<a href="?p=2">2</a>') is None


def test_a_page_within_the_targets_misses_nothing():
    assert Row(Page("p", "/p/", "staff"), timing(TARGET_P50_MS, TARGET_P95_MS), None).misses() == []


def test_each_target_missed_is_named():
    page = Page("list", "/list/", "staff", stock_url="/stock/")
    assert Row(page, timing(TARGET_P50_MS + 1, TARGET_P95_MS + 1), timing(500)).misses() == ["p50", "p95"]
    assert Row(page, timing(50), timing(40)).misses() == ["stock"]
    assert Row(page, timing(50), timing(40)).ratio == 1.25


def test_a_page_that_did_not_answer_is_a_miss_with_its_status():
    row = Row(Page("gone", "/gone/", "customer"), Timing(status=404, note="HTTP 404"), None)
    assert row.misses() == ["HTTP 404"]
    assert row.ratio is None


def test_the_table_counts_the_pages_that_miss_a_target():
    rows = [
        Row(Page("fast", "/fast/", "api"), timing(5), None),
        Row(Page("slow list", "/slow/", "staff", stock_url="/stock/"), timing(300), timing(150)),
        Row(Page("gone", "/gone/", "api"), Timing(status=400, note="HTTP 400"), None),
    ]
    text = table(rows)
    assert "✗ p50, p95, stock" in text
    assert "✗ HTTP 400" in text
    assert "2.00" in text  # the ratio
    assert text.splitlines()[-1].startswith("2 of 3 pages miss a target")
