"""Tenant isolation: another tenant's ids are not found (404), in the portal and in the API.

A tenant admin of Acme requests every portal URL with the ids of Globex's
integrations, issues, records and keys; each answers 404 and nothing of
Globex changes. Acme's API key sees only Acme. Who is not a tenant user
(anonymous, staff, a user without membership) never reaches a tenant's page.
"""

from types import SimpleNamespace

import pytest
from django.test import Client
from django.urls import reverse

from integrations import services
from integrations.models import AccountMapping, Integration, Membership, SyncSession
from tests.factories import (
    MembershipFactory,
    SyncedRecordFactory,
    SyncIssueFactory,
    SyncSessionFactory,
    TenantFactory,
    UserFactory,
)
from tests.portal.conftest import snapshot

S = Integration.Status


@pytest.fixture
def world(member, integration_in):
    """Acme (alice, tenant admin) and Globex, each with integrations, sessions, issues, records and keys."""
    acme = TenantFactory(name="Acme", slug="acme")
    globex = TenantFactory(name="Globex", slug="globex")
    alice = member(acme, Membership.Role.ADMIN, username="alice")

    own = integration_in(acme, name="Acme billing", credentials={"api_key": "acme-key"})
    own_record = SyncedRecordFactory(integration=own, external_id="item-acme-1", data={"name": "Acme item"})
    own_issue = SyncIssueFactory(integration=own, record=own_record, item_label="Acme item")

    theirs = integration_in(globex, name="Globex billing", credentials={"api_key": "globex-key"})
    SyncSessionFactory(integration=theirs, state=SyncSession.State.SUCCEEDED, items_seen=120)
    their_record = SyncedRecordFactory(
        integration=theirs, external_id="item-globex-1", data={"name": "Globex item"}
    )
    their_issue = SyncIssueFactory(integration=theirs, record=their_record, item_label="Globex item")
    their_setup = integration_in(globex, S.SETUP, name="Globex mailbox")
    their_mappings = [
        AccountMapping.objects.create(
            integration=their_setup, vendor_account_id=f"acct-{n}", vendor_account_name=name
        )
        for n, name in ((1, "Northwind"), (2, "Contoso"))
    ]
    their_idle = integration_in(globex, S.INACTIVE, name="Globex sandbox", deactivated_for_inactivity=True)
    their_key, their_raw_key = services.create_api_key(globex, "Globex monitoring")
    return SimpleNamespace(
        acme=acme,
        globex=globex,
        alice=alice,
        own=own,
        own_record=own_record,
        own_issue=own_issue,
        theirs=theirs,
        their_record=their_record,
        their_issue=their_issue,
        their_setup=their_setup,
        their_mappings=their_mappings,
        their_idle=their_idle,
        their_key=their_key,
        their_raw_key=their_raw_key,
    )


def mapping_post(w, target="Acme HQ"):
    return {f"target_{m.pk}": target for m in w.their_mappings}


# (method, URL name, attributes of `world` giving the URL's ids, POST data)
FOREIGN_REQUESTS = [
    pytest.param("get", "general", ("theirs",), None, id="GET general"),
    pytest.param("get", "progress", ("theirs",), None, id="GET progress.json"),
    pytest.param("post", "sync", ("theirs",), {"kind": "quick"}, id="POST sync"),
    pytest.param("post", "sync", ("theirs",), {"kind": "full"}, id="POST full sync"),
    pytest.param("get", "reauthenticate", ("theirs",), None, id="GET reauthenticate"),
    pytest.param("post", "reauthenticate", ("theirs",), {"api_key": "new-key"}, id="POST reauthenticate"),
    pytest.param("post", "reactivate", ("their_idle",), None, id="POST reactivate"),
    pytest.param("get", "mapping", ("their_setup",), None, id="GET mapping"),
    pytest.param("post", "mapping", ("their_setup",), mapping_post, id="POST mapping"),
    pytest.param("get", "issues", ("theirs",), None, id="GET issues"),
    pytest.param("get", "help", ("theirs", "their_issue"), None, id="GET help"),
    pytest.param("post", "help", ("theirs", "their_issue"), {"message": "Please fix"}, id="POST help"),
    # Our own integration with the other tenant's issue or record.
    pytest.param("get", "help", ("own", "their_issue"), None, id="GET help, own integration"),
    pytest.param(
        "post", "help", ("own", "their_issue"), {"message": "Please fix"}, id="POST help, own integration"
    ),
    pytest.param("get", "record", ("theirs", "their_record"), None, id="GET record"),
    pytest.param("get", "record", ("own", "their_record"), None, id="GET record, own integration"),
]


def foreign_url(w, name, attributes):
    return reverse(f"portal:{name}", args=[getattr(w, a).pk for a in attributes])


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "name", "attributes", "data"), FOREIGN_REQUESTS)
def test_another_tenants_ids_are_not_found_and_change_nothing(world, log_in, method, name, attributes, data):
    client = log_in(world.alice)
    before = snapshot(world.acme, world.globex)
    url = foreign_url(world, name, attributes)
    payload = data(world) if callable(data) else data
    response = client.get(url) if method == "get" else client.post(url, payload or {})

    assert response.status_code == 404, (url, response.status_code)
    assert b"Globex" not in response.content
    assert snapshot(world.acme, world.globex) == before
    theirs = Integration.objects.get(pk=world.theirs.pk)
    assert theirs.get_credentials() == {"api_key": "globex-key"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("general", [987654]),
        ("progress", [987654]),
        ("issues", [987654]),
        ("general", [99999999999999999999999]),
        ("issues", [2**63]),
    ],
    ids=["general", "progress", "issues", "huge general", "issues past 64 bits"],
)
def test_unknown_ids_are_not_found(world, log_in, name, args):
    response = log_in(world.alice).get(reverse(f"portal:{name}", args=args))
    assert response.status_code == 404


