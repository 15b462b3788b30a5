"""The General tab's advice (integrations/advice.py), its support contact, and the shared-mailbox warning.

An unknown outcome shows the runbook's first steps instead of the catalog's
"nothing to do on your side"; a PSA in trouble shows its checklist; the
support contact comes from SUPPORT_EMAIL and SUPPORT_URL; re-authenticating
with a shared mailbox saves the credentials and warns.
"""

import os
import re
from datetime import timedelta
from html import unescape
from types import SimpleNamespace

import pytest
from django.urls import reverse
from django.utils import timezone

from integrations.models import Integration, Membership, SyncSession
from integrations.onboarding import create_integration
from integrations.simulator import profiles
from integrations.simulator.profiles import proofpoint as proofpoint_profile
from integrations.sync import reaper
from integrations.sync.runner import claim
from integrations.sync.starting import start_sync
from issues.models import ErrorCode
from tests.factories import IntegrationFactory, SyncSessionFactory, TenantFactory

Status = Integration.Status
live = pytest.mark.django_db(transaction=True)


def text_of(html):
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()


def plain(html):
    return unescape(re.sub(r"<[^>]+>", "", html))


def advice_block(content, key):
    match = re.search(rf'<div class="advice" id="advice-{key}">(.*?)</div>', content, re.DOTALL)
    return match.group(1) if match else None


@pytest.fixture
def acme(member):
    tenant = TenantFactory(name="Acme")
    return SimpleNamespace(
        tenant=tenant,
        admin=member(tenant, Membership.Role.ADMIN, username="alice"),
        viewer=member(tenant, Membership.Role.VIEWER, username="victor"),
    )


def general(client, integration):
    response = client.get(reverse("portal:general", args=[integration.pk]))
    assert response.status_code == 200
    return response.content.decode()


@live
def test_an_unknown_outcome_shows_the_first_steps_not_nothing_to_do(acme, log_in, make_integration, sync):
    integration = make_integration("healthy", tenant=acme.tenant, name="Pax8 billing")
    sync(integration)
    # A worker that claimed a session and vanished: the reaper ends it as unknown.
    session = start_sync(integration, trigger=SyncSession.Trigger.SCHEDULE, enqueue=False)
    claim(session.pk, "gone-host:1", timezone.now() - timedelta(minutes=10))
    reaper.reap()
    integration.refresh_from_db()
    assert (integration.status, integration.last_session.error_code_id) == (Status.UNKNOWN, "SYNC_LEASE_LOST")
    catalog = ErrorCode.objects.get(code="SYNC_LEASE_LOST").customer_advice
    assert "run a sync now" in catalog  # the catalog gives the first steps too (issues 0008)

    content = general(log_in(acme.admin), integration)

    steps = advice_block(content, "unknown-first-steps")
    assert steps is not None
    assert text_of(steps).startswith("What you can do now Run a sync now.")
    assert len(re.findall(r"<li>", steps)) == 4
    for words in ("Re-authenticate: this integration signs in with a token or key", "account mapping", "busy window"):
        assert words in text_of(steps)
    assert reverse("portal:mapping", args=[integration.pk]) in steps
    assert reverse("portal:reauthenticate", args=[integration.pk]) in steps
    assert "Nothing to do on your side" not in unescape(content)
    assert "SYNC_LEASE_LOST" in content  # the error itself is still shown


@pytest.mark.django_db
def test_a_viewer_reads_the_steps_without_the_admins_link(acme, log_in, error_catalog):
    integration = IntegrationFactory(
        tenant=acme.tenant, status=Status.UNKNOWN, status_changed_at=timezone.now(), credentials={"api_key": "k"}
    )

    steps = advice_block(general(log_in(acme.viewer), integration), "unknown-first-steps")

    assert "Re-authenticate: this integration signs in" in text_of(steps)
    assert reverse("portal:reauthenticate", args=[integration.pk]) not in steps
    assert reverse("portal:mapping", args=[integration.pk]) in steps


