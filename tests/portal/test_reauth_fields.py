"""The re-authenticate forms ask for the credentials the integration's auth type needs, and nothing else.

Both forms are checked as a person meets them: the public page a
re-authentication link opens (`/reauth/<token>/`, no login) and the portal's
Re-authenticate page (a tenant admin). The fields come from
`credential_fields_for(settings)`: a `rest` integration's depend on its
`auth.type`, a manifest's on the manifest. Saving checks the credentials
with the live vendor simulator (its ConnectWise profile speaks HTTP Basic).
"""

from html.parser import HTMLParser
from types import SimpleNamespace

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditRecord
from integrations import reauth
from integrations.connectors.base import get_connector_class
from integrations.models import Membership
from integrations.simulator import profiles
from integrations.simulator.profiles import connectwise
from tests.factories import IntegrationFactory, TenantFactory

REST = {"base_url": "https://api.vendor.example/v2", "items.endpoint": "/contacts"}
NOTHING_TO_ENTER = "This integration needs no credentials: there is nothing to enter."

# (connector, settings, {credential field: input type}) as the form must show them.
CASES = {
    "rest basic": ("rest", {**REST, "auth.type": "basic"}, {"username": "text", "password": "password"}),
    "rest oauth2_refresh_token": (
        "rest",
        {**REST, "auth.type": "oauth2_refresh_token"},
        {"client_id": "text", "client_secret": "password", "refresh_token": "password"},
    ),
    "rest none": ("rest", {**REST, "auth.type": "none"}, {}),
    "pax8 manifest": ("pax8", {}, {"client_id": "text", "client_secret": "password"}),
}


class _Forms(HTMLParser):
    """The POST forms of a page: for each, {field name: input type} and the text of its buttons."""

    def __init__(self):
        super().__init__()
        self.forms = []
        self._form = None
        self._in_button = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and attrs.get("method", "").lower() == "post":
            self._form = SimpleNamespace(fields={}, buttons="")
            self.forms.append(self._form)
        elif self._form is not None and tag in ("input", "select", "textarea") and attrs.get("name"):
            self._form.fields[attrs["name"]] = attrs.get("type", tag) if tag == "input" else tag
        elif self._form is not None and tag == "button":
            self._in_button = True

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "button":
            self._in_button = False

    def handle_data(self, data):
        if self._in_button:
            self._form.buttons += data


def credential_inputs(page):
    """{name: type} of the fields of the page's "Check and save" form; None when the page has no such form."""
    parser = _Forms()
    parser.feed(page.content.decode())
    forms = [form for form in parser.forms if "Check and save" in form.buttons]
    assert len(forms) <= 1
    if not forms:
        return None
    return {name: kind for name, kind in forms[0].fields.items() if name != "csrfmiddlewaretoken"}


@pytest.fixture
def acme(member):
    tenant = TenantFactory(name="Acme")
    return SimpleNamespace(tenant=tenant, admin=member(tenant, Membership.Role.ADMIN, username="alice"))


def integration_of(tenant, connector, settings, **fields):
    cleaned, problems = get_connector_class(connector).clean_settings(settings)
    assert problems == []
    return IntegrationFactory(tenant=tenant, connector=connector, settings=cleaned, **fields)


def public_page(integration):
    """The page a re-authentication link opens: the token moves into the session, then the form."""
    link = reauth.create_link(integration, recipient="ada@customer.example", send=False)
    client = Client()
    page = client.get(f"/reauth/{link.token}/", follow=True)
    assert page.status_code == 200
    return client, link, page


def portal_page(client, integration):
    page = client.get(reverse("portal:reauthenticate", args=[integration.pk]))
    assert page.status_code == 200
    return page


# -- which fields ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(CASES))
def test_both_forms_ask_exactly_for_the_credentials_of_the_auth_type(acme, log_in, case):
    connector, settings, expected = CASES[case]
    integration = integration_of(acme.tenant, connector, settings, name=f"Acme {case}")

    _, _, public = public_page(integration)
    portal = portal_page(log_in(acme.admin), integration)

    for page in (public, portal):
        content = page.content.decode()
        if expected:
            assert credential_inputs(page) == expected
            assert NOTHING_TO_ENTER not in content
        else:
            assert credential_inputs(page) is None
            assert NOTHING_TO_ENTER in content
            assert "Enter new" not in content


def test_the_cases_are_the_connectors_declarations():
    """The expectations above are what credential_fields_for says, not a copy that could drift from it."""
    for connector, settings, expected in CASES.values():
        fields = get_connector_class(connector).credential_fields_for(settings)
        assert [f.name for f in fields] == list(expected)


# -- an extra field posted ------------------------------------------------------------------


@pytest.fixture
def connectwise_rest(acme, vendor_simulator, error_catalog):
    """A `rest` integration with HTTP Basic on the simulator's ConnectWise profile, old credentials stored."""
    root = profiles.root_url(vendor_simulator.base_url, "connectwise_manage", "healthy.reauth-fields")
    settings = {
        "base_url": profiles.PROFILES["connectwise_manage"].urls(root)["base_url"],
        "auth.type": "basic",
        "request.headers": {"clientId": connectwise.CLIENT_ID},
        "check.endpoint": "/system/info",
        "items.endpoint": "/company/contacts",
    }
    return integration_of(
        acme.tenant,
        "rest",
        settings,
        name="Acme PSA",
        credentials={"username": "old-user", "password": "old-password"},
    )


GOOD = {"username": connectwise.USERNAME, "password": connectwise.PASSWORD}
EXTRA = {"api_key": "smuggled-key", "refresh_token": "smuggled-token", "is_admin": "yes"}


def stored_fields(integration):
    """The credential field names the audit trail says were changed."""
    (record,) = AuditRecord.objects.filter(
        action=AuditRecord.Action.CREDENTIALS_CHANGED, changes__integration_id=integration.pk
    )
    return record.changes["fields"]


@pytest.mark.django_db
def test_an_extra_field_posted_on_the_public_page_is_ignored_and_never_stored(connectwise_rest):
    integration = connectwise_rest
    client, link, _ = public_page(integration)

    done = client.post(f"/reauth/{link.token}/", {**GOOD, **EXTRA})

    assert done.status_code == 200
    assert "Thank you: the new credentials work" in done.content.decode()
    integration.refresh_from_db()
    assert integration.get_credentials() == GOOD
    assert not any(value in integration.credentials_ciphertext for value in EXTRA.values())
    assert stored_fields(integration) == ["password", "username"]


@pytest.mark.django_db
def test_an_extra_field_posted_on_the_portal_is_ignored_and_never_stored(connectwise_rest, acme, log_in):
    integration = connectwise_rest
    url = reverse("portal:reauthenticate", args=[integration.pk])

    saved = log_in(acme.admin).post(url, {**GOOD, **EXTRA})

    assert (saved.status_code, saved["Location"]) == (302, reverse("portal:general", args=[integration.pk]))
    integration.refresh_from_db()
    assert integration.get_credentials() == GOOD
    assert stored_fields(integration) == ["password", "username"]
