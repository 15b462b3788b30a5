"""seed_demo: every status, reached through real syncs, one integration per vendor manifest, and idempotent."""

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.http import HttpRequest
from django.test import Client

from integrations import reauth
from integrations.management.commands.seed_demo import INTEGRATIONS, Command
from integrations.models import AccountMapping, Integration, IntegrationEvent, Membership, SyncSession, Tenant
from integrations.simulator.scenarios import GOOD_KEY

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

MANIFESTS = Path(__file__).resolve().parents[2] / "integrations" / "connectors" / "manifests"
SIMULATOR_INTEGRATIONS = 13
# name -> (tenant, manifest key, items and vendor accounts in the profile's healthy scenario)
MANIFEST_INTEGRATIONS = {
    "Pax8 subscriptions": ("acme", "pax8", 523, 7),
    "ConnectWise PSA contacts": ("acme", "connectwise_manage", 2345, 12),
    "Microsoft 365 mailboxes": ("acme", "microsoft_graph_mailboxes", 2050, 1),
    "Proofpoint Essentials users": ("globex", "proofpoint_essentials", 137, 1),
    "HubSpot CRM contacts": ("globex", "hubspot_contacts", 1234, 1),
}


def test_seed_demo_covers_every_status_and_is_idempotent(vendor_simulator, client):
    call_command("seed_demo", "--simulator-url", vendor_simulator.base_url, stdout=open("/dev/null", "w"))
    statuses = set(Integration.objects.values_list("status", flat=True))
    assert statuses == set(Integration.Status.values)
    assert Tenant.objects.filter(environment="development").exists()
    assert Tenant.objects.count() == 3
    assert Membership.objects.get(user__username="customer").role == "admin"

    # Real syncs: sessions with HTTP requests, records, and the events the machine wrote.
    assert SyncSession.objects.filter(http_requests__gt=0).count() >= 10
    assert Integration.objects.get(name="Pax8").records.count() == 120
    assert Integration.objects.get(name="Ingram Micro").last_session.error_code_id == "AUTH_EXPIRED"
    assert Integration.objects.get(name="HubSpot").last_session.error_code_id == "SYNC_LEASE_LOST"
    assert IntegrationEvent.objects.filter(kind="status_changed").count() >= 12

    # One integration per shipped vendor manifest, on its simulator profile, active after one full sync.
    assert Integration.objects.count() == SIMULATOR_INTEGRATIONS + len(MANIFEST_INTEGRATIONS)
    assert Integration.objects.filter(connector="simulator").count() == SIMULATOR_INTEGRATIONS
    assert sorted(key for _, key, _, _ in MANIFEST_INTEGRATIONS.values()) == sorted(
        path.stem for path in MANIFESTS.glob("*.json")
    )
    for name, (slug, key, items, accounts) in MANIFEST_INTEGRATIONS.items():
        integration = Integration.objects.get(name=name)
        assert (integration.tenant.slug, integration.connector) == (slug, key)
        root = f"{vendor_simulator.base_url}/profiles/{key}/healthy.demo-{slug}"
        assert f"{integration.settings['base_url']}/".startswith(f"{root}/")
        assert integration.status == Integration.Status.ACTIVE, name
        (session,) = SyncSession.objects.filter(integration=integration)
        assert (session.kind, session.state) == (SyncSession.Kind.FULL, SyncSession.State.SUCCEEDED)
        assert (session.items_seen, session.items_created, session.items_warnings) == (items, items, 0)
        assert integration.records.filter(deleted=False).count() == items
        assert AccountMapping.objects.filter(integration=integration).count() == accounts

    counts = (Integration.objects.count(), SyncSession.objects.count(), get_user_model().objects.count())
    call_command("seed_demo", "--simulator-url", vendor_simulator.base_url, stdout=open("/dev/null", "w"))
    assert (Integration.objects.count(), SyncSession.objects.count(), get_user_model().objects.count()) == counts

    assert client.login(request=HttpRequest(), username="admin", password="admin")
    response = client.get("/admin/integrations/integration/")
    assert response.status_code == 200
    for label in Integration.Status.labels:
        assert label in response.content.decode()


def test_seed_demo_says_clearly_when_the_simulator_is_not_running():
    with pytest.raises(CommandError, match="vendor simulator does not answer"):
        call_command("seed_demo", "--simulator-url", "http://127.0.0.1:9")


@pytest.mark.django_db(transaction=True)
def test_good_key_fixes_each_demo_integration_failing_to_sign_in(vendor_simulator, error_catalog):
    """The README's key: re-authenticating with good-key through a link makes each of them active again."""
    command = Command(stdout=open("/dev/null", "w"))
    command.simulator = vendor_simulator.base_url
    command.admin = command.ensure_users()
    tenants = command.ensure_tenants()
    failing = [spec for spec in INTEGRATIONS if spec[-1] in (Integration.Status.AUTH_FAILING, Integration.Status.CREDENTIALS_INVALID)]
    assert {spec[1] for spec in failing} == {"Ingram Micro", "Proofpoint"}
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()

    for spec in failing:
        name, stored_key = spec[1], spec[5]
        integration = command.seed_simulator_integration(tenants, spec)
        assert integration.last_session.error_code.category == "auth"
        row = next(line for line in readme.splitlines() if line.startswith(f"| {name} ("))
        assert "`good-key`" in row, row
        new = reauth.create_link(integration, recipient="it@customer.example", send=False)
        client = Client()
        assert client.get(f"/reauth/{new.token}/").status_code == 302

        # The key it holds is the one the vendor no longer takes; good-key is the fix.
        refused = client.post("/reauth/continue/", {"api_key": stored_key})
        assert refused.status_code == 400
        done = client.post("/reauth/continue/", {"api_key": GOOD_KEY})

        assert done.status_code == 200, name
        integration.refresh_from_db()
        assert integration.get_credentials() == {"api_key": GOOD_KEY}
        assert integration.status == Integration.Status.ACTIVE, name
        assert integration.last_session.trigger == SyncSession.Trigger.REAUTH
        assert integration.last_session.state == SyncSession.State.SUCCEEDED
