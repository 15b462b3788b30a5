"""The console's "View as customer" (portal/views_as_customer.py): the portal's tabs as the customer sees them, read-only.

Staff who may view integrations see the integration's General and Issues
tabs with the very words the tenant's admin (or a viewer) reads, under a
banner, with no working form, control, script or link out; nobody logs in as
the customer. Each view leaves a timeline event and an audit record. Who is
not staff, staff without the permission, and a deleted integration see
nothing, and nothing is recorded.
"""

from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditRecord
from integrations import services
from integrations.models import Integration, IntegrationEvent, Membership, SyncSession
from tests.admin.conftest import staff_groups, support_user  # noqa: F401
from tests.factories import SyncIssueFactory, SyncSessionFactory, TenantFactory, UserFactory
from tests.portal.conftest import snapshot
from tests.queries import measure, report

Status = Integration.Status
BANNER = "Viewing as the customer sees it — read-only"


class Page(HTMLParser):
    """A page's tags and the text of its <main> element, whitespace collapsed."""

    def __init__(self, html):
        super().__init__()
        self.tags, self._main, self._depth = [], [], 0
        self.feed(html)
        self.main_text = " ".join("".join(self._main).split())

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "main" or self._depth:
            self._depth += tag != "br"

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag):
        if self._depth:
            self._depth -= 1

    def handle_data(self, data):
        if self._depth:
            self._main.append(data)

    def all(self, *tags):
        return [attrs for tag, attrs in self.tags if tag in tags]


@pytest.fixture
def acme(member, integration_in):
    """Acme's failing billing integration with a failed last sync and open issues; alice is its admin."""
    tenant = TenantFactory(name="Acme", slug="acme")
    admin = member(tenant, Membership.Role.ADMIN, username="alice")
    viewer = member(tenant, Membership.Role.VIEWER, username="victor")
    integration = integration_in(tenant, Status.FAILING, name="Acme billing", credentials={"api_key": "k"})
    now = timezone.now()
    last = SyncSessionFactory(
        integration=integration,
        state=SyncSession.State.FAILED,
        error_code_id="VENDOR_UNAVAILABLE",
        error_message="The vendor answered 503 three times.",
        started_at=now - timedelta(minutes=6),
        finished_at=now - timedelta(minutes=5),
        items_seen=42,
    )
    Integration.objects.filter(pk=integration.pk).update(last_session=last)
    issues = [
        SyncIssueFactory(integration=integration, item_label=f"Invoice {n}", message=f"Missing due date on {n}")
        for n in range(3)
    ]
    fields = {"tenant": tenant, "admin": admin, "viewer": viewer, "integration": integration, "issues": issues}
    return type("Acme", (), fields)


def general_url(integration, **query):
    url = reverse("view_as_customer", args=[integration.pk])
    return f"{url}?{'&'.join(f'{k}={v}' for k, v in query.items())}" if query else url


def issues_url(integration):
    return reverse("view_as_customer_issues", args=[integration.pk])


@pytest.fixture
def support(support_user, log_in):  # noqa: F811 (the imported fixture)
    return log_in(support_user)


def views_recorded(integration):
    kind = IntegrationEvent.Kind.VIEWED_AS_CUSTOMER
    return list(IntegrationEvent.objects.filter(integration=integration, kind=kind))


def audit_views(tenant):
    return list(AuditRecord.objects.filter(tenant=tenant, changes__action="view_as_customer"))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("tab", "portal_name", "staff_url"),
    [("general", "portal:general", general_url), ("issues", "portal:issues", issues_url)],
)
def test_staff_see_the_tab_exactly_as_the_tenant_admin_does(acme, support, log_in, tab, portal_name, staff_url):
    customer_page = log_in(acme.admin).get(reverse(portal_name, args=[acme.integration.pk]))
    response = support.get(staff_url(acme.integration))

    assert response.status_code == 200
    content = response.content.decode()
    assert BANNER in content
    seen = Page(content).main_text
    assert "Acme billing" in seen and seen == Page(customer_page.content.decode()).main_text
    if tab == "general":
        for words in ("Acme billing", "The vendor answered 503 three times.", "Sync now", "Schedule", "42 read"):
            assert words in content, words
    else:
        for issue in acme.issues:
            assert issue.item_label in content and issue.message in content


@pytest.mark.django_db
def test_each_view_is_on_the_timeline_and_in_the_audit_trail(acme, support, support_user):  # noqa: F811
    support.get(general_url(acme.integration))
    support.get(issues_url(acme.integration), {"as": "viewer"})

    events = sorted(views_recorded(acme.integration), key=lambda e: e.pk)
    assert [(e.actor, e.note) for e in events] == [
        (support_user, "Viewed the General tab as a tenant admin sees it (read-only)."),
        (support_user, "Viewed the Issues tab as a viewer sees it (read-only)."),
    ]
    records = sorted(audit_views(acme.tenant), key=lambda r: r.pk)
    assert [(r.action, r.actor, r.changes["tab"], r.changes["role"]) for r in records] == [
        (AuditRecord.Action.STAFF_ACTION, support_user, "general", "admin"),
        (AuditRecord.Action.STAFF_ACTION, support_user, "issues", "viewer"),
    ]
    assert records[0].target == "Acme / Acme billing"
    # The console's timeline shows it.
    page = support.get(reverse("admin:integrations_integration_change", args=[acme.integration.pk]))
    assert "Viewed as the customer sees it" in page.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("url", [general_url, issues_url], ids=["general", "issues"])
