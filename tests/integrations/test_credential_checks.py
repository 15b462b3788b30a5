"""integrations/credential_checks.py: a username that looks like a shared or admin mailbox warns, never refuses.

The patterns come from SHARED_MAILBOX_PATTERNS; only the `username`
credential is read and no warning repeats a credential. Where credentials
are entered (a re-authentication link, `add_integration`) they are saved
and the warning is shown beside.
"""

import io
import os
from html import unescape

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils.html import strip_tags

from integrations import credential_checks, reauth
from integrations.models import Integration
from integrations.simulator import profiles
from integrations.simulator.profiles import proofpoint as proofpoint_profile
from tests.factories import IntegrationFactory, TenantFactory

DEFAULTS = ["admin@", "administrator@", "info@", "support@", "it@", "office@", "helpdesk@", "noreply@"]


@pytest.mark.parametrize(
    "username, pattern",
    [
        ("admin@acme.example", "admin@"),
        ("ADMIN@Acme.Example", "admin@"),  # case does not matter
        ("  info@acme.example ", "info@"),
        ("it@acme.example", "it@"),
        ("noreply@mail.acme.example", "noreply@"),
    ],
)
def test_a_mailbox_name_pattern_matches_that_mailbox_at_any_domain(username, pattern):
    assert credential_checks.matching_pattern(username, DEFAULTS) == pattern


@pytest.mark.parametrize(
    "username",
    ["jane.doe@acme.example", "sysadmin@acme.example", "admins@acme.example", "admin", "it-ops@acme.example", "", None],
)
def test_a_personal_or_service_account_does_not_match(username):
    assert credential_checks.matching_pattern(username, DEFAULTS) is None


def test_other_patterns_are_shell_style_on_the_whole_username():
    patterns = ["*.shared@acme.example", "svc-?@*"]

    assert credential_checks.matching_pattern("finance.shared@acme.example", patterns) == "*.shared@acme.example"
    assert credential_checks.matching_pattern("svc-1@globex.example", patterns) == "svc-?@*"
    assert credential_checks.matching_pattern("finance.shared@globex.example", patterns) is None


def test_the_patterns_are_read_from_the_setting(settings):
    settings.SHARED_MAILBOX_PATTERNS = ["ops@"]

    assert credential_checks.matching_pattern("ops@acme.example") == "ops@"
    assert credential_checks.matching_pattern("admin@acme.example") is None


def test_the_default_setting_covers_the_usual_shared_mailboxes(settings):
    from syncconsole import settings as project_settings

    for name in ("admin@", "administrator@", "info@", "support@", "it@", "office@", "helpdesk@", "noreply@"):
        assert name in project_settings.SHARED_MAILBOX_PATTERNS


def test_only_the_username_is_read_and_the_warning_names_the_pattern_not_the_value(settings):
    settings.SHARED_MAILBOX_PATTERNS = ["admin@"]

    (found,) = credential_checks.shared_mailboxes({"username": "admin@acme.example", "password": "admin@acme.example"})
    assert (found.field, found.pattern) == ("username", "admin@")
    assert "acme.example" not in found.text()
    assert found.text().endswith("Use a dedicated service account for this integration.")
    # A secret that happens to look like a mailbox is never read.
    assert credential_checks.shared_mailboxes({"api_key": "admin@acme.example", "password": "admin@x"}) == []
    assert credential_checks.shared_mailboxes({}) == []


@pytest.mark.django_db
def test_stored_credentials_are_checked(settings):
    settings.SHARED_MAILBOX_PATTERNS = ["support@"]
    shared = IntegrationFactory(credentials={"username": "support@acme.example", "password": "p"})
    personal = IntegrationFactory(credentials={"username": "jane@acme.example", "password": "p"})
    none = IntegrationFactory()

    assert [s.pattern for s in credential_checks.for_integration(shared)] == ["support@"]
    assert credential_checks.for_integration(personal) == []
    assert credential_checks.for_integration(none) == []


@pytest.mark.django_db
def test_unreadable_credentials_are_no_warning(settings):
    integration = IntegrationFactory()
    Integration.objects.filter(pk=integration.pk).update(credentials_ciphertext="not-a-fernet-token")
    integration.refresh_from_db()

    assert credential_checks.for_integration(integration) == []


@pytest.mark.django_db
def test_add_integration_creates_it_and_warns_on_stderr(error_catalog, settings):
    settings.SHARED_MAILBOX_PATTERNS = ["admin@"]
    tenant = TenantFactory(slug="acme")
    out, err = io.StringIO(), io.StringIO()

    call_command(
        "add_integration",
        "acme",
        "proofpoint_essentials",
        "--name",
        "Proofpoint",
        # Nothing listens there: discovery fails, which does not stop the creation.
        "--setting",
        "base_url=http://127.0.0.1:9/api/v1",
        "--credential",
        "username=admin@acme.example",
        "--credential",
        "password=s3cret",
        "--no-sync",
        stdout=out,
        stderr=err,
    )

    integration = Integration.objects.get(tenant=tenant, name="Proofpoint")
    assert out.getvalue().strip() == str(integration.pk)  # scripts read the id alone
    assert integration.get_credentials() == {"username": "admin@acme.example", "password": "s3cret"}
    assert "Warning: The username looks like a shared mailbox or an admin account (it matches admin@)" in err.getvalue()
    assert "s3cret" not in err.getvalue()


@pytest.mark.django_db(transaction=True)
def test_a_re_authentication_link_saves_and_advises(vendor_simulator, error_catalog, settings):
    settings.SHARED_MAILBOX_PATTERNS = ["admin@"]
    account = f"healthy.t{os.getpid()}-link"
    root = profiles.root_url(vendor_simulator.base_url, "proofpoint_essentials", account)
    integration = IntegrationFactory(connector="proofpoint_essentials", settings=profiles.PROFILES["proofpoint_essentials"].urls(root))
    new = reauth.create_link(integration, recipient="it@globex.example", send=False)
    client = Client()
    assert client.get(f"/reauth/{new.token}/").status_code == 302

    response = client.post(
        "/reauth/continue/", {"username": proofpoint_profile.X_USER, "password": proofpoint_profile.X_PASSWORD}
    )

    assert response.status_code == 200
    integration.refresh_from_db()
    assert integration.get_credentials()["username"] == proofpoint_profile.X_USER
    content = unescape(strip_tags(response.content.decode()))
    assert "Thank you: the new credentials work" in content
    assert "A word of advice: The username looks like a shared mailbox or an admin account (it matches admin@)" in content
    assert proofpoint_profile.X_USER not in content and proofpoint_profile.X_PASSWORD not in content
