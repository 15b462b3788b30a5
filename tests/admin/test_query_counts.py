"""The console's pages cost the same number of queries however many rows there are.

Each page is measured with 5 integrations and 10 issues on one integration,
then again after growing to 500 integrations and 10,000 issues on that
integration (with more sessions, events and links too); the counts must be
equal. Rows are bulk-created for speed.
"""

import importlib
import itertools
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alerts.models import Alert, Incident
from integrations.models import (
    AccountMapping,
    Integration,
    IntegrationEvent,
    ReauthLink,
    SyncSession,
    Tenant,
)
from issues.models import SyncIssue

S = Integration.Status
State = SyncSession.State
STATUSES = list(Integration.Status.values)
_serial = itertools.count()


class Data:
    """A growing console: integrations over tenants in every status, sessions, issues, events, alerts, links."""

    def __init__(self):
        self.now = timezone.now()
        self.integrations = []
        self.focus = None  # the integration whose page and issues are measured

    def grow(self, integrations, issues):
        """Add rows until there are `integrations` integrations and `issues` issues on the focus one."""
        self._add_integrations(integrations - len(self.integrations))
        self._add_focus_rows(issues - self.focus.issues.count())

    def _add_integrations(self, count):
        now = self.now
        tenants = Tenant.objects.bulk_create(
            [
                Tenant(name=f"Tenant {n}", slug=f"tenant-q{n}")
                for n in (next(_serial) for _ in range(max(1, count // 5)))
            ]
        )
        base = len(self.integrations)
        rows = Integration.objects.bulk_create(
            [
                Integration(
                    tenant=tenants[i % len(tenants)],
                    connector="simulator" if i % 4 else "rest",
                    name=f"Integration {base + i}",
                    settings={"account": f"healthy.q{base + i}"},
                    status=STATUSES[(base + i) % len(STATUSES)],
                    status_changed_at=now - timedelta(minutes=base + i),
                    status_reason="set by the test",
                    mapping_complete=True,
                    first_sync_finished_at=now - timedelta(days=2),
                    consecutive_unsuccessful=(base + i) % 12,
                    last_success_at=now - timedelta(hours=(base + i) % 30),
                    next_sync_at=now + timedelta(minutes=(base + i) % 60),
                )
                for i in range(count)
            ]
        )
        finished = SyncSession.objects.bulk_create(
            [
                SyncSession(
                    integration=row,
                    kind="quick",
                    trigger="schedule",
                    state=(State.SUCCEEDED, State.FAILED, State.UNKNOWN)[i % 3],
                    error_code_id=(None, "VENDOR_UNAVAILABLE", "SYNC_LEASE_LOST")[i % 3],
                    error_message="" if i % 3 == 0 else "it broke",
                    queued_at=now - timedelta(minutes=30 + i % 600),
                    started_at=now - timedelta(minutes=29 + i % 600),
                    finished_at=now - timedelta(minutes=20 + i % 600),
                    items_seen=i,
                    rate_limited_waits=i % 2,
                )
                for i, row in enumerate(rows)
            ]
        )
        for row, session in zip(rows, finished):
            row.last_session = session
        Integration.objects.bulk_update(rows, ["last_session"])
        SyncSession.objects.bulk_create(
            [
                SyncSession(
                    integration=row,
                    state=State.RUNNING if i % 2 else State.QUEUED,
                    trigger="staff",
                    queued_at=now - timedelta(minutes=1),
                    started_at=now if i % 2 else None,
                    items_seen=10 * i,
                    items_total=1000 if i % 3 else None,
                )
                for i, row in enumerate(rows)
                if i % 4 == 1
            ]
        )
        SyncIssue.objects.bulk_create(
            [
                SyncIssue(
                    tenant_id=row.tenant_id,
                    integration=row,
                    error_code_id="ITEM_MISSING_FIELD",
                    item_type="item",
                    external_id=f"item-{i:07d}",
                    first_seen_at=now,
                    last_seen_at=now,
                )
                for i, row in enumerate(rows)
            ]
        )
        IntegrationEvent.objects.bulk_create(
            [
                IntegrationEvent(
                    integration=row,
                    kind=IntegrationEvent.Kind.ALERT_SENT
                    if i % 5 == 0
                    else IntegrationEvent.Kind.STATUS_CHANGED,
                    from_status=S.ACTIVE,
                    to_status=row.status,
                    note="5 unsuccessful syncs in a row",
                    created_at=now - timedelta(minutes=i % 300),
                )
                for i, row in enumerate(rows)
            ]
        )
        Alert.objects.bulk_create(
            [
                Alert(
                    integration=row,
                    tenant_id=row.tenant_id,
                    rule=Alert.Rule.REPEATED_FAILURES,
                    streak=f"streak-{base + i}",
                    state=Alert.State.SENT,
                    recipients=["ops@customer.example"],
                    subject="Syncs keep failing",
                    created_at=now - timedelta(minutes=i % 300),
                    sent_at=now - timedelta(minutes=i % 300),
                )
                for i, row in enumerate(rows)
                if i % 5 == 0
            ]
        )
        # One more open vendor-wide incident each time the console grows.
        open_incidents = Incident.objects.filter(resolved_at=None).count()
        connector, code = [
            ("simulator", "VENDOR_UNAVAILABLE"),
            ("rest", "VENDOR_TIMEOUT"),
            ("simulator", "RATE_LIMITED"),
        ][open_incidents]
        Incident.objects.create(
            connector=connector,
            error_code_id=code,
            opened_at=now - timedelta(hours=1),
            tenants_affected=len(tenants),
        )
        AccountMapping.objects.bulk_create(
            [
                AccountMapping(integration=row, vendor_account_id="acct-1", tenant_account="north")
                for row in rows
            ]
        )
        self.integrations += rows
        if self.focus is None:
            self.focus = rows[0]

    def _add_focus_rows(self, issues):
        focus, now = self.focus, self.now
        start = focus.issues.count()
        SyncIssue.objects.bulk_create(
            [
                SyncIssue(
                    tenant_id=focus.tenant_id,
                    integration=focus,
                    error_code_id=("ITEM_MISSING_FIELD", "ITEM_INVALID_VALUE", "ITEM_DUPLICATE")[n % 3],
                    state=SyncIssue.State.OPEN if n % 10 else SyncIssue.State.RESOLVED,
                    item_type="contact",
                    external_id=f"c-{n:08d}",
                    item_label=f"Contact {n}",
                    vendor_url=f"https://vendor.example/contacts/{n}",
                    message="A field is missing.",
                    details={"field": "name", "payload": "x" * 200},
                    first_seen_at=now - timedelta(seconds=n),
                    last_seen_at=now - timedelta(seconds=n),
                )
                for n in range(start, start + issues)
            ]
        )
        grow = max(issues // 100, 1)
        SyncSession.objects.bulk_create(
            [
                SyncSession(
                    integration=focus,
                    state=State.FAILED if n % 2 else State.SUCCEEDED,
                    error_code_id="VENDOR_TIMEOUT" if n % 2 else None,
                    queued_at=now - timedelta(hours=2 + n),
                    started_at=now - timedelta(hours=2 + n),
                    finished_at=now - timedelta(hours=2 + n) + timedelta(seconds=30 + n),
                    items_seen=n,
                )
                for n in range(grow)
            ]
        )
        IntegrationEvent.objects.bulk_create(
            [
                IntegrationEvent(
                    integration=focus, kind=IntegrationEvent.Kind.SYNC_REQUESTED, note="n", created_at=now
                )
                for _ in range(grow)
            ]
        )
        ReauthLink.objects.bulk_create(
            [
                ReauthLink(
                    integration=focus,
                    token_hash=ReauthLink.hash_token(f"token-{next(_serial)}"),
                    recipient="it@customer.example",
                    created_at=now - timedelta(hours=n),
                    expires_at=now + timedelta(hours=72 - n),
                )
                for n in range(min(grow, 20))
            ]
        )
        AccountMapping.objects.bulk_create(
            [
                AccountMapping(
                    integration=focus, vendor_account_id=f"acct-x{next(_serial)}", vendor_account_name="x"
                )
                for _ in range(min(grow, 3))
            ]
        )


PAGES = {
    "dashboard": lambda d: "/admin/",
    "integration changelist": lambda d: "/admin/integrations/integration/",
    "integration changelist, needs attention": lambda d: "/admin/integrations/integration/?attention=yes",
    "integration changelist, by status and connector": lambda d: (
        "/admin/integrations/integration/?status__exact=failing&connector=simulator&o=-9"
    ),
    "integration changelist, search": lambda d: "/admin/integrations/integration/?q=Tenant",
    "integration page": lambda d: f"/admin/integrations/integration/{d.focus.pk}/change/",
    "sync issue changelist": lambda d: "/admin/issues/syncissue/",
    "sync issue changelist, one integration's open issues": lambda d: (
        f"/admin/issues/syncissue/?integration__id__exact={d.focus.pk}&state__exact=open"
    ),
    "sync issue changelist, prefix search": lambda d: "/admin/issues/syncissue/?q=c-0000",
    "sync session changelist": lambda d: "/admin/integrations/syncsession/",
    "sync session changelist, by code": lambda d: (
        "/admin/integrations/syncsession/?error_code__code__exact=VENDOR_UNAVAILABLE"
    ),
}


def measure(client, url):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, url
    return [q["sql"] for q in queries.captured_queries]


@pytest.fixture(scope="module")
def measured(django_db_setup, django_db_blocker):
    """{page: (queries with 5 integrations / 10 issues, queries with 500 / 10,000)}, as a Support user.

    Building 10,000 issues is the slow part, so the rows are built once for
    every page, inside a transaction that is rolled back at the end. (The
    tests are marked django_db so that pytest-django sets up the test
    database this fixture writes to.)
    """
    from django.apps import apps
    from django.contrib.auth.models import Group
    from django.test import Client

    from tests.factories import UserFactory

    groups = importlib.import_module("integrations.migrations.0005_staff_groups")
    catalog = importlib.import_module("issues.migrations.0002_seed_error_codes")
    configs = [apps.get_app_config(label) for label in ("integrations", "issues")]
    saved = [config.models_module for config in configs]
    results = {}
    with django_db_blocker.unblock(), transaction.atomic():
        name = str(connection.settings_dict["NAME"])
        assert "memory" in name or "test" in name, f"{name} is not a test database"
        try:
            catalog.seed(apps, None)
            groups.create_groups(apps, None)
        finally:
            for config, models_module in zip(configs, saved):
                config.models_module = models_module
        user = UserFactory(username="support-q", is_staff=True)
        user.groups.add(Group.objects.get(name="Support"))
        client = Client()
        client.force_login(user)

        data = Data()
        data.grow(integrations=5, issues=10)
        for page, url in PAGES.items():
            client.get(url(data))  # warm the per-process caches (content types, ...)
            results[page] = [measure(client, url(data))]

        data.grow(integrations=500, issues=10_000)
        assert Integration.objects.count() == 500
        assert data.focus.issues.count() == 10_000
        for page, url in PAGES.items():
            results[page].append(measure(client, url(data)))
        transaction.set_rollback(True)
    return results


@pytest.mark.django_db
@pytest.mark.parametrize("page", list(PAGES))
def test_query_count_does_not_grow_with_rows(measured, page):
    small, large = measured[page]

    assert len(large) == len(small), "\n".join(
        ["queries with 5 integrations / 10 issues:", *small, "", "with 500 / 10,000:", *large]
    )