def test_the_page_offers_no_working_form_script_or_link_out(acme, support, url):
    page = Page(support.get(url(acme.integration)).content.decode())

    forms = page.all("form")
    assert forms, "the tab has forms (sync, schedule, filters, log out): each must be dead"
    assert all("action" not in form and "method" not in form for form in forms)
    controls = page.all("button", "input", "select", "textarea")
    assert controls and all("disabled" in control for control in controls)
    assert not [c for c in controls if c.get("name") == "csrfmiddlewaretoken"]
    assert not page.all("script")
    console = reverse("admin:integrations_integration_change", args=[acme.integration.pk])
    allowed = {general_url(acme.integration), issues_url(acme.integration), console}
    for link in page.all("a"):
        href = link.get("href")
        if href is None:
            assert link["aria-disabled"] == "true"
            continue
        target = urlsplit(href)
        if target.scheme or target.netloc or not target.path:
            continue  # the vendor's site, a mailto, this page's own pager
        assert target.path in allowed, href


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_only_get_is_answered_and_nothing_changes(acme, support, method):
    before = snapshot(acme.tenant)
    response = getattr(support, method)(general_url(acme.integration), {"action": "pause"})
    assert response.status_code == 405
    assert snapshot(acme.tenant) == before
    assert not views_recorded(acme.integration)


@pytest.mark.django_db
def test_as_a_viewer_the_admins_buttons_are_not_there(acme, support, log_in):
    response = support.get(general_url(acme.integration, **{"as": "viewer"}))
    content = response.content.decode()
    assert response.status_code == 200 and BANNER in content and "as a viewer of Acme sees it" in content
    assert "Sync now" not in content and "Pause syncs" not in content
    customer = log_in(acme.viewer).get(reverse("portal:general", args=[acme.integration.pk]))
    assert Page(content).main_text == Page(customer.content.decode()).main_text


@pytest.mark.django_db
def test_an_unknown_role_is_a_400_and_nothing_is_recorded(acme, support):
    response = support.get(general_url(acme.integration, **{"as": "owner"}))
    assert response.status_code == 400
    assert "use admin or viewer" in response.content.decode()
    assert not views_recorded(acme.integration) and not audit_views(acme.tenant)


@pytest.mark.django_db
def test_a_wrong_issue_filter_is_the_customers_400(acme, support):
    response = support.get(issues_url(acme.integration), {"severity": "catastrophic"})
    assert response.status_code == 400
    assert "Unknown severity" in response.content.decode()


@pytest.mark.django_db
def test_a_customer_is_sent_to_the_console_login_and_nothing_is_recorded(acme, log_in):
    for url in (general_url(acme.integration), issues_url(acme.integration)):
        response = log_in(acme.admin).get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))
    assert not views_recorded(acme.integration) and not audit_views(acme.tenant)


@pytest.mark.django_db
def test_staff_without_the_permission_are_refused_and_nothing_is_recorded(acme, log_in, staff_groups):  # noqa: F811
    stranger = UserFactory(username="temp", is_staff=True)
    client = log_in(stranger)
    for url in (general_url(acme.integration), issues_url(acme.integration)):
        response = client.get(url)
        assert response.status_code == 403
        content = response.content.decode()
        assert "integrations.view_integration" in content and "Support" in content
        assert "Acme billing" not in content
    assert not views_recorded(acme.integration) and not audit_views(acme.tenant)
    # The permission is all it takes.
    stranger.user_permissions.add(Permission.objects.get(codename="view_integration"))
    assert log_in(stranger).get(general_url(acme.integration)).status_code == 200


@pytest.mark.django_db
def test_an_integration_the_customer_cannot_see_is_not_found(acme, support, support_user):  # noqa: F811
    services.perform_action(acme.integration.pk, "delete", actor=support_user, note="Customer left.")
    assert support.get(general_url(acme.integration)).status_code == 404
    assert support.get(reverse("view_as_customer", args=[987654])).status_code == 404
    assert not views_recorded(acme.integration)
    page = support.get(reverse("admin:integrations_integration_change", args=[acme.integration.pk]))
    assert "View as customer" not in page.content.decode()


@pytest.mark.django_db
def test_the_integration_page_links_to_it(acme, support):
    page = support.get(reverse("admin:integrations_integration_change", args=[acme.integration.pk]))
    assert f'href="{general_url(acme.integration)}">View as customer</a>' in page.content.decode()


@pytest.mark.django_db
def test_the_tabs_cost_the_same_queries_small_and_large(member, integration_in, log_in, support_user):  # noqa: F811
    from tests.portal.test_query_counts import LARGE, SMALL, Acme

    grown = Acme(member, integration_in)
    client = log_in(support_user)
    pages = {"general": general_url(grown.focus), "issues": issues_url(grown.focus)}
    grown.grow(SMALL)
    for url in pages.values():
        client.get(url)
    small = {name: measure(client, url)[1] for name, url in pages.items()}
    grown.grow(LARGE)
    large = {name: measure(client, url)[1] for name, url in pages.items()}
    counts = {name: len(q) for name, q in small.items()}
    assert {name: len(q) for name, q in large.items()} == counts, report(small, large)
    # The portal's page plus the view's session, permission, tenant and its two records (event, audit).
    assert max(len(q) for q in small.values()) <= 16, {name: len(q) for name, q in small.items()}
