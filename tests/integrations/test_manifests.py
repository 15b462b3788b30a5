"""The vendor manifests: each one loads and validates, and syncs end to end against its simulator profile.

The syncs are real: onboarding creates the integration from the manifest's
connector key, start_sync queues the task on commit, the inline django-q2
broker runs it, and the `rest` connector talks HTTP to the simulator's
profile (integrations/simulator/profiles/) with the manifest's settings. The
counts are the profiles' documented fixed numbers.
"""

import itertools
import json
import os
from pathlib import Path

import pytest
import requests

from integrations.connectors.base import get_connector_class
from integrations.connectors.manifests import ManifestError, load_manifest
from integrations.models import AccountMapping, Integration, SyncedRecord, SyncSession
from integrations.onboarding import create_integration
from integrations.simulator import profiles
from tests.factories import TenantFactory

MANIFESTS = Path(__file__).resolve().parents[2] / "integrations" / "connectors" / "manifests"
live_sync = pytest.mark.django_db(transaction=True)
_labels = itertools.count(1)

State = SyncSession.State


# key -> what the profile's healthy scenario holds and what the integration needs besides its URLs.
VENDORS = {
    "pax8": {
        "items": 523,
        "accounts": 7,
        "credentials": {"client_id": "sim-client", "client_secret": "good-secret"},
        "settings": {},
    },
    "connectwise_manage": {
        "items": 2345,
        "accounts": 12,
        "credentials": {"username": "simco+sim-public", "password": "sim-private"},
        "settings": {"request.headers": {"clientId": "sim-client-id"}},
    },
    "proofpoint_essentials": {
        "items": 137,
        "accounts": 1,
        "credentials": {"username": "admin@simcorp.example", "password": "sim-password"},
        "settings": {},
    },
    "microsoft_graph_mailboxes": {
        "items": 2050,
        "accounts": 1,
        "credentials": {"client_id": "sim-client", "client_secret": "good-secret"},
        "settings": {},
    },
    "hubspot_contacts": {
        "items": 1234,
        "accounts": 1,
        "credentials": {
            "client_id": "sim-client",
            "client_secret": "good-secret",
            "refresh_token": "sim-refresh-token",
        },
        "settings": {},
    },
}
OAUTH = ("pax8", "microsoft_graph_mailboxes", "hubspot_contacts")


def manifest_path(key):
    return MANIFESTS / f"{key}.json"


# -- loading and validating --------------------------------------------------------------


def test_the_folder_holds_exactly_the_five_vendor_manifests():
    assert sorted(path.stem for path in MANIFESTS.glob("*.json")) == sorted(VENDORS)


@pytest.mark.parametrize("key", sorted(VENDORS))
def test_manifest_loads_and_validates(key):
    manifest = load_manifest(manifest_path(key))

    assert manifest.key == key
    assert manifest.label and manifest.item_type and manifest.notes
    assert manifest.documentation and all(url.startswith("https://") for url in manifest.documentation)
    assert manifest.settings["base_url"].startswith("https://")
    assert key in profiles.PROFILES, "every manifest has a simulator profile"


def test_manifest_header_facts():
    kinds = {key: load_manifest(manifest_path(key)).vendor_kind for key in VENDORS}
    lifetimes = {key: load_manifest(manifest_path(key)).token_lifetime_days for key in VENDORS}

    assert kinds == {
        "pax8": "distributor",
        "connectwise_manage": "psa",
        "proofpoint_essentials": "email_security",
        "microsoft_graph_mailboxes": "mailbox",
        "hubspot_contacts": "crm",
    }
    assert lifetimes == {
        "pax8": 90,
        "connectwise_manage": None,
        "proofpoint_essentials": None,
        "microsoft_graph_mailboxes": 180,
        "hubspot_contacts": None,
    }


