"""The console's pages cost the same number of queries however many rows they list.

Each page is measured with 5 integrations and 10 issues on one integration,
then again after growing to 500 integrations and 10,000 issues on that
integration; the counts must be equal. Every integration has a last session
(a finished one, with an error code when it failed) and an open issue, so a
column that follows `last_session` or `tenant` without `list_select_related`
costs one query per row and the two counts differ. One difference is allowed:
a changelist whose rows fit on its first page takes their number from the
page (syncconsole/admin_tools.py, PageFirstChangeList), so the larger list
may run one COUNT query more, and nothing else.

Every model registered in the admin has its changelist measured the same
way, and everything those changelists list grows with the integrations:
sessions, issues, records, events (with an actor), re-authentication links,
help requests, tenants, members, API keys, mappings, alerts, incidents,
webhook endpoints and deliveries, error codes, staff groups, background
tasks, login records. A changelist must list at least one row at the small
size and more at the large one: a page that lists nothing at both sizes would
hide an N+1, so a newly registered model fails here until this module grows
its rows too. The confirmation pages of bulk actions, which list every row
they will change, are measured too.

Rows are bulk-created for speed, once for the whole module.
"""

import importlib
import itertools
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from django_q.models import OrmQ, Schedule, Task

from alerts.models import Alert, Incident, WebhookDelivery, WebhookEndpoint
from integrations.counters import actual_open_issue_count
from integrations.models import (
    AccountMapping,
    ApiKey,
    Integration,
    IntegrationEvent,
    Membership,
    MetricTally,
    PageFingerprint,
    ReauthLink,
    SeenItem,
    SeenRange,
    SyncedRecord,
    SyncSession,
    Tenant,
    WorkerHeartbeat,
)
from issues.models import ErrorCode, SupportMessage, SupportRequest, SyncIssue
from tests.queries import grown, measure, shape

Status = Integration.Status
State = SyncSession.State
STATUSES = list(Integration.Status.values)
_serial = itertools.count()


