"""The integration page's advice for support (integrations/advice.py) and the shared-mailbox check."""

import html
import re

import pytest
from django.utils import timezone
from django.utils.html import strip_tags

from integrations.models import Integration, SyncSession
from tests.factories import IntegrationFactory, SyncSessionFactory

Status = Integration.Status
pytestmark = pytest.mark.django_db


def page(client, integration):
    response = client.get(f"/admin/integrations/integration/{integration.pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


def advice_text(content, key):
    match = re.search(rf'<div class="sc-advice" id="sc-advice-{key}">(.*?)</div>', content, re.DOTALL)
    return " ".join(html.unescape(strip_tags(match.group(1))).split()) if match else None


def checks_text(content):
    match = re.search(r'<div class="sc-panel" id="sc-checks">(.*?)</div>', content, re.DOTALL)
    return " ".join(html.unescape(strip_tags(match.group(1))).split())


def unknown(**fields):
    integration = IntegrationFactory(status=Status.UNKNOWN, status_changed_at=timezone.now(), **fields)
    session = SyncSessionFactory(
        integration=integration,
        state=SyncSession.State.UNKNOWN,
        error_code_id="SYNC_LEASE_LOST",
        started_at=timezone.now(),
        finished_at=timezone.now(),
    )
    Integration.objects.filter(pk=integration.pk).update(last_session=session)
    return integration


def test_unknown_shows_support_the_first_steps_inside_why_this_status(support_client, error_catalog):
    content = page(support_client, unknown(credentials={"api_key": "k"}))

    steps = advice_text(content, "unknown-first-steps")
    assert steps.startswith("First steps (runbook: unknown outcome)")
    for words in (
        "Force a sync (Sync now)",
        "send a re-authentication link",
        "Check the account mapping",
        "wait for them to drain before escalating",
    ):
        assert words in steps
    why = content[content.index('id="sc-why"') : content.index('id="sc-checks"')]
    assert 'id="sc-advice-unknown-first-steps"' in why
    # The catalog's "nothing to do" is not passed on as what the customer can do.
    assert "Nothing to do on your side" not in html.unescape(content)
    assert "the first steps under Why this status" in html.unescape(content)


def test_a_failing_psa_shows_support_the_psa_checklist(support_client, error_catalog):
    integration = IntegrationFactory(connector="connectwise_manage", status=Status.FAILING, status_changed_at=timezone.now())

    content = page(support_client, integration)

    checklist = advice_text(content, "psa")
    assert checklist.startswith("PSA checklist")
    for words in ("API member's security role", "PSA migration", "full sync"):
        assert words in checklist
    assert advice_text(content, "unknown-first-steps") is None


def test_an_active_integration_shows_no_advice(support_client, error_catalog):
    content = page(support_client, IntegrationFactory(status=Status.ACTIVE, status_changed_at=timezone.now()))

    assert 'class="sc-advice"' not in content


def test_the_checks_warn_about_a_shared_mailbox_from_the_setting_and_show_no_credential(
    support_client, error_catalog, settings
):
    secret = "pa55-W0rd-never-shown"
    integration = IntegrationFactory(
        connector="proofpoint_essentials",
        status=Status.ACTIVE,
        status_changed_at=timezone.now(),
        credentials={"username": "Helpdesk@Globex.example", "password": secret},
    )

    settings.SHARED_MAILBOX_PATTERNS = ["helpdesk@"]
    content = page(support_client, integration)
    assert "The username looks like a shared mailbox or an admin account (it matches helpdesk@)" in checks_text(content)
    assert 'class="sc-check-warn"' in content
    assert "Helpdesk@Globex.example".lower() not in content.lower() and secret not in content

    settings.SHARED_MAILBOX_PATTERNS = ["admin@"]
    assert "shared mailbox" not in checks_text(page(support_client, integration))
