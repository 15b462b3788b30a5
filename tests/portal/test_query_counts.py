"""The portal's pages cost the same number of queries whatever number of rows they list.

Every page is measured at a small size, then again after growing everything
it lists; the counts must be equal. Growing only the issues would leave the
integration list as it was, so an N+1 on it would not show: here the tenant
goes from 3 to 30 integrations, each with a last session (with its error
code when it failed), open issues and, for some, a sync running now. The
focus integration goes from 10 to 10,000 issues and from 3 to 40 sessions;
one of its issues from 2 to 15 help requests, and a conversation on each of five requests from 2 to
15 messages; the tenant from 2 to 25 API
keys, from 2 to 15 webhook endpoints with 3 to 40 deliveries, and from 1 to
4 open vendor incidents (shown on every page); the focus integration's
account mapping from 2 to 30 vendor accounts.

Each list page must show at least one row at the small size and more at the
large one, or an N+1 could not show.
"""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from alerts.models import Alert, Incident, WebhookDelivery, WebhookEndpoint
from audit.models import AuditRecord
from integrations import pagination
from integrations.models import AccountMapping, ApiKey, Integration, Membership, SyncSession
from issues.models import SupportMessage, SupportRequest, SyncIssue
from tests.factories import SyncSessionFactory, TenantFactory
from tests.queries import add_integrations, add_issues, measure, report

Status = Integration.Status
SMALL = {
    "integrations": 3,
    "issues": 10,
    "sessions": 3,
    "help requests": 2,
    "api keys": 2,
    "endpoints": 2,
    "deliveries": 3,
    "incidents": 1,
    "mappings": 2,
    "audit records": 3,
}
LARGE = {
    "integrations": 30,
    "issues": 10_000,
    "sessions": 40,
    "help requests": 15,
    "api keys": 25,
    "endpoints": 15,
    "deliveries": 40,
    "incidents": 4,
    "mappings": 30,
    "audit records": 80,
}


