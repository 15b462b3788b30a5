"""Every API endpoint costs the same number of queries with 10 and with 10,000 issues on an integration.

Measured with 10 issues, then again after bulk-creating up to 10,000; the
counts must be equal (and small). The sync POST is measured once per size:
its session is settled in between so that the second one starts too.
"""

import itertools
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations import pagination
from integrations.models import Integration, SyncSession
from issues.models import ErrorCode, SyncIssue
from tests.factories import SyncSessionFactory, TenantFactory

S = Integration.Status
CODES = ("ITEM_MISSING_FIELD", "ITEM_INVALID_VALUE", "ITEM_DUPLICATE", "ITEM_UNMAPPED")
_serial = itertools.count()


def grow(integration, total):
    now = timezone.now()
    codes = {code: ErrorCode.objects.get(code=code) for code in CODES}
    missing = total - SyncIssue.objects.filter(integration=integration).count()
    SyncIssue.objects.bulk_create(
        [
            SyncIssue(
                tenant=integration.tenant,
                integration=integration,
                error_code=codes[CODES[n % len(CODES)]],
                severity=("warning", "error", "info")[n % 3],
                state=("open", "open", "resolved", "ignored")[n % 4],
                item_type="item",
                external_id=f"item-{n:07d}",
                item_label=f"Item {n}",
                first_seen_at=now - timedelta(days=2),
                last_seen_at=now - timedelta(seconds=n),
            )
            for n in (next(_serial) for _ in range(missing))
        ],
        batch_size=2000,
    )
    SyncSessionFactory(
        integration=integration,
        state=SyncSession.State.SUCCEEDED,
        queued_at=now - timedelta(hours=1),
        finished_at=now - timedelta(minutes=58),
    )
    assert SyncIssue.objects.filter(integration=integration).count() == total


def count(api, method, url, **kwargs):
    with CaptureQueriesContext(connection) as queries:
        response = getattr(api, method)(url, **kwargs)
    assert response.status_code in (200, 202), (url, response.status_code, response.content[:300])
    return len(queries)


@pytest.mark.django_db
def test_api_endpoints_cost_the_same_with_10_and_10000_issues(api_client, integration_in):
    tenant = TenantFactory(name="Acme")
    integration = integration_in(tenant, S.WARNINGS, name="Acme address book")
    for n in range(4):
        integration_in(tenant, name=f"Acme other {n}")
    idle = integration_in(tenant, S.INACTIVE, name="Acme idle", deactivated_for_inactivity=False)
    SyncSessionFactory(integration=idle, state=SyncSession.State.CANCELLED)
    api = api_client(tenant)
    pk = integration.pk

    def measure():
        newest = SyncIssue.objects.filter(integration=integration, state="open").order_by(
            "-last_seen_at", "-pk"
        )
        cursor = pagination.encode(newest[3])
        issues = f"/api/v1/integrations/{pk}/issues/"
        counts = {
            "list": count(api, "get", "/api/v1/integrations/"),
            "detail": count(api, "get", f"/api/v1/integrations/{pk}/"),
            "issues": count(api, "get", issues),
            "issues, limit 200, all": count(api, "get", issues, data={"limit": 200, "state": "all"}),
            "issues, after": count(api, "get", issues, data={"after": cursor, "limit": 5}),
            "issues, filtered": count(
                api,
                "get",
                issues,
                data={"code": "ITEM_UNMAPPED", "category": "mapping", "severity": "info", "q": "Item"},
            ),
            "sync": count(
                api,
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
        return counts

    grow(integration, 10)
    measure()  # warm up
    small = measure()
    grow(integration, 10_000)
    large = measure()

    assert large == small
    assert max(small.values()) <= 12, small
