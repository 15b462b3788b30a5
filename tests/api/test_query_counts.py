"""Every API endpoint costs the same number of queries whatever number of rows it answers with.

Measured at a small size, then again after growing what the endpoints list:
the tenant from 3 to 30 integrations, each with a last session (with its
error code when it failed), open issues and, for some, a sync running now;
the focus integration from 10 to 10,000 issues. The counts must be equal
(and small): growing only the issues would leave the integration list as it
was and hide an N+1 on it. Each list must answer with at least one row at
the small size and more at the large one.

The sync POST is measured once per size: its session is settled in between
so that the second one starts too.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations import pagination
from integrations.models import Integration, SyncSession
from issues.models import SyncIssue
from tests.factories import SyncSessionFactory, TenantFactory
from tests.queries import add_integrations, add_issues, measure, report

Status = Integration.Status
SMALL = {"integrations": 3, "issues": 10}
LARGE = {"integrations": 30, "issues": 10_000}


def grow(make, integration, size):
    """Add integrations to its tenant and issues to the integration until there are as many as `size` says."""
    now = timezone.now()
    tenant = integration.tenant
    add_integrations(make, tenant, size["integrations"] - Integration.objects.filter(tenant=tenant).count())
    add_issues(integration, size["issues"], now)
    SyncSessionFactory(
        integration=integration,
        state=SyncSession.State.SUCCEEDED,
        queued_at=now - timedelta(hours=1),
        finished_at=now - timedelta(minutes=58),
    )
    assert Integration.objects.filter(tenant=tenant).count() == size["integrations"]
    assert SyncIssue.objects.filter(integration=integration).count() == size["issues"]


@pytest.mark.django_db
def test_api_endpoints_cost_the_same_small_and_large(api_client, integration_in):
    tenant = TenantFactory(name="Acme")
    integration = integration_in(tenant, Status.WARNINGS, name="Acme address book")
    api = api_client(tenant)
    pk = integration.pk

    def call(method, url, rows=None, **kwargs):
        response, queries = measure(api, url, method, **kwargs)
        assert response.status_code in (200, 202), (url, response.status_code, response.content[:300])
        return (None if rows is None else len(response.json()[rows])), queries

    def visit():
        """{endpoint: (rows answered or None, queries)}."""
        newest = SyncIssue.objects.filter(integration=integration, state="open").order_by(
            "-last_seen_at", "-pk"
        )
        cursor = pagination.encode(newest[1])
        issues = f"/api/v1/integrations/{pk}/issues/"
        measured = {
            "list": call("get", "/api/v1/integrations/", "integrations"),
            "detail": call("get", f"/api/v1/integrations/{pk}/"),
            "issues": call("get", issues, "issues"),
            "issues, limit 200, all": call("get", issues, "issues", data={"limit": 200, "state": "all"}),
            "issues, after": call("get", issues, "issues", data={"after": cursor, "limit": 5}),
            "issues, filtered": call(
                "get",
                issues,
                "issues",
                data={"code": "ITEM_MISSING_FIELD", "category": "data", "severity": "warning", "q": "Item"},
            ),
            "sync": call(
                "post",
                f"/api/v1/integrations/{pk}/sync",
                data={"kind": "full"},
                content_type="application/json",
            ),
        }
        # Inside the test's transaction the queued session never runs: settle it for the next round.
        SyncSession.objects.filter(integration=integration, state=SyncSession.State.QUEUED).update(
            state=SyncSession.State.CANCELLED, finished_at=timezone.now()
        )
        return measured

    grow(integration_in, integration, SMALL)
    visit()  # warm up
    small = visit()
    grow(integration_in, integration, LARGE)
    large = visit()

    for endpoint, (rows, _) in small.items():
        if rows is not None:
            # Rows at both sizes, more at the large one: otherwise an N+1 could not show.
            assert 0 < rows < large[endpoint][0], (endpoint, rows, large[endpoint][0])
    small_queries = {endpoint: queries for endpoint, (_, queries) in small.items()}
    large_queries = {endpoint: queries for endpoint, (_, queries) in large.items()}
    assert {endpoint: len(q) for endpoint, q in large_queries.items()} == {
        endpoint: len(q) for endpoint, q in small_queries.items()
    }, report(small_queries, large_queries)
    assert max(len(q) for q in small_queries.values()) <= 12, {e: len(q) for e, q in small_queries.items()}
