"""Changelist pages that read their rows' ids first (syncconsole/admin_tools.py PageFirstChangeList.DEEP)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations.models import Integration
from issues.models import SyncIssue
from tests.factories import IntegrationFactory, TenantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def many_issues(error_catalog):
    integration = IntegrationFactory()
    now = timezone.now()
    # Times that repeat, so that the order's tie-break (the id) decides too.
    SyncIssue.objects.bulk_create(
        SyncIssue(
            integration=integration,
            tenant=integration.tenant,
            error_code_id="ITEM_MISSING_FIELD",
            item_type="item",
            external_id=f"item-{n:07d}",
            first_seen_at=now,
            last_seen_at=now - timedelta(minutes=n % 37),
            state=SyncIssue.State.RESOLVED,
        )
        for n in range(1250)
    )
    return list(SyncIssue.objects.order_by("-last_seen_at", "-id").values_list("pk", flat=True))


def listed(response):
    return [row.pk for row in response.context["cl"].result_list]


def test_a_deep_page_lists_the_rows_of_its_place_in_the_order(client, staff_user, many_issues):
    client.force_login(staff_user)
    per_page = client.get("/admin/issues/syncissue/").context["cl"].list_per_page
    deep = -(-1000 // per_page) + 1  # the first page with at least 1,000 rows before it
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/admin/issues/syncissue/?p={deep}")
    assert response.status_code == 200
    skipped = (deep - 1) * per_page
    assert listed(response) == many_issues[skipped : skipped + per_page]
    # The ids came from a query of their own (OFFSET over ids), the rows by id.
    assert any('AS "pk"' in q["sql"] and "OFFSET" in q["sql"] for q in queries.captured_queries)
    # A shallow page reads its rows at once.
    assert listed(client.get("/admin/issues/syncissue/?p=2")) == many_issues[per_page : 2 * per_page]
    last = -(-len(many_issues) // per_page)
    assert listed(client.get(f"/admin/issues/syncissue/?p={last}")) == many_issues[(last - 1) * per_page :]


def test_the_integration_list_reads_ids_first_in_the_same_order(client, staff_user):
    for tenant_name in ("Beta", "Alpha", "Gamma"):
        tenant = TenantFactory(name=tenant_name)
        for name in ("zeta", "Alpha", "mid", "alpha"):
            IntegrationFactory(tenant=tenant, name=name)
    client.force_login(staff_user)
    response = client.get("/admin/integrations/integration/")
    assert response.status_code == 200
    expected = list(Integration.objects.order_by("tenant__name", "name", "-pk").values_list("pk", flat=True))
    assert listed(response) == expected
    by_status = client.get("/admin/integrations/integration/?o=2")
    assert sorted(listed(by_status)) == sorted(expected)