@pytest.mark.django_db
def test_a_failing_psa_shows_the_psa_checklist_and_a_healthy_one_does_not(acme, log_in, error_catalog):
    now = timezone.now()
    failing = IntegrationFactory(
        tenant=acme.tenant, connector="connectwise_manage", name="ConnectWise", status=Status.FAILING, status_changed_at=now
    )
    healthy = IntegrationFactory(
        tenant=acme.tenant, connector="connectwise_manage", name="ConnectWise 2", status=Status.ACTIVE, status_changed_at=now
    )
    SyncSessionFactory(integration=failing, state=SyncSession.State.FAILED, error_code_id="VENDOR_UNAVAILABLE")
    client = log_in(acme.admin)

    checklist = advice_block(general(client, failing), "psa")
    assert checklist is not None
    said = text_of(checklist)
    assert said.startswith("For a PSA")
    for words in ("permissions of the API user", "PSA migration or upgrade", "run a full sync"):
        assert words in said
    assert advice_block(general(client, failing), "unknown-first-steps") is None
    assert advice_block(general(client, healthy), "psa") is None


@pytest.mark.django_db
def test_the_support_contact_comes_from_the_settings(acme, log_in, error_catalog, settings):
    integration = IntegrationFactory(tenant=acme.tenant, status=Status.ACTIVE, status_changed_at=timezone.now())
    settings.SUPPORT_EMAIL = "help@syncconsole.example"
    settings.SUPPORT_URL = ""
    client = log_in(acme.viewer)

    contact = re.search(r'<p class="muted" id="support-contact">(.*?)</p>', general(client, integration)).group(1)
    assert 'href="mailto:help@syncconsole.example"' in contact
    assert plain(contact) == "Need a hand? Our support team answers at help@syncconsole.example."

    settings.SUPPORT_URL = "https://help.syncconsole.example/"
    contact = re.search(r'<p class="muted" id="support-contact">(.*?)</p>', general(client, integration)).group(1)
    assert 'href="https://help.syncconsole.example/"' in contact
    assert plain(contact).endswith(
        "answers at help@syncconsole.example; help and guides at https://help.syncconsole.example/."
    )


# -- the shared-mailbox warning where credentials are entered ----------------------------------------


@pytest.fixture
def proofpoint(acme, vendor_simulator, error_catalog):
    """A Proofpoint Essentials integration on the simulator's profile, whose API user is admin@ its domain."""
    account = f"healthy.t{os.getpid()}-advice"
    root = profiles.root_url(vendor_simulator.base_url, "proofpoint_essentials", account)
    return create_integration(
        acme.tenant,
        "proofpoint_essentials",
        "Proofpoint users",
        settings=profiles.PROFILES["proofpoint_essentials"].urls(root),
        credentials={"username": proofpoint_profile.X_USER, "password": proofpoint_profile.X_PASSWORD},
        queue_first_sync=False,
    )


def reauthenticate(client, integration):
    return client.post(
        reverse("portal:reauthenticate", args=[integration.pk]),
        {"username": proofpoint_profile.X_USER, "password": proofpoint_profile.X_PASSWORD},
        follow=True,
    )


def warnings_of(response):
    return [str(m) for m in response.context["messages"] if m.level_tag == "warning"]


@live
def test_re_authenticating_with_a_shared_mailbox_saves_and_warns(acme, log_in, proofpoint, settings):
    """A warning, never a refusal: the vendor accepted the credentials, so they are saved; only the pattern shows."""
    assert proofpoint_profile.X_USER.startswith("admin@")
    settings.SHARED_MAILBOX_PATTERNS = ["noreply@", "admin@"]
    Integration.objects.filter(pk=proofpoint.pk).update(credentials_ciphertext="", credentials_set_at=None)
    client = log_in(acme.admin)

    response = reauthenticate(client, proofpoint)

    proofpoint.refresh_from_db()
    assert proofpoint.get_credentials() == {
        "username": proofpoint_profile.X_USER,
        "password": proofpoint_profile.X_PASSWORD,
    }
    assert warnings_of(response) == [
        "The username looks like a shared mailbox or an admin account (it matches admin@): "
        "whoever else uses it may change its password or its sign-in rules, and the sync stops. "
        "Use a dedicated service account for this integration."
    ]
    content = response.content.decode()
    assert proofpoint_profile.X_USER not in content and proofpoint_profile.X_PASSWORD not in content


@live
def test_the_patterns_are_the_settings(acme, log_in, proofpoint, settings):
    client = log_in(acme.admin)

    settings.SHARED_MAILBOX_PATTERNS = ["billing@", "it@"]
    assert warnings_of(reauthenticate(client, proofpoint)) == []

    domain = proofpoint_profile.X_USER.split("@")[1]
    settings.SHARED_MAILBOX_PATTERNS = [f"*@{domain.upper()}"]
    (warning,) = warnings_of(reauthenticate(client, proofpoint))
    assert f"(it matches *@{domain.upper()})" in warning