class Acme:
    """A tenant whose portal grows: `grow(size)` adds rows until there are as many as `size` says."""

    def __init__(self, member, integration_in):
        self.make = integration_in
        self.tenant = TenantFactory(name="Acme")
        self.admin = member(self.tenant, Membership.Role.ADMIN, username="alice")
        self.focus = integration_in(self.tenant, Status.WARNINGS, name="Acme address book")
        last = SyncSessionFactory(
            integration=self.focus,
            state=SyncSession.State.FAILED,
            error_code_id="VENDOR_UNAVAILABLE",
            started_at=timezone.now() - timedelta(minutes=10),
            finished_at=timezone.now() - timedelta(minutes=9),
        )
        Integration.objects.filter(pk=self.focus.pk).update(last_session=last)

    def grow(self, size):
        now = timezone.now()
        tenant, focus = self.tenant, self.focus
        listed = Integration.objects.filter(tenant=tenant).count()
        add_integrations(self.make, tenant, size["integrations"] - listed, name="Acme")

        issues = add_issues(focus, size["issues"], now)
        SupportRequest.objects.bulk_create(
            [SupportRequest(integration=focus, issue=issue, user=self.admin, message="Help") for issue in issues[::100]]
        )
        self.help_issue = SyncIssue.objects.filter(integration=focus, state="open").earliest("pk")
        have = SupportRequest.objects.filter(issue=self.help_issue).count()
        SupportRequest.objects.bulk_create(
            [
                SupportRequest(
                    integration=focus, issue=self.help_issue, user=self.admin, message=f"Still broken ({n})"
                )
                for n in range(have, size["help requests"])
            ]
        )

        # A conversation on the latest of them: support's replies and notes, the customer's answers.
        if not hasattr(self, "help_request"):
            self.help_request = SupportRequest.objects.filter(issue=self.help_issue).earliest("pk")
        talking = [self.help_request, *SupportRequest.objects.filter(integration=focus).exclude(pk=self.help_request.pk)[:4]]
        have = self.help_request.messages.count()
        staff = User.objects.filter(is_staff=True).first() or User.objects.create(username="support-agent", is_staff=True)
        SupportMessage.objects.bulk_create(
            [
                SupportMessage(
                    request=request,
                    kind="note" if n % 3 == 0 else "reply",
                    author=self.admin if n % 3 == 1 else staff,
                    from_support=n % 3 != 1,
                    body=f"Message {n}",
                    created_at=now - timedelta(minutes=n),
                )
                for request in talking
                for n in range(have, size["help requests"])
            ]
        )
        have = focus.sessions.count()
        SyncSession.objects.bulk_create(
            [
                SyncSession(
                    integration=focus,
                    state=(SyncSession.State.WARNINGS, SyncSession.State.FAILED)[n % 2],
                    error_code_id=(None, "VENDOR_TIMEOUT")[n % 2],
                    queued_at=now - timedelta(hours=n + 1),
                    started_at=now - timedelta(hours=n + 1),
                    finished_at=now - timedelta(hours=n + 1) + timedelta(minutes=2),
                    items_seen=100 + n,
                )
                for n in range(have, size["sessions"])
            ]
        )
        have = AccountMapping.objects.filter(integration=focus).count()
        AccountMapping.objects.bulk_create(
            [
                AccountMapping(
                    integration=focus,
                    vendor_account_id=f"acct-{n:03d}",
                    vendor_account_name=f"Account {n}",
                    tenant_account=f"north-{n}" if n % 2 else "",
                    ignored=not n % 2,
                )
                for n in range(have, size["mappings"])
            ]
        )
        have = tenant.api_keys.count()
        ApiKey.objects.bulk_create(
            [
                ApiKey(
                    tenant=tenant,
                    name=f"script {n}",
                    key_prefix="sck_test",
                    key_hash=ApiKey.hash_key(f"acme-key-{n}"),
                    created_by=self.admin,
                    last_used_at=now if n % 2 else None,
                    revoked_at=now if n % 3 == 0 else None,
                )
                for n in range(have, size["api keys"])
            ]
        )
        have = tenant.webhooks.count()
        WebhookEndpoint.objects.bulk_create(
            [
                WebhookEndpoint(
                    tenant=tenant,
                    url=f"https://hooks.acme.example/{n}",
                    secret_ciphertext="x",
                    events=["session.finished"] if n % 2 else [],
                    active=bool(n % 4),
                    disabled_reason="" if n % 4 else "Failing for a day.",
                )
                for n in range(have, size["endpoints"])
            ]
        )
        endpoints = list(tenant.webhooks.order_by("pk"))
        have = WebhookDelivery.objects.filter(endpoint__tenant=tenant).count()
        WebhookDelivery.objects.bulk_create(
            [
                WebhookDelivery(
                    endpoint=endpoints[n % len(endpoints)],
                    event="session.finished",
                    payload={"n": n},
                    state=(WebhookDelivery.State.SUCCEEDED, WebhookDelivery.State.FAILED)[n % 2],
                    attempts=1 + n % 3,
                    response_code=(200, 500)[n % 2],
                    latency_ms=30 + n,
                    created_at=now - timedelta(minutes=n),
                )
                for n in range(have, size["deliveries"])
            ]
        )
        # The Activity page: sign-ins of the tenant's people and support's actions, with their actors.
        have = AuditRecord.objects.filter(tenant=tenant).count()
        staff = User.objects.filter(is_staff=True).first() or User.objects.create(username="support-agent", is_staff=True)
        AuditRecord.objects.bulk_create(
            [
                AuditRecord(
                    tenant=tenant,
                    created_at=now - timedelta(minutes=n),
                    action=(AuditRecord.Action.LOGIN, AuditRecord.Action.STAFF_ACTION)[n % 2],
                    actor=(self.admin, staff)[n % 2],
                    actor_label=("admin", "support-agent")[n % 2],
                    address="203.0.113.5",
                    target=f"integration {n}",
                    changes={"message": "Paused."} if n % 2 else {},
                )
                for n in range(have, size["audit records"])
            ]
        )
        # Vendor-wide incidents this tenant was told of: the banner on every page.
        have = Incident.objects.filter(resolved_at=None).count()
        for n in range(have, size["incidents"]):
            incident = Incident.objects.create(
                connector=f"vendor{n}",
                error_code_id="VENDOR_UNAVAILABLE",
                opened_at=now - timedelta(hours=n + 1),
            )
            Alert.objects.create(
                integration=focus,
                tenant=tenant,
                rule=Alert.Rule.INCIDENT,
                streak=f"incident-{incident.pk}",
                incident=incident,
                state=Alert.State.SENT,
                subject="A problem at the vendor",
                created_at=now,
            )
        assert Integration.objects.filter(tenant=tenant).count() == size["integrations"]
        assert SyncIssue.objects.filter(integration=focus).count() == size["issues"]

    def pages(self):
        """{page: (url, a function from the page's context to the length of each list it shows)}."""
        pk = self.focus.pk
        open_issues = SyncIssue.objects.filter(integration=self.focus, state="open").order_by(
            "-last_seen_at", "-pk"
        )
        cursor = pagination.encode(open_issues[1])
        issues = reverse("portal:issues", args=[pk])

        def listed(*names):
            return lambda context: [len(context["incidents"]), *(len(context[name]) for name in names)]

        def nothing(context):
            return None

        return {
            "list": (reverse("portal:list"), listed("cards")),
            "general": (reverse("portal:general", args=[pk]), listed("support_requests")),
            "help request": (
                reverse("portal:support_request", args=[pk, self.help_request.pk]),
                lambda context: [len(context["incidents"]), len(context["support_request"].thread)],
            ),
            "contact support": (reverse("portal:contact_support", args=[pk]), listed()),
            "progress": (reverse("portal:progress", args=[pk]), nothing),
            "issues": (issues, listed("issues")),
            "issues, all states": (f"{issues}?state=all", listed("issues")),
            "issues, page 2": (f"{issues}?after={cursor}", listed("issues")),
            "issues, filtered": (
                f"{issues}?code=ITEM_MISSING_FIELD&category=data&severity=warning&state=all&q=Item",
                listed("issues"),
            ),
            "help requests": (reverse("portal:help", args=[pk, self.help_issue.pk]), listed("requests")),
            "mapping": (
                reverse("portal:mapping", args=[pk]),
                lambda context: [len(context["incidents"]), len(context["form"].mappings)],
            ),
            "api keys": (reverse("portal:api_keys"), listed("keys")),
            "webhooks": (reverse("portal:webhooks"), listed("endpoints", "deliveries")),
            "activity": (reverse("portal:activity"), listed("records")),
        }