class Data:
    """A growing console: integrations over tenants in every status, and every row the admin lists.

    The rows a changelist shows first (newest first, mostly) are ones that have
    the relations its columns follow, at both sizes: a first page of rows
    without an actor or an error code would hide an N+1 on them.
    """

    def __init__(self, staff):
        self.now = timezone.now()
        self.staff = staff  # who asks for syncs on the focus integration
        self.integrations = []
        self.focus = None  # the integration whose page and issues are measured

    def grow(self, integrations, issues):
        """Add rows until there are `integrations` integrations and `issues` issues on the focus one."""
        self._add_integrations(integrations - len(self.integrations))
        self._add_focus_rows(issues - self.focus.issues.count())
        # Bulk-created issues bypass the writers that keep the stored counts.
        Integration.objects.update(open_issue_count=actual_open_issue_count())

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
                    # Among the finished sessions, newest first: a long sync.
                    queued_at=now - timedelta(minutes=25 + i % 600),
                    started_at=now if i % 2 else None,
                    items_seen=10 * i,
                    items_total=1000 if i % 3 else None,
                )
                for i, row in enumerate(rows)
                if i % 4 == 1
            ]
        )
        records = SyncedRecord.objects.bulk_create(
            [
                SyncedRecord(
                    integration=row,
                    item_type="item",
                    external_id=f"item-{i:07d}",
                    content_hash="0" * 64,
                    data={"name": "x" * 100},
                    first_synced_at=now - timedelta(days=1),
                    last_synced_at=now,
                )
                for i, row in enumerate(rows)
            ]
        )
        issues = SyncIssue.objects.bulk_create(
            [
                SyncIssue(
                    tenant_id=row.tenant_id,
                    integration=row,
                    error_code_id="ITEM_MISSING_FIELD",
                    item_type="item",
                    external_id=f"item-{i:07d}",
                    vendor_url=f"https://vendor.example/items/{i}",
                    record=record,
                    first_session=session,
                    last_session=session,
                    first_seen_at=now,
                    last_seen_at=now,
                )
                for i, (row, record, session) in enumerate(zip(rows, records, finished))
            ]
        )
        # One customer per tenant: a member, who asked for help on each of its tenant's first issues.
        members = get_user_model().objects.bulk_create(
            [
                get_user_model()(username=f"member-q{next(_serial)}", email="it@customer.example")
                for _ in tenants
            ]
        )
        Membership.objects.bulk_create(
            [Membership(user=user, tenant=tenant, role="admin") for user, tenant in zip(members, tenants)]
        )
        member_of = {tenant.pk: user for tenant, user in zip(tenants, members)}
        SupportRequest.objects.bulk_create(
            [
                SupportRequest(
                    integration_id=issue.integration_id,
                    issue=issue,
                    user=member_of[issue.tenant_id],
                    message="Help",
                    # Assigned and answered, so that a column or a panel following them shows an N+1.
                    assignee=self.staff,
                    state=SupportRequest.State.WAITING_ON_CUSTOMER,
                )
                for issue in issues
            ]
        )
        ApiKey.objects.bulk_create(
            [
                ApiKey(
                    tenant=tenant,
                    name="monitoring",
                    key_prefix="sck_test",
                    key_hash=ApiKey.hash_key(f"key-{next(_serial)}"),
                    created_by=member_of[tenant.pk],
                    last_used_at=now,
                )
                for tenant in tenants
            ]
        )
        endpoints = WebhookEndpoint.objects.bulk_create(
            [
                WebhookEndpoint(
                    tenant=tenant, url=f"https://hooks.example/{tenant.slug}", secret_ciphertext="x"
                )
                for tenant in tenants
            ]
        )
        endpoint_of = {endpoint.tenant_id: endpoint for endpoint in endpoints}
        WebhookDelivery.objects.bulk_create(
            [
                WebhookDelivery(
                    endpoint=endpoint_of[row.tenant_id],
                    event="session.finished",
                    payload={"integration": row.pk},
                    state=WebhookDelivery.State.SUCCEEDED,
                    attempts=1,
                    response_code=200,
                    latency_ms=40,
                    created_at=now - timedelta(minutes=i % 300),
                    delivered_at=now - timedelta(minutes=i % 300),
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
                    from_status=Status.ACTIVE,
                    to_status=row.status,
                    actor=member_of[row.tenant_id] if i % 2 else None,
                    session=session,
                    note="5 unsuccessful syncs in a row",
                    created_at=now - timedelta(minutes=i % 300),
                )
                for i, (row, session) in enumerate(zip(rows, finished))
            ]
        )
        ReauthLink.objects.bulk_create(
            [
                ReauthLink(
                    integration=row,
                    token_hash=ReauthLink.hash_token(f"token-{next(_serial)}"),
                    recipient="it@customer.example",
                    created_by=member_of[row.tenant_id],
                    created_at=now - timedelta(hours=1),
                    expires_at=now + timedelta(hours=71),
                )
                for row in rows
            ]
        )
        SeenItem.objects.bulk_create(
            [
                SeenItem(session_id=session.pk, external_id=f"item-{i:07d}")
                for i, session in enumerate(finished)
            ]
        )
        SeenRange.objects.bulk_create(
            [
                SeenRange(session_id=session.pk, item_type="item", low=f"item-{i:07d}", high=f"item-{i:07d}z")
                for i, session in enumerate(finished)
            ]
        )
        PageFingerprint.objects.bulk_create(
            [
                PageFingerprint(
                    integration=row, item_type="item", page_key=f"{next(_serial):064x}", digest="d" * 64,
                    generation="g" * 64, low="item-0000001", high="item-0001000", item_count=1000,
                )
                for row in rows
            ]
        )
        MetricTally.objects.bulk_create(
            [MetricTally(metric="bench_rows", labels=f'{{"n":"{next(_serial)}"}}', count=1) for _row in rows]
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
        # Open vendor-wide incidents (one per connector and code), shown on the dashboard.
        Incident.objects.bulk_create(
            [
                Incident(
                    connector=f"vendor{n}",
                    error_code_id=("VENDOR_UNAVAILABLE", "VENDOR_TIMEOUT", "RATE_LIMITED")[n % 3],
                    opened_at=now - timedelta(hours=1, minutes=n),
                    tenants_affected=len(tenants),
                )
                for n in (next(_serial) for _ in range(max(1, count // 50)))
            ]
        )
        AccountMapping.objects.bulk_create(
            [
                AccountMapping(integration=row, vendor_account_id="acct-1", tenant_account="north")
                for row in rows
            ]
        )
        ErrorCode.objects.bulk_create(
            [
                ErrorCode(
                    code=f"TEST_CODE_{n}",
                    title="A code added by the test",
                    category=ErrorCode.Category.DATA,
                    customer_advice="Nothing.",
                )
                for n in (next(_serial) for _ in range(max(1, count // 4)))
            ]
        )
        Group.objects.bulk_create([Group(name=f"Team {next(_serial)}") for _ in range(max(1, count // 4))])
        self._add_background_tasks(count)
        self._add_login_records(count)
        self._add_audit_records(count)
        self._add_worker_heartbeats(count)
        self.integrations += rows
        if self.focus is None:
            self.focus = rows[0]

    def _add_worker_heartbeats(self, count):
        """Worker processes of both clusters, live and long dead: the dashboard's workers panel sums them up."""
        WorkerHeartbeat.objects.bulk_create(
            [
                WorkerHeartbeat(
                    cluster=("syncconsole", "urgent")[n % 2],
                    host=f"worker-{n}",
                    pid=n,
                    last_beat_at=self.now - timedelta(seconds=(n % 3) * 60),
                )
                for n in (next(_serial) for _ in range(count))
            ]
        )

    def _add_background_tasks(self, count):
        now = self.now
        Schedule.objects.bulk_create(
            [
                Schedule(name=f"test-schedule-{n}", func="integrations.tasks.run_session", next_run=now)
                for n in (next(_serial) for _ in range(count))
            ]
        )
        Task.objects.bulk_create(
            [
                Task(
                    id=uuid.uuid4().hex,
                    name=f"task-{n}",
                    func="integrations.tasks.run_session",
                    started=now,
                    stopped=now,
                    success=bool(i % 2),
                    result="done" if i % 2 else "failed",
                )
                for i, n in enumerate(next(_serial) for _ in range(2 * count))
            ]
        )
        OrmQ.objects.bulk_create([OrmQ(key="syncconsole", payload="not-a-package") for _ in range(count)])

    def _add_audit_records(self, count):
        """The audit trail: sign-ins and staff actions with their actors and tenants."""
        from audit.models import AuditRecord

        tenants = list(Tenant.objects.order_by("pk")[:5])
        AuditRecord.objects.bulk_create(
            [
                AuditRecord(
                    created_at=self.now - timedelta(seconds=n),
                    action=(AuditRecord.Action.LOGIN, AuditRecord.Action.STAFF_ACTION)[n % 2],
                    actor_label=f"user-{n}",
                    tenant=tenants[n % len(tenants)] if tenants else None,
                    address="192.0.2.10",
                    target=f"integration {n}",
                )
                for n in (next(_serial) for _ in range(count))
            ]
        )

    def _add_login_records(self, count):
        """Staff and customer logins as django-axes records them, when it is installed."""
        if not apps.is_installed("axes"):
            return
        from axes.models import AccessAttempt, AccessFailureLog, AccessLog

        seen = dict(user_agent="Mozilla/5.0", ip_address="192.0.2.10", http_accept="text/html")
        names = [f"login-{next(_serial)}" for _ in range(count)]
        AccessAttempt.objects.bulk_create(
            [
                AccessAttempt(
                    username=name,
                    path_info="/admin/login/",
                    get_data="",
                    post_data="",
                    failures_since_start=2,
                    **seen,
                )
                for name in names
            ]
        )
        AccessFailureLog.objects.bulk_create(
            [
                AccessFailureLog(username=name, path_info="/admin/login/", locked_out=False, **seen)
                for name in names
            ]
        )
        AccessLog.objects.bulk_create(
            [
                AccessLog(username=name, path_info="/portal/login/", session_hash="0" * 64, **seen)
                for name in names
            ]
        )

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
                    integration=focus,
                    kind=IntegrationEvent.Kind.SYNC_REQUESTED,
                    actor=self.staff,
                    note="n",
                    created_at=now,
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
        # The integration page's Alerts panel: alerts in every delivery state.
        delivery = (Alert.State.SENT, Alert.State.DIGEST, Alert.State.FAILED, Alert.State.PENDING, Alert.State.HELD)
        Alert.objects.bulk_create(
            [
                Alert(
                    integration=focus,
                    tenant_id=focus.tenant_id,
                    rule=Alert.Rule.STALE,
                    streak=f"focus-{next(_serial)}",
                    state=delivery[n % 5],
                    recipients=["ops@customer.example"],
                    subject="No successful sync for a while",
                    created_at=now - timedelta(minutes=n),
                    sent_at=now if n % 5 == 0 else None,
                    digest_window_ends_at=now + timedelta(minutes=5) if n % 5 == 1 else None,
                    failure=Alert.Failure.NO_RECIPIENTS if n % 5 == 2 else "",
                    last_error="SMTPServerDisconnected: gone" if n % 5 == 3 else "",
                )
                for n in range(grow)
            ]
        )
        # A help request on the focus integration's first issue: more requests on that issue, and a
        # longer conversation (replies and notes by staff, answers by the customer, emails failed or sent).
        self.focus_request = SupportRequest.objects.filter(integration=focus).order_by("pk").first()
        request = self.focus_request
        # The issue page's occurrences over time: the request's issue was first met by the focus
        # integration's oldest session, so the sessions of its range grow with the others.
        oldest = SyncSession.objects.filter(integration=focus).order_by("queued_at").first()
        SyncIssue.objects.filter(pk=request.issue_id).update(first_session=oldest, first_seen_at=oldest.queued_at)
        SupportRequest.objects.bulk_create(
            [
                SupportRequest(integration=focus, issue_id=request.issue_id, user_id=request.user_id, message="Again")
                for _ in range(min(grow, 9))
            ]
        )
        SupportMessage.objects.bulk_create(
            [
                SupportMessage(
                    request=request,
                    kind="note" if n % 3 == 0 else "reply",
                    author=self.staff if n % 3 != 1 else request.user,
                    from_support=n % 3 != 1,
                    body=f"Message {n}",
                    created_at=now - timedelta(minutes=n),
                    emailed_at=now if n % 2 else None,
                    email_error="" if n % 2 else "SMTPServerDisconnected: gone",
                )
                for n in range(grow)
            ]
        )


# Measured as a Support user: the pages support staff live on, with their filters and searches.
PAGES = {
    "dashboard": lambda d: "/admin/",
    "integration changelist": lambda d: "/admin/integrations/integration/",
    "integration changelist, needs attention": lambda d: "/admin/integrations/integration/?attention=yes",
    "integration changelist, by status and connector": lambda d: (
        "/admin/integrations/integration/?status__exact=failing&connector=simulator&o=-5"
    ),
    "integration changelist, search": lambda d: "/admin/integrations/integration/?q=Tenant",
    # 5: the "open issues" column (0 is the action checkbox), 2 the status.
    "integration changelist, by open issues": lambda d: "/admin/integrations/integration/?o=-5",
    "integration changelist, has open issues": lambda d: "/admin/integrations/integration/?has_issues=yes&o=5.-2",
    # The integration page's live part: what its script polls while a session runs.
    "integration progress": lambda d: f"/admin/integrations/integration/{d.focus.pk}/progress/",
    "integration page": lambda d: f"/admin/integrations/integration/{d.focus.pk}/change/",
    "sync issue changelist": lambda d: "/admin/issues/syncissue/",
    "sync issue changelist, one integration's open issues": lambda d: (
        f"/admin/issues/syncissue/?integration__id__exact={d.focus.pk}&state__exact=open"
    ),
    "sync issue changelist, prefix search": lambda d: "/admin/issues/syncissue/?q=c-0000",
    "sync issue page": lambda d: f"/admin/issues/syncissue/{d.focus_request.issue_id}/change/",
    "help request page": lambda d: f"/admin/issues/supportrequest/{d.focus_request.pk}/change/",
    "sync session changelist": lambda d: "/admin/integrations/syncsession/",
    "sync session changelist, by code": lambda d: (
        "/admin/integrations/syncsession/?error_code__code__exact=VENDOR_UNAVAILABLE"
    ),
}

# Measured as a superuser: the changelist of every model registered in the admin, whoever may see it.
CHANGELISTS = {
    f"{model._meta.label} changelist": reverse(
        f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"
    )
    for model in admin.site._registry
}

# Measured as a superuser: the confirmation pages of bulk actions, listing every row they will change
# (all the changelist's rows: "select all" across pages).
ACTION_PAGES = {
    "resolve open issues, confirmation": lambda d: (
        "/admin/issues/syncissue/?state__exact=open",
        {"action": "resolved_issues", "_selected_action": d.focus.issues.filter(state="open").first().pk},
    ),
    "deactivate integrations, confirmation": lambda d: (
        "/admin/integrations/integration/",
        {"action": "bulk_deactivate", "_selected_action": d.focus.pk},
    ),
    "move to quality assurance, form": lambda d: (
        "/admin/integrations/integration/?attention=yes",
        {"action": "bulk_enter_qa", "_selected_action": d.focus.pk},
    ),
}


def rows_listed(response):
    """How many rows the page lists (None for a page that is not a list)."""
    if response.context is None:  # JSON
        return None
    if "cl" in response.context:
        return len(response.context["cl"].result_list)
    if "action_checkbox_name" in response.context:  # a bulk action's confirmation page
        listed = response.context.get("issues", response.context.get("integrations"))
        return len(list(listed))
    if "dashboard" in response.context:
        dashboard = response.context["dashboard"]
        panels = ("attention", "running", "reaped", "alerts", "incidents")
        return sum(len(dashboard[name]) for name in panels) + len(dashboard["requests"].rows)
    return None


def only_a_count_added(small, large):
    """Whether `large` is `small` plus one COUNT query: the count a short first page did without."""
    added = Counter(map(shape, large)) - Counter(map(shape, small))
    removed = Counter(map(shape, small)) - Counter(map(shape, large))
    return not removed and sum(added.values()) == 1 and next(iter(added)).startswith("SELECT COUNT(*)")


def visit(client, url, post=None):
    # The dashboard caches the hours that are over (syncconsole/activity.py): every visit is measured
    # as the first one of the hour, the most it ever costs.
    cache.clear()
    if post is None:
        response, queries = measure(client, url)
    else:
        response, queries = measure(client, url, "post", data={"index": "0", "select_across": "1", **post})
    assert response.status_code == 200, url
    return rows_listed(response), queries


@pytest.fixture(scope="module")
def measured(django_db_setup, django_db_blocker):
    """{page: ((rows, queries) with 5 integrations / 10 issues, (rows, queries) with 500 / 10,000)}.

    Building 10,000 issues is the slow part, so the rows are built once for
    every page, inside a transaction that is rolled back at the end. (The
    tests are marked django_db so that pytest-django sets up the test
    database this fixture writes to.)
    """
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
        support = UserFactory(username="support-q", is_staff=True)
        support.groups.add(Group.objects.get(name="Support"))
        superuser = UserFactory(username="root-q", is_staff=True, is_superuser=True)
        clients = {"support": Client(), "superuser": Client()}
        clients["support"].force_login(support)
        clients["superuser"].force_login(superuser)

        def pages(data):
            """{page: (who, url, POST data or None)}."""
            return {
                **{page: ("support", url(data), None) for page, url in PAGES.items()},
                **{page: ("superuser", url, None) for page, url in CHANGELISTS.items()},
                **{page: ("superuser", *action(data)) for page, action in ACTION_PAGES.items()},
            }

        data = Data(staff=support)
        data.grow(integrations=5, issues=10)
        for page, (user, url, post) in pages(data).items():
            visit(clients[user], url, post)  # warm the per-process caches (content types, ...)
            results[page] = [visit(clients[user], url, post)]

        data.grow(integrations=500, issues=10_000)
        assert Integration.objects.count() == 500
        assert data.focus.issues.count() == 10_000
        for page, (user, url, post) in pages(data).items():
            results[page].append(visit(clients[user], url, post))
        transaction.set_rollback(True)
    return results


@pytest.mark.django_db
@pytest.mark.parametrize("page", [*PAGES, *CHANGELISTS, *ACTION_PAGES])
def test_query_count_does_not_grow_with_rows(measured, page):
    (small_rows, small), (large_rows, large) = measured[page]

    if small_rows is not None:
        # Rows at both sizes, more at the large one: otherwise an N+1 could not show.
        assert 0 < small_rows < large_rows, (page, small_rows, large_rows)
    counted = 1 if only_a_count_added(small, large) else 0
    assert len(large) == len(small) + counted, "\n".join(
        [
            *grown(small, large),
            "",
            "queries with 5 integrations / 10 issues:",
            *small,
            "",
            "with 500 / 10,000:",
            *large,
        ]
    )


@pytest.mark.django_db
def test_the_changelist_by_open_issues_counts_no_issues(measured):
    """The stored count is read and sorted on: no COUNT over the issues, at either size."""
    issues_table = SyncIssue._meta.db_table
    for page in ("integration changelist, by open issues", "integration changelist, has open issues"):
        for rows, queries in measured[page]:
            counting = [sql for sql in queries if "COUNT(" in sql.upper() and issues_table in sql]
            assert not counting, (page, counting)
            assert not [sql for sql in queries if issues_table in sql], (page, "the issues table is read")