@pytest.mark.parametrize(
    "key, expected",
    [
        (
            "pax8",
            {
                "auth.type": "oauth2_client_credentials",
                "auth.token_format": "json",
                "pagination.type": "page",
                "pagination.first_page": 0,
                "pagination.size": 200,
                "pagination.total_path": "page.totalElements",
                "items.path": "content",
                "items.account_field": "companyId",
            },
        ),
        (
            "connectwise_manage",
            {
                "auth.type": "basic",
                "pagination.type": "link_header",
                "pagination.size_param": "pageSize",
                "pagination.size": 1000,
                "items.path": "",
                "items.account_field": "company.id",
            },
        ),
        (
            "proofpoint_essentials",
            {
                "auth.type": "headers",
                "auth.headers": {"X-User": "username", "X-Password": "password"},
                "pagination.type": "none",
                "items.path": "users",
                "items.id_field": "primary_email",
            },
        ),
        (
            "microsoft_graph_mailboxes",
            {
                "auth.type": "oauth2_client_credentials",
                "auth.token_format": "form",
                "auth.scope": "https://graph.microsoft.com/.default",
                "pagination.type": "next_url",
                "pagination.next_url_path": "@odata.nextLink",
                "pagination.size_param": "$top",
                "items.path": "value",
            },
        ),
        (
            "hubspot_contacts",
            {
                "auth.type": "oauth2_refresh_token",
                "pagination.type": "cursor",
                "pagination.cursor_param": "after",
                "pagination.cursor_path": "paging.next.after",
                "pagination.size_param": "limit",
                "pagination.size": 100,
                "items.path": "results",
                "rate_limit.remaining_header": "X-HubSpot-RateLimit-Remaining",
            },
        ),
    ],
)
def test_manifest_settings_follow_the_vendor(key, expected):
    settings = load_manifest(manifest_path(key)).settings

    assert {name: settings.get(name) for name in expected} == expected


def test_a_broken_manifest_names_the_setting(tmp_path):
    document = json.loads(manifest_path("pax8").read_text())
    document["settings"]["pagination"]["type"] = "pages"
    broken = tmp_path / "pax8.json"
    broken.write_text(json.dumps(document))

    with pytest.raises(ManifestError) as raised:
        load_manifest(broken)

    assert "pagination.type: must be one of" in str(raised.value)


@pytest.mark.parametrize("key", sorted(VENDORS))
def test_manifest_is_a_connector_key(key):
    connector_class = get_connector_class(key)

    assert connector_class.key == key
    assert connector_class.item_type == load_manifest(manifest_path(key)).item_type


# -- end to end against the profiles -------------------------------------------------------


@pytest.fixture
def vendor_integration(vendor_simulator, error_catalog):
    """vendor_integration(key, scenario) -> (integration, stats()) on a profile account of its own."""

    def make(key, scenario, **overrides):
        account = f"{scenario}.m{os.getpid()}-{next(_labels)}"
        root = profiles.root_url(vendor_simulator.base_url, key, account)
        vendor = VENDORS[key]
        settings = {**profiles.PROFILES[key].urls(root), **vendor["settings"], **overrides}
        integration = create_integration(
            TenantFactory(),
            key,
            f"{key} {account}",
            settings=settings,
            credentials=dict(vendor["credentials"]),
            queue_first_sync=False,
        )

        def stats():
            return requests.get(f"{root}/_control", timeout=10).json()

        return integration, stats

    return make


@pytest.mark.parametrize("key", sorted(VENDORS))
@live_sync
def test_healthy_sync_reads_every_item(vendor_integration, sync, key):
    integration, stats = vendor_integration(key, "healthy")
    expected = VENDORS[key]

    session = sync(integration)

    assert session.state == State.SUCCEEDED, session.error_message
    assert (session.items_seen, session.items_created, session.items_updated) == (expected["items"],) * 2 + (
        0,
    )
    assert session.items_failed == session.items_warnings == 0
    assert SyncedRecord.objects.filter(integration=integration, deleted=False).count() == expected["items"]
    assert AccountMapping.objects.filter(integration=integration).count() == expected["accounts"]
    assert integration.status == Integration.Status.ACTIVE
    counters = stats()["requests"]
    assert counters["answered_429"] == counters["server_errors"] == 0
    if key in OAUTH:
        # Tokens answer two requests: every healthy run needs a second one.
        assert counters["expired_token_answers"] >= 1
        assert counters["tokens_issued"] >= 2


