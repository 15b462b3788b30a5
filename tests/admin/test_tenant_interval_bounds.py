"""The sync intervals a tenant's admins may choose (Tenant.min/max_sync_interval_minutes), edited in the tenant's console page.

The form is posted as the browser sends it (every field and inline as the
page rendered them), changing only the bounds: valid bounds are saved and
the portal offers them; a shortest interval longer than the longest is
refused on the page and nothing is saved.
"""

from html.parser import HTMLParser

import pytest
from django.test import Client
from django.urls import reverse

from integrations.models import Membership, Tenant
from tests.factories import IntegrationFactory, MembershipFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db


class FormFields(HTMLParser):
    """The values the browser would post for the form with id `form_id`."""

    def __init__(self, html, form_id):
        super().__init__()
        self.form_id, self.inside, self.data = form_id, False, {}
        self._select = self._textarea = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.inside = attrs.get("id") == self.form_id
        if not self.inside or "disabled" in attrs:
            return
        name = attrs.get("name")
        if tag == "input" and name and attrs.get("type") not in ("submit", "button", "file"):
            if attrs.get("type") in ("checkbox", "radio"):
                if "checked" in attrs:
                    self.data[name] = attrs.get("value", "on")
            else:
                self.data[name] = attrs.get("value") or ""
        elif tag == "select" and name:
            self._select = name
            self.data.setdefault(name, "")
        elif tag == "option" and self._select and "selected" in attrs:
            self.data[self._select] = attrs.get("value", "")
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = ""

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea] += data.lstrip("\n") if not self.data[self._textarea] else data


@pytest.fixture
def root():
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def acme():
    tenant = TenantFactory(name="Acme", slug="acme", alert_emails="ops@acme.example")
    MembershipFactory(user=UserFactory(username="alice"), tenant=tenant, role=Membership.Role.ADMIN)
    IntegrationFactory(tenant=tenant, name="Acme billing")
    return tenant


def post_bounds(root, tenant, low, high):
    url = reverse("admin:integrations_tenant_change", args=[tenant.pk])
    page = root.get(url)
    data = FormFields(page.content.decode(), "tenant_form").data
    assert data["min_sync_interval_minutes"] == "15" and data["max_sync_interval_minutes"] == "1440"  # the defaults
    data.update(min_sync_interval_minutes=str(low), max_sync_interval_minutes=str(high))
    return root.post(url, data)


def test_staff_set_a_tenants_bounds(root, acme):
    response = post_bounds(root, acme, 30, 360)

    assert response.status_code == 302, response.content.decode()[:2000]
    acme.refresh_from_db()
    assert (acme.min_sync_interval_minutes, acme.max_sync_interval_minutes) == (30, 360)
    assert acme.alert_emails == "ops@acme.example"  # the rest of the form as it was


@pytest.mark.parametrize(
    ("low", "high", "says"), [(120, 60, "is shorter than the shortest"), (0, 60, "must be at least 1 minute")]
)
def test_bounds_that_cannot_hold_are_refused_on_the_page(root, acme, low, high, says):
    response = post_bounds(root, acme, low, high)

    assert response.status_code == 200  # the form again, with the error
    content = response.content.decode()
    assert "errornote" in content and says in content
    bounds = Tenant.objects.values_list("min_sync_interval_minutes", "max_sync_interval_minutes").get(pk=acme.pk)
    assert bounds == (15, 1440)