@pytest.mark.django_db
def test_own_ids_answer_so_the_404s_above_are_about_the_tenant(world, log_in):
    client = log_in(world.alice)
    for name, args in (
        ("general", [world.own.pk]),
        ("progress", [world.own.pk]),
        ("issues", [world.own.pk]),
        ("help", [world.own.pk, world.own_issue.pk]),
        ("record", [world.own.pk, world.own_record.pk]),
        ("reauthenticate", [world.own.pk]),
        ("mapping", [world.own.pk]),
    ):
        assert client.get(reverse(f"portal:{name}", args=args)).status_code == 200, name


@pytest.mark.django_db
def test_the_list_shows_only_the_own_tenant(world, log_in):
    response = log_in(world.alice).get(reverse("portal:list"))
    assert response.status_code == 200
    content = response.content.decode()
    assert "Acme billing" in content
    for name in ("Globex billing", "Globex mailbox", "Globex sandbox"):
        assert name not in content


@pytest.mark.django_db
def test_another_tenants_api_key_cannot_be_revoked(world, log_in):
    before = snapshot(world.acme, world.globex)
    response = log_in(world.alice).post(reverse("portal:api_keys"), {"revoke": str(world.their_key.pk)})
    assert response.status_code == 404
    assert snapshot(world.acme, world.globex) == before
    api = Client(HTTP_AUTHORIZATION=f"Bearer {world.their_raw_key}")
    assert api.get("/api/v1/integrations/").status_code == 200


@pytest.mark.django_db
def test_an_api_key_sees_only_its_own_tenant(world):
    _, raw = services.create_api_key(world.acme, "Acme monitoring")
    api = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Bearer {raw}")
    before = snapshot(world.globex)

    listing = api.get("/api/v1/integrations/")
    assert listing.status_code == 200
    assert [i["id"] for i in listing.json()["integrations"]] == [world.own.pk]

    for integration in (world.theirs, world.their_setup, world.their_idle):
        pk = integration.pk
        for response in (
            api.get(f"/api/v1/integrations/{pk}/"),
            api.get(f"/api/v1/integrations/{pk}/issues/"),
            api.post(
                f"/api/v1/integrations/{pk}/sync", data={"kind": "full"}, content_type="application/json"
            ),
            api.post(f"/api/v1/integrations/{pk}/sync"),
        ):
            assert response.status_code == 404
            assert response["Content-Type"] == "application/json"
            assert response.json()["error"]["code"] == "not_found"
            assert "Globex" not in response.json()["error"]["message"]

    # Not even the other tenant's idle integrations are switched back on by this key's requests.
    assert snapshot(world.globex) == before


PORTAL_URLS = [
    ("get", "list", ()),
    ("get", "api_keys", ()),
    ("get", "general", ("own",)),
    ("get", "progress", ("own",)),
    ("post", "sync", ("own",)),
    ("get", "reauthenticate", ("own",)),
    ("post", "reauthenticate", ("own",)),
    ("post", "reactivate", ("own",)),
    ("get", "mapping", ("own",)),
    ("post", "mapping", ("own",)),
    ("get", "issues", ("own",)),
    ("get", "help", ("own", "own_issue")),
    ("post", "help", ("own", "own_issue")),
    ("get", "record", ("own", "own_record")),
]
PORTAL_URL_IDS = [f"{m.upper()} {n}" + (f" {a[-1]}" if len(a) > 1 else "") for m, n, a in PORTAL_URLS]


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "name", "attributes"), PORTAL_URLS, ids=PORTAL_URL_IDS)
def test_anonymous_visitors_are_sent_to_the_login_page(world, client, method, name, attributes):
    url = foreign_url(world, name, attributes)
    before = snapshot(world.acme)
    response = getattr(client, method)(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('portal:login')}?next={url}"
    assert snapshot(world.acme) == before


@pytest.mark.django_db
@pytest.mark.parametrize("with_membership", [False, True], ids=["staff", "staff with a membership"])
@pytest.mark.parametrize(("method", "name", "attributes"), PORTAL_URLS, ids=PORTAL_URL_IDS)
def test_staff_are_not_portal_users(world, log_in, with_membership, method, name, attributes):
    staff = UserFactory(username="sam", is_staff=True)
    if with_membership:
        MembershipFactory(user=staff, tenant=world.acme, role=Membership.Role.ADMIN)
    before = snapshot(world.acme)
    response = getattr(log_in(staff), method)(foreign_url(world, name, attributes))
    assert response.status_code == 403
    assert b"No portal access" in response.content
    assert b"Acme billing" not in response.content
    assert snapshot(world.acme) == before


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "name", "attributes"), PORTAL_URLS, ids=PORTAL_URL_IDS)
def test_users_without_a_membership_have_no_portal_access(world, log_in, method, name, attributes):
    stranger = UserFactory(username="mallory")
    before = snapshot(world.acme)
    response = getattr(log_in(stranger), method)(foreign_url(world, name, attributes))
    assert response.status_code == 403
    assert b"No portal access" in response.content
    assert snapshot(world.acme) == before