@live_sync
def test_healthy_pax8_sync_knows_the_total_and_the_companies(vendor_integration, sync):
    integration, _ = vendor_integration("pax8", "healthy")

    session = sync(integration)

    assert session.items_total == 523
    records = SyncedRecord.objects.filter(integration=integration)
    by_company = {
        m.vendor_account_id: m.vendor_account_name
        for m in AccountMapping.objects.filter(integration=integration)
    }
    assert "Northwind Traders" in by_company.values()
    assert {r.data["companyId"] for r in records} == set(by_company)


@live_sync
def test_a_second_full_sync_finds_everything_unchanged(vendor_integration, sync):
    integration, _ = vendor_integration("connectwise_manage", "healthy")
    sync(integration)

    session = sync(integration)

    assert session.state == State.SUCCEEDED
    assert (session.items_created, session.items_unchanged, session.items_deleted) == (0, 2345, 0)


# Manifests whose vendor documents remaining-requests headers (HubSpot: Remaining and the window's length).
PACED_BEFORE_429 = {"hubspot_contacts"}


@pytest.mark.parametrize("key", sorted(VENDORS))
@live_sync
def test_rate_limited_sync_waits_as_told(vendor_integration, sync, key):
    integration, stats = vendor_integration(key, "rate-limited")

    session = sync(integration)

    assert session.state == State.SUCCEEDED, session.error_message
    assert session.items_created == VENDORS[key]["items"]
    assert session.rate_limited_waits > 0
    counters = stats()["requests"]
    if key in PACED_BEFORE_429:
        # The vendor says how much is left: the run waits before the budget runs out, and never meets a 429.
        assert counters["answered_429"] == 0
    else:
        assert counters["answered_429"] >= 1
        # Each 429 was waited out, and no request went out before the Retry-After the profile had given ran out.
        assert session.rate_limited_waits == counters["answered_429"]
    assert counters["ignored_limit_429"] == 0


@pytest.mark.parametrize("key", sorted(VENDORS))
@live_sync
def test_expired_credentials_fail_the_session_with_auth_expired(vendor_integration, sync, key):
    integration, _ = vendor_integration(key, "expired")

    session = sync(integration)

    assert session.state == State.FAILED
    assert session.error_code_id == "AUTH_EXPIRED", session.error_message
    assert integration.status == Integration.Status.AUTH_FAILING
    assert not SyncedRecord.objects.filter(integration=integration).exists()


@pytest.mark.parametrize("key", sorted(VENDORS))
@live_sync
def test_server_errors_fail_the_session_as_vendor_unavailable(vendor_integration, sync, key):
    integration, stats = vendor_integration(key, "server-error")

    session = sync(integration)

    assert session.state == State.FAILED
    assert session.error_code_id == "VENDOR_UNAVAILABLE", session.error_message
    assert session.retries > 0
    assert stats()["requests"]["server_errors"] >= 2


@live_sync
def test_hubspot_rotated_refresh_token_is_saved_for_the_next_run(vendor_integration, sync):
    integration, stats = vendor_integration("hubspot_contacts", "rotate")

    first = sync(integration)
    saved = integration.get_credentials()["refresh_token"]
    second = sync(integration)

    assert first.state == State.SUCCEEDED and first.items_created == 1234
    live = stats()
    assert saved != "sim-refresh-token"
    assert second.state == State.SUCCEEDED, second.error_message
    assert second.items_unchanged == 1234
    assert integration.get_credentials()["refresh_token"] == live["refresh_token"]
    assert live["requests"]["refresh_rotations"] >= 2
    assert live["requests"]["stale_refresh_tokens"] == 0
