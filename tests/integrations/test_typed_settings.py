"""Typed connector settings at the command line: `add_integration` and `manage.py connectors`.

Settings arrive as strings and are stored typed (a boolean is False, a list
is a list); unknown keys and ill-typed values stop the command, naming the
key; the credentials asked for follow the settings (a REST vendor's auth type).
"""

import socket
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from integrations.connectors.base import connector_keys, get_connector_class
from integrations.connectors.rest import options
from integrations.models import Integration
from tests.factories import TenantFactory

pytestmark = pytest.mark.django_db

REST = ("base_url=https://api.vendor.example/v2", "items.endpoint=/contacts")


def add(connector, *, settings=(), credentials=()):
    """Run add_integration (no first sync); the new integration."""
    tenant = TenantFactory()
    arguments = [tenant.slug, connector, "--name", "Typed", "--no-sync"]
    for pair in settings:
        arguments += ["--setting", pair]
    for pair in credentials:
        arguments += ["--credential", pair]
    out = StringIO()
    call_command("add_integration", *arguments, stdout=out)
    return Integration.objects.get(pk=int(out.getvalue()))


def closed_port():
    """A loopback port nothing listens on: discovery at creation fails at once (and creation goes on)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_boolean_is_stored_as_a_boolean(error_catalog):
    integration = add(
        "carddav",
        settings=["mark_source_items=false", "page_size=50"],
        credentials=[f"url=http://127.0.0.1:{closed_port()}/", "username=ann", "password=secret"],
    )

    assert integration.settings["mark_source_items"] is False
    assert integration.settings["page_size"] == 50
    integration.refresh_from_db()
    assert integration.settings == {"mark_source_items": False, "page_size": 50}


@pytest.mark.parametrize(
    "pair, stored",
    [
        ("rules.required_fields=name", ["name"]),
        ("rules.required_fields=name, email", ["name", "email"]),
        ('rules.required_fields=["name", "company.id"]', ["name", "company.id"]),
        (
            'rules.checks=[{"field": "status", "one_of": ["active", "archived"]}]',
            [{"field": "status", "one_of": ["active", "archived"]}],
        ),
    ],
)
def test_lists_by_commas_or_json(error_catalog, pair, stored):
    integration = add("rest", settings=[*REST, pair])

    integration.refresh_from_db()
    assert integration.settings[pair.partition("=")[0]] == stored


def test_objects_and_integers_are_typed(error_catalog):
    integration = add("rest", settings=[*REST, 'request.headers={"X-Tenant": "acme"}', "pagination.size=250"])

    integration.refresh_from_db()
    assert integration.settings["request.headers"] == {"X-Tenant": "acme"}
    assert integration.settings["pagination.size"] == 250


@pytest.mark.parametrize(
    "pair, words",
    [
        ("pagination.sise=10", "Unknown setting 'pagination.sise' for connector rest"),
        ("pagination.size=ten", "pagination.size: must be a whole number, got 'ten'"),
        ("pagination.size=0", "pagination.size: must be at least 1, got 0"),
        (
            "pagination.type=pages",
            "pagination.type: must be one of none, page, offset, cursor, next_url, link_header",
        ),
        ("request.headers=X-Tenant: acme", "request.headers: is not a JSON object"),
        ('rules.checks=[{"field": "status"}]', 'rules.checks[0]: needs exactly one of "one_of"'),
    ],
)
def test_unknown_keys_and_ill_typed_values_stop_the_command_naming_the_key(error_catalog, pair, words):
    with pytest.raises(CommandError) as raised:
        add("rest", settings=[*REST, pair])

    assert words in str(raised.value)
    assert not Integration.objects.exists()


def test_a_bad_boolean_names_its_key(error_catalog):
    with pytest.raises(CommandError, match="mark_source_items: must be true or false"):
        add("carddav", settings=["mark_source_items=perhaps"], credentials=["url=https://dav.example.com/"])


def test_a_rest_integration_without_authentication_needs_no_credential(error_catalog):
    integration = add("rest", settings=[*REST, "auth.type=none"])

    assert not integration.has_credentials
    assert not get_connector_class("rest").needs_credentials(integration.settings)


def test_api_key_header_refuses_a_missing_api_key_naming_it(error_catalog):
    with pytest.raises(CommandError) as raised:
        add("rest", settings=[*REST, "auth.type=api_key_header"])

    assert "Credential 'api_key' is required" in str(raised.value)
    assert not Integration.objects.exists()

    integration = add("rest", settings=[*REST, "auth.type=api_key_header"], credentials=["api_key=k-123"])
    assert integration.get_credentials() == {"api_key": "k-123"}


def test_a_credential_the_auth_type_does_not_use_is_refused(error_catalog):
    with pytest.raises(CommandError, match="Unknown credential 'password' for connector rest"):
        add("rest", settings=[*REST, "auth.type=bearer"], credentials=["api_key=k", "password=p"])


def test_headers_auth_asks_for_the_credentials_its_headers_name(error_catalog):
    settings = [*REST, "auth.type=headers", 'auth.headers={"X-Account": "account_id", "X-Secret": "secret"}']
    with pytest.raises(CommandError) as raised:
        add("rest", settings=settings, credentials=["account_id=acme"])
    assert "Credential 'secret' is required" in str(raised.value)

    integration = add("rest", settings=settings, credentials=["account_id=acme", "secret=s3"])
    assert integration.get_credentials() == {"account_id": "acme", "secret": "s3"}


# -- manage.py connectors ---------------------------------------------------------------------


def run_connectors(*args):
    out = StringIO()
    call_command("connectors", *args, stdout=out)
    return out.getvalue()


def test_connectors_lists_every_connector():
    lines = run_connectors().splitlines()

    listed = [line.split()[0] for line in lines if line.strip() and not line.startswith("Details")]
    assert listed == connector_keys()
    assert {"rest", "carddav", "simulator"} <= set(listed)


def described(output):
    """{setting name: (first line, its help as one text)} of `manage.py connectors KEY`."""
    blocks, name = {}, None
    for line in output.splitlines():
        if line.startswith("  ") and not line.startswith("   ") and " (" in line:
            name = line.split()[0]
            blocks[name] = [line, ""]
        elif line.startswith("      ") and name:
            blocks[name][1] += line.strip() + " "
        else:
            name = None
    return blocks


def squeeze(text):
    return "".join(text.split())


def test_connectors_rest_prints_every_setting_with_its_help():
    blocks = described(run_connectors("rest"))

    for spec in options.REST_FIELDS:
        assert spec.name in blocks, f"{spec.name} is not listed"
        first, help_text = blocks[spec.name]
        assert f"default: {spec.describe_default()}" in first
        # Wrapped at 96 columns; compared without the line breaks.
        assert squeeze(help_text) == squeeze(f"{spec.label}: {spec.help}" if spec.help else spec.label), (
            spec.name
        )
    assert "(integer 1..10000) default: 100" in blocks["pagination.size"][0]
    assert "(string required)" not in blocks["base_url"][0]
    assert "(url required)" in blocks["base_url"][0]


def test_connectors_with_an_unknown_key_says_which_exist():
    with pytest.raises(CommandError, match="No connector is registered under 'nope'; known: .*rest"):
        run_connectors("nope")