def visit(client, url, rows):
    response, queries = measure(client, url)
    assert response.status_code == 200, (url, response.status_code)
    return (None if response.context is None else rows(response.context)), queries


@pytest.mark.django_db
def test_portal_pages_cost_the_same_small_and_large(member, log_in, integration_in):
    acme = Acme(member, integration_in)
    client = log_in(acme.admin)

    acme.grow(SMALL)
    for url, _ in acme.pages().values():  # warm caches (content types, sessions) before counting
        client.get(url)
    small = {page: visit(client, url, rows) for page, (url, rows) in acme.pages().items()}

    acme.grow(LARGE)
    large = {page: visit(client, url, rows) for page, (url, rows) in acme.pages().items()}

    for page, (rows, _) in small.items():
        if rows is not None:
            # Rows on every list at both sizes, more at the large one: otherwise an N+1 could not show.
            assert all(0 < a < b for a, b in zip(rows, large[page][0])), (page, rows, large[page][0])
    small_queries = {page: queries for page, (_, queries) in small.items()}
    large_queries = {page: queries for page, (_, queries) in large.items()}
    assert {page: len(q) for page, q in large_queries.items()} == {
        page: len(q) for page, q in small_queries.items()
    }, report(small_queries, large_queries)
    # Bounded, too: a handful of queries for each page.
    assert max(len(q) for q in small_queries.values()) <= 15, {
        page: len(q) for page, q in small_queries.items()
    }
