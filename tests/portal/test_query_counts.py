"""The portal's pages cost the same number of queries with 10 and with 10,000 issues on an integration.

Each page is measured with 10 issues on the integration, then again after
bulk-creating issues up to 10,000 (with more sessions and help requests
too); the counts must be equal. A page that counted or listed every issue
would grow.
"""

import itertools
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from integrations import pagination
from integrations.models import Integration, Membership, SyncSession
from issues.models import ErrorCode, SupportRequest, SyncIssue
from tests.factories import SyncSessionFactory, TenantFactory

S = Integration.Status
CODES = ("ITEM_MISSING_FIELD", "ITEM_INVALID_VALUE", "ITEM_DUPLICATE", "ITEM_UNMAPPED")
_serial = itertools.count()


def grow(integration, total, user):
    """Add issues (and a few sessions and help requests) until the integration has `total` issues."""
    now = timezone.now()
    missing = total - SyncIssue.objects.filter(integration=integration).count()
    codes = {code: ErrorCode.objects.get(code=code) for code in CODES}
    issues = SyncIssue.objects.bulk_create(
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
                occurrences=1 + n % 5,
            )
            for n in (next(_serial) for _ in range(missing))
        ],
        batch_size=2000,
    )
    for n in range(3):
        SyncSessionFactory(
            integration=integration,
            state=SyncSession.State.WARNINGS,
            queued_at=now - timedelta(hours=n + 1),
            started_at=now - timedelta(hours=n + 1),
            finished_at=now - timedelta(hours=n + 1) + timedelta(minutes=2),
            items_seen=100 + n,
        )
    SupportRequest.objects.bulk_create(
        [
            SupportRequest(issue=issue, user=user, message="Help")
            for issue in issues[: max(1, len(issues) // 100)]
        ]
    )
    assert SyncIssue.objects.filter(integration=integration).count() == total


def count_queries(client, url):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(queries)


@pytest.mark.django_db
def test_portal_pages_cost_the_same_with_10_and_10000_issues(member, log_in, integration_in):
    tenant = TenantFactory(name="Acme")
    admin = member(tenant, Membership.Role.ADMIN, username="alice")
    integration = integration_in(tenant, S.WARNINGS, name="Acme address book")
    for n in range(4):
        integration_in(tenant, name=f"Acme other {n}")
    running = integration_in(tenant, name="Acme running")
    SyncSessionFactory(integration=running, state=SyncSession.State.RUNNING, items_seen=10, items_total=100)
    last = SyncSessionFactory(
        integration=integration,
        state=SyncSession.State.FAILED,
        error_code=ErrorCode.objects.get(code="VENDOR_UNAVAILABLE"),
        started_at=timezone.now() - timedelta(minutes=10),
        finished_at=timezone.now() - timedelta(minutes=9),
    )
    Integration.objects.filter(pk=integration.pk).update(last_session=last)
    client = log_in(admin)

    def pages():
        first_open = SyncIssue.objects.filter(integration=integration, state="open").order_by(
            "-last_seen_at", "-pk"
        )
        cursor = pagination.encode(first_open[4])
        issues = reverse("portal:issues", args=[integration.pk])
        return {
            "list": reverse("portal:list"),
            "general": reverse("portal:general", args=[integration.pk]),
            "progress": reverse("portal:progress", args=[integration.pk]),
            "issues": issues,
            "issues, all states": f"{issues}?state=all",
            "issues, page 2": f"{issues}?after={cursor}",
            "issues, filtered": f"{issues}?code=ITEM_MISSING_FIELD&category=data&severity=warning&state=all&q=Item",
        }

    grow(integration, 10, admin)
    for url in pages().values():  # warm caches (content types, sessions) before counting
        client.get(url)
    small = {name: count_queries(client, url) for name, url in pages().items()}

    grow(integration, 10_000, admin)
    large = {name: count_queries(client, url) for name, url in pages().items()}

    assert large == small
    # Bounded, too: a handful of queries for each page.
    assert max(small.values()) <= 15, small
