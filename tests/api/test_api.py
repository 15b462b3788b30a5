"""The JSON API, /api/v1/: keys, integration states, issues, starting syncs, and every error as JSON.

Also the development tenants' inactivity rule: idle for longer than
DEVELOPMENT_INACTIVE_AFTER, their integrations are switched off with a
notice; the next API request or a tenant admin switches them on again.
"""

import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from integrations import api_keys, idle, pagination, services
from integrations import status as machine
from integrations.models import ApiKey, Integration, IntegrationEvent, Membership, SyncSession, Tenant
from issues.models import ErrorCode
from tests.factories import SyncIssueFactory, SyncSessionFactory, TenantFactory
from tests.portal.conftest import snapshot

Status = Integration.Status
live = pytest.mark.django_db(transaction=True)
JSON = "application/json"


def assert_error(response, status, code):
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"] == JSON
    body = response.json()
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body


@pytest.fixture
def acme(db):
    return TenantFactory(name="Acme", slug="acme")


def endpoints(integration):
    pk = integration.pk
    return [
        ("get", "/api/v1/integrations/"),
        ("get", f"/api/v1/integrations/{pk}/"),
        ("get", f"/api/v1/integrations/{pk}/issues/"),
        ("post", f"/api/v1/integrations/{pk}/sync"),
    ]


ENDPOINT_IDS = ["list", "detail", "issues", "sync"]


# -- authentication ---------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", range(4), ids=ENDPOINT_IDS)
@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "missing_api_key"),
        ("", "missing_api_key"),
        ("Bearer", "missing_api_key"),
        ("Bearer    ", "missing_api_key"),
        ("Basic YWxpY2U6cGFzc3dvcmQ=", "missing_api_key"),
        ("Token {valid}", "missing_api_key"),
        ("{valid}", "missing_api_key"),
        ("Bearer sck_not-a-key-of-anyone", "invalid_api_key"),
        ("Bearer {valid}x", "invalid_api_key"),
        ("Bearer {revoked}", "api_key_revoked"),
    ],
    ids=[
        "no header",
        "empty",
        "scheme only",
        "blank key",
        "basic",
        "token scheme",
        "no scheme",
        "unknown key",
        "altered key",
        "revoked key",
    ],
)
def test_authentication_errors_are_401_json(acme, api_key, integration_in, endpoint, header, code):
    integration = integration_in(acme, name="Acme billing")
    _, valid = api_key(acme)
    revoked, revoked_raw = api_key(acme, "old")
    api_keys.revoke_api_key(revoked)
    before = snapshot(acme)
    extra = {} if header is None else {"HTTP_AUTHORIZATION": header.format(valid=valid, revoked=revoked_raw)}
    method, path = endpoints(integration)[endpoint]
    response = getattr(Client(enforce_csrf_checks=True), method)(path, **extra)
    assert_error(response, 401, code)
    assert snapshot(acme) == before  # no session, no last request time


@pytest.mark.django_db
def test_the_scheme_is_case_insensitive_and_the_key_is_trimmed(acme, api_key, integration_in):
    integration_in(acme, name="Acme billing")
    key, raw = api_key(acme)
    for header in (f"bearer {raw}", f"BEARER {raw}", f"Bearer  {raw} "):
        response = Client(HTTP_AUTHORIZATION=header).get("/api/v1/integrations/")
        assert response.status_code == 200, header
    key.refresh_from_db()
    assert key.last_used_at is not None


# -- reading states ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_list_and_detail_give_the_state(acme, api_client, integration_in):
    now = timezone.now()
    billing = integration_in(acme, name="Billing", kind="psa")
    last = SyncSessionFactory(
        integration=billing,
        kind="full",
        trigger="schedule",
        state="failed",
        error_code=ErrorCode.objects.get(code="VENDOR_UNAVAILABLE"),
        error_message="The vendor answered 503.",
        queued_at=now - timedelta(minutes=10),
        started_at=now - timedelta(minutes=10),
        finished_at=now - timedelta(minutes=9),
        items_seen=40,
        items_total=120,
    )
    Integration.objects.filter(pk=billing.pk).update(last_session=last)
    for state in ("open", "open", "open", "resolved", "ignored"):
        SyncIssueFactory(integration=billing, state=state)
    reviewed = integration_in(acme, Status.QUALITY_ASSURANCE, name="Contacts")
    integration_in(acme, Status.CREDENTIALS_INVALID, name="Distributor")
    integration_in(acme, Status.SETUP, name="Mailbox")
    inactive = integration_in(acme, Status.INACTIVE, name="Sandbox")
    deleted = integration_in(acme, name="Zombie")
    services.perform_action(deleted.pk, machine.Action.DELETE, note="Deleted by staff.")
    SyncSessionFactory(integration=reviewed, state="running", items_seen=5)
    integration_in(TenantFactory(name="Globex"), name="Globex billing")
    api = api_client(acme)

    listing = api.get("/api/v1/integrations/")
    assert listing.status_code == 200
    assert listing["Content-Type"] == JSON
    states = {i["name"]: i for i in listing.json()["integrations"]}
    assert list(states) == ["Billing", "Contacts", "Distributor", "Mailbox", "Sandbox"]
    assert {name: i["status"] for name, i in states.items()} == {
        "Billing": "ok",
        "Contacts": "paused",
        "Distributor": "auth_failing",
        "Mailbox": "setup",
        "Sandbox": "inactive",
    }
    assert {name: i["syncing"] for name, i in states.items()} == {
        "Billing": False,
        "Contacts": True,
        "Distributor": False,
        "Mailbox": False,
        "Sandbox": False,
    }
    billing.refresh_from_db()
    expected = {
        "id": billing.pk,
        "name": "Billing",
        "connector": "simulator",
        "kind": "psa",
        "status": "ok",
        "status_words": "Syncing normally",
        "status_reason": billing.status_reason,
        "status_changed_at": billing.status_changed_at.isoformat(),
        "syncing": False,
        "last_session": {
            "id": last.pk,
            "kind": "full",
            "trigger": "schedule",
            "state": "failed",
            "error_code": "VENDOR_UNAVAILABLE",
            "error_message": "The vendor answered 503.",
            "queued_at": last.queued_at.isoformat(),
            "started_at": last.started_at.isoformat(),
            "finished_at": last.finished_at.isoformat(),
            "items_seen": 40,
            "items_total": 120,
        },
        "last_success_at": billing.last_success_at.isoformat(),
        "open_issues": 3,
        "next_sync_at": billing.next_sync_at.isoformat(),
    }
    assert states["Billing"] == expected
    assert states["Mailbox"]["last_session"] is None
    assert states["Mailbox"]["last_success_at"] is None

    detail = api.get(f"/api/v1/integrations/{billing.pk}/")
    assert detail.status_code == 200
    assert detail.json() == expected
    assert api.get(f"/api/v1/integrations/{inactive.pk}/").json()["status"] == "inactive"
    assert_error(api.get(f"/api/v1/integrations/{deleted.pk}/"), 404, "not_found")


@pytest.fixture
def issue_log(acme, integration_in):
    integration = integration_in(acme, Status.WARNINGS, name="Address book")
    now = timezone.now()
    codes = {c.code: c for c in ErrorCode.objects.all()}
    rows = []
    for n in range(12):
        code = ("ITEM_MISSING_FIELD", "ITEM_INVALID_VALUE", "ITEM_UNMAPPED")[n % 3]
        rows.append(
            SyncIssueFactory(
                integration=integration,
                error_code=codes[code],
                severity=("warning", "error")[n % 2],
                state="open" if n < 9 else "resolved",
                external_id=f"item-{n:03d}",
                item_label=f"Person {n:02d}",
                last_seen_at=now - timedelta(minutes=n // 2),
                vendor_url=f"https://vendor.example/items/{n}",
                message=f"Problem {n}",
            )
        )
    return integration, rows


@pytest.mark.django_db
def test_issues_page_by_limit_and_cursor(acme, api_client, issue_log):
    integration, rows = issue_log
    api = api_client(acme)
    url = f"/api/v1/integrations/{integration.pk}/issues/"
    expected = [r.pk for r in sorted(rows[:9], key=lambda r: (r.last_seen_at, r.pk), reverse=True)]

    first = api.get(url)
    assert first.status_code == 200
    assert [i["id"] for i in first.json()["issues"]] == expected
    assert first.json()["next"] is None

    walked, cursor, pages = [], "", 0
    while True:
        params = {"limit": 4, **({"after": cursor} if cursor else {})}
        page = api.get(url, params).json()
        walked += [i["id"] for i in page["issues"]]
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break
    assert pages == 3
    assert walked == expected

    issue = rows[1]  # seen at the same moment as rows[0], and the newer row
    assert first.json()["issues"][0] == {
        "id": issue.pk,
        "error_code": "ITEM_INVALID_VALUE",
        "title": issue.error_code.title,
        "category": "data",
        "severity": "error",
        "source": "vendor",
        "item_type": "item",
        "external_id": "item-001",
        "item_label": "Person 01",
        "vendor_url": "https://vendor.example/items/1",
        "message": "Problem 1",
        "occurrences": 1,
        "first_seen_at": issue.first_seen_at.isoformat(),
        "last_seen_at": issue.last_seen_at.isoformat(),
        "state": "open",
    }
    assert len(api.get(url, {"limit": 200, "state": "all"}).json()["issues"]) == 12
    assert len(api.get(url, {"limit": 1}).json()["issues"]) == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"state": "resolved"}, [9, 10, 11]),
        ({"state": "all", "code": "ITEM_UNMAPPED"}, [2, 5, 8, 11]),
        ({"code": "ITEM_INVALID_VALUE"}, [1, 4, 7]),
        ({"category": "mapping"}, [2, 5, 8]),
        ({"severity": "error"}, [1, 3, 5, 7]),
        ({"q": "Person 1", "state": "all"}, [10, 11]),
        ({"q": "item-00"}, list(range(9))),
        ({"q": "nobody"}, []),
    ],
)
def test_issues_filters(acme, api_client, issue_log, params, expected):
    integration, rows = issue_log
    response = api_client(acme).get(
        f"/api/v1/integrations/{integration.pk}/issues/", {"limit": 200, **params}
    )
    assert response.status_code == 200
    assert sorted(i["id"] for i in response.json()["issues"]) == sorted(rows[n].pk for n in expected)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "201"},
        {"limit": "-1"},
        {"limit": "ten"},
        {"limit": ""},
        {"limit": "1.5"},
        {"limit": "99999999999999999999999999"},
        {"limit": "²"},
        {"code": "NOPE"},
        {"category": "weather"},
        {"severity": "bad"},
        {"state": "closed"},
        {"q": "x" * 201},
        {"after": "garbage"},
        {"after": "tampered"},
    ],
    ids=lambda p: f"{next(iter(p))}={str(next(iter(p.values())))[:12]}",
)
def test_bad_issue_parameters_are_400_json(acme, api_client, issue_log, params):
    integration, rows = issue_log
    if params.get("after") == "tampered":
        token = pagination.encode(rows[0])
        params = {"after": token[:-2] + ("xy" if not token.endswith("xy") else "yz")}
    response = api_client(acme).get(f"/api/v1/integrations/{integration.pk}/issues/", params)
    body = assert_error(response, 400, "bad_request")
    assert "issues" not in body


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["code", "category", "severity", "state", "q", "after", "limit"])
def test_a_nul_character_in_an_issue_parameter_is_not_a_server_error(acme, api_client, issue_log, name):
    # PostgreSQL refuses NUL in text; the API must still answer in JSON (no match, or a 400 that says why).
    integration, _ = issue_log
    response = api_client(acme).get(f"/api/v1/integrations/{integration.pk}/issues/", {name: "Person\x00"})
    assert response.status_code in (200, 400), response.status_code
    assert response["Content-Type"] == JSON
    if response.status_code == 200:
        assert response.json() == {"issues": [], "next": None}
    else:
        assert response.json()["error"]["code"] == "bad_request"


# -- starting syncs ---------------------------------------------------------------------------------


@live
def test_post_sync_starts_a_session_202(acme, api_client, make_integration, sync):
    integration = make_integration("healthy", tenant=acme, name="Acme billing")
    sync(integration)
    api = api_client(acme)
    url = f"/api/v1/integrations/{integration.pk}/sync"

    for body, kind in (
        (None, "quick"),
        ({}, "quick"),
        ({"kind": "full"}, "full"),
        ({"kind": "quick"}, "quick"),
    ):
        response = api.post(url, data="" if body is None else json.dumps(body), content_type=JSON)
        assert response.status_code == 202, response.content
        session = response.json()["session"]
        stored = SyncSession.objects.get(pk=session["id"])
        assert stored.integration_id == integration.pk
        assert (session["kind"], session["trigger"]) == (kind, "api")
        assert (stored.kind, stored.trigger) == (kind, "api")
        # Tasks run inline here: the session has finished when the answer comes.
        assert session["state"] == stored.state == "succeeded"
        assert (
            session["items_seen"] == stored.items_seen == (120 if kind == "full" else 0)
        )  # quick: nothing changed
    assert SyncSession.objects.filter(integration=integration, trigger="api").count() == 4


@pytest.mark.django_db
def test_post_sync_while_one_runs_is_409_with_the_running_session(acme, api_client, integration_in):
    integration = integration_in(acme, name="Acme billing")
    running = SyncSessionFactory(
        integration=integration,
        state="running",
        trigger="schedule",
        items_seen=300,
        items_total=1000,
        started_at=timezone.now() - timedelta(minutes=1),
    )
    before = snapshot(acme)
    response = api_client(acme).post(
        f"/api/v1/integrations/{integration.pk}/sync", data="", content_type=JSON
    )
    body = assert_error(response, 409, "already_syncing")
    assert body["session"]["id"] == running.pk
    assert (body["session"]["state"], body["session"]["items_seen"], body["session"]["items_total"]) == (
        "running",
        300,
        1000,
    )
    assert f"session {running.pk} is running" in body["error"]["message"]
    assert "(started 60 s ago), 300 of 1,000 items so far." in body["error"]["message"]
    assert body["queue_position"] is None
    after = snapshot(acme)
    assert after["sessions"] == before["sessions"]
    assert after["events"] == before["events"]


@pytest.mark.django_db
def test_post_sync_while_one_is_queued_is_409_with_its_place_in_the_queue(acme, api_client, integration_in):
    integration = integration_in(acme, name="Acme billing")
    now = timezone.now()
    for other in (integration_in(acme, name="Acme crm"), integration_in(acme, name="Acme mail")):
        SyncSessionFactory(integration=other, state="queued", trigger="customer", queued_at=now - timedelta(minutes=3))
    queued = SyncSessionFactory(integration=integration, state="queued", trigger="staff", queued_at=now)

    response = api_client(acme).post(f"/api/v1/integrations/{integration.pk}/sync", data="", content_type=JSON)

    body = assert_error(response, 409, "already_syncing")
    assert body["session"]["id"] == queued.pk
    assert body["queue_position"] == 3
    assert "position 3 in the urgent queue (2 ahead of it)" in body["error"]["message"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "code"),
    [
        (Status.INACTIVE, "inactive"),
        (Status.QUALITY_ASSURANCE, "quality_assurance"),
        (Status.SETUP, "mapping_incomplete"),
        (Status.CREDENTIALS_INVALID, "credentials_invalid"),
    ],
)
def test_post_sync_is_422_when_the_status_forbids_it(acme, api_client, integration_in, status, code):
    integration = integration_in(acme, status, name="Acme billing")
    before = snapshot(acme)
    response = api_client(acme).post(
        f"/api/v1/integrations/{integration.pk}/sync", data='{"kind": "full"}', content_type=JSON
    )
    assert_error(response, 422, code)
    after = snapshot(acme)
    assert after["sessions"] == before["sessions"] == []
    assert after["events"] == before["events"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        (b"{not json", JSON, "bad_json"),
        (b'{"kind": "full"', JSON, "bad_json"),
        (b"\xff\xfe\xfa", JSON, "bad_json"),
        (b"kind=full", "application/x-www-form-urlencoded", "bad_json"),
        (b"[]", JSON, "bad_json"),
        (b'["kind", "full"]', JSON, "bad_json"),
        (b'"full"', JSON, "bad_json"),
        (b"42", JSON, "bad_json"),
        (b"null", JSON, "bad_json"),
        (b'{"kind": "full", "force": true}', JSON, "bad_request"),
        (b'{"priority": 1}', JSON, "bad_request"),
        (b'{"kind": "medium"}', JSON, "bad_request"),
        (b'{"kind": "FULL"}', JSON, "bad_request"),
        (b'{"kind": null}', JSON, "bad_request"),
        (b'{"kind": ["full"]}', JSON, "bad_request"),
        (b'{"kind": {"full": true}}', JSON, "bad_request"),
        (b'{"kind": 1}', JSON, "bad_request"),
    ],
    ids=[
        "broken",
        "truncated",
        "not utf-8",
        "form data",
        "array",
        "array of strings",
        "string",
        "number",
        "null",
        "unknown field",
        "only unknown field",
        "bad kind",
        "kind in capitals",
        "null kind",
        "list kind",
        "object kind",
        "number kind",
    ],
)
def test_bad_sync_bodies_are_400_json(acme, api_client, integration_in, body, content_type, code):
    integration = integration_in(acme, name="Acme billing")
    before = snapshot(acme)
    response = api_client(acme).post(
        f"/api/v1/integrations/{integration.pk}/sync", data=body, content_type=content_type
    )
    assert_error(response, 400, code)
    assert snapshot(acme)["sessions"] == before["sessions"] == []


@pytest.mark.django_db
def test_an_oversized_sync_body_is_an_error_in_json(acme, api_client, integration_in):
    integration = integration_in(acme, name="Acme billing")
    body = json.dumps({"kind": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10)})
    response = api_client(acme).post(
        f"/api/v1/integrations/{integration.pk}/sync", data=body, content_type=JSON
    )
    assert response.status_code in (400, 413)
    assert response["Content-Type"] == JSON, response.content[:120]
    assert response.json()["error"]["code"]
    assert not SyncSession.objects.exists()


# -- ids, methods, paths ----------------------------------------------------------------------------


BAD_IDS = ["abc", "1.5", "-1", "0", "1e3", "0x10", "%20", "9" * 30, "9" * 19, "²", "١٢٣٤٥٦", "Ⅻ", "987654"]


@pytest.mark.django_db
@pytest.mark.parametrize("integration_id", BAD_IDS)
@pytest.mark.parametrize(
    ("method", "suffix"),
    [("get", "/"), ("get", "/issues/"), ("post", "/sync")],
    ids=["detail", "issues", "sync"],
)
def test_non_numeric_huge_and_unknown_ids_are_404_json(
    acme, api_client, integration_in, integration_id, method, suffix
):
    integration_in(acme, name="Acme billing")
    before = snapshot(acme)
    response = getattr(api_client(acme), method)(f"/api/v1/integrations/{integration_id}{suffix}")
    assert_error(response, 404, "not_found")
    assert snapshot(acme)["sessions"] == before["sessions"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("post", "/api/v1/integrations/", "GET"),
        ("put", "/api/v1/integrations/", "GET"),
        ("delete", "/api/v1/integrations/{pk}/", "GET"),
        ("patch", "/api/v1/integrations/{pk}/", "GET"),
        ("post", "/api/v1/integrations/{pk}/issues/", "GET"),
        ("get", "/api/v1/integrations/{pk}/sync", "POST"),
        ("put", "/api/v1/integrations/{pk}/sync", "POST"),
        ("delete", "/api/v1/integrations/{pk}/sync", "POST"),
        ("post", "/api/v1/openapi.json", "GET"),
        ("delete", "/api/v1/openapi.json", "GET"),
    ],
)
def test_a_wrong_method_is_405_json_with_allow(acme, api_client, integration_in, method, path, allow):
    integration = integration_in(acme, name="Acme billing")
    before = snapshot(acme)
    response = getattr(api_client(acme), method)(path.format(pk=integration.pk))
    assert_error(response, 405, "method_not_allowed")
    assert response["Allow"] == allow
    assert snapshot(acme)["sessions"] == before["sessions"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/"),
        ("get", "/api/v1/nope"),
        ("get", "/api/v1/nope/"),
        ("get", "/api/v1/integrations"),
        ("get", "/api/v1/integrations/{pk}/issues"),
        ("get", "/api/v1/integrations/{pk}/sessions/"),
        ("get", "/api/v1/integrations/{pk}/sync/"),
        ("post", "/api/v1/integrations/{pk}/sync/"),
        ("post", "/api/v1/nope/"),
        ("delete", "/api/v1/integrations/{pk}/issues/1/"),
    ],
)
def test_an_unknown_path_is_404_json(acme, api_client, integration_in, method, path):
    integration = integration_in(acme, name="Acme billing")
    response = getattr(api_client(acme), method)(path.format(pk=integration.pk))
    assert_error(response, 404, "not_found")
    assert not SyncSession.objects.exists()


# -- last API request and development inactivity ----------------------------------------------------


@pytest.mark.django_db
def test_every_authenticated_request_records_the_last_api_request(acme, api_client, integration_in):
    integration = integration_in(acme, Status.INACTIVE, name="Acme billing")
    api = api_client(acme)
    key = ApiKey.objects.get(tenant=acme)
    pk = integration.pk
    requests = [
        ("get", "/api/v1/integrations/", {}),
        ("get", f"/api/v1/integrations/{pk}/", {}),
        ("get", f"/api/v1/integrations/{pk}/issues/", {}),
        ("get", f"/api/v1/integrations/{pk}/issues/", {"data": {"limit": "0"}}),  # 400
        ("get", "/api/v1/integrations/987654/", {}),  # 404
        ("post", f"/api/v1/integrations/{pk}/sync", {"data": "", "content_type": JSON}),  # 422
    ]
    for method, path, kwargs in requests:
        Tenant.objects.filter(pk=acme.pk).update(last_api_request_at=None)
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=None)
        start = timezone.now()
        getattr(api, method)(path, **kwargs)
        acme.refresh_from_db()
        key.refresh_from_db()
        assert acme.last_api_request_at is not None and acme.last_api_request_at >= start, path
        assert key.last_used_at is not None and key.last_used_at >= start, path


@pytest.fixture
def tenants(member, integration_in, staff_user):
    """Three tenants: development idle for 15 days, production idle as long, development used 3 days ago."""
    now = timezone.now()
    dev = TenantFactory(
        name="Dev Co",
        environment=Tenant.Environment.DEVELOPMENT,
        last_api_request_at=now - timedelta(days=15),
        alert_emails="ops@dev.example, oncall@dev.example",
    )
    member(dev, Membership.Role.ADMIN, username="dana", email="dana@dev.example")
    member(dev, Membership.Role.VIEWER, username="vic", email="vic@dev.example")
    prod = TenantFactory(name="Prod Co", last_api_request_at=now - timedelta(days=15))
    recent = TenantFactory(
        name="Recent Co",
        environment=Tenant.Environment.DEVELOPMENT,
        last_api_request_at=now - timedelta(days=3),
    )
    integrations = {
        "dev billing": integration_in(dev, name="Dev billing"),
        "dev contacts": integration_in(dev, Status.WARNINGS, name="Dev contacts"),
        "dev legacy": integration_in(dev, name="Dev legacy"),
        "prod billing": integration_in(prod, name="Prod billing"),
        "recent billing": integration_in(recent, name="Recent billing"),
    }
    services.perform_action(
        integrations["dev legacy"].pk, machine.Action.DEACTIVATE, actor=staff_user, note="Customer asked."
    )
    return dev, prod, recent, integrations


@pytest.mark.django_db
def test_idle_development_tenants_are_switched_off_and_the_next_request_switches_them_on(
    tenants, api_client, log_in
):
    dev, prod, recent, integrations = tenants
    now = timezone.now()
    untouched = snapshot(prod, recent)

    switched_off = idle.deactivate_idle_development(now)

    assert sorted(switched_off) == sorted([integrations["dev billing"].pk, integrations["dev contacts"].pk])
    for name in ("dev billing", "dev contacts"):
        integration = Integration.objects.get(pk=integrations[name].pk)
        assert (integration.status, integration.deactivated_for_inactivity) == (Status.INACTIVE, True)
        assert integration.deactivated_at == now
        event = IntegrationEvent.objects.get(integration=integration, kind=IntegrationEvent.Kind.DEACTIVATED)
        assert event.actor is None
        assert (
            event.note
            == f"No API request for {settings.DEVELOPMENT_INACTIVE_AFTER.days} days (development tenant)."
        )
    legacy = Integration.objects.get(pk=integrations["dev legacy"].pk)
    assert (legacy.status, legacy.deactivated_for_inactivity) == (Status.INACTIVE, False)
    assert snapshot(prod, recent)["integrations"] == untouched["integrations"]
    assert snapshot(prod, recent)["events"] == untouched["events"]

    assert len(mail.outbox) == 1
    notice = mail.outbox[0]
    assert sorted(notice.to) == ["dana@dev.example", "oncall@dev.example", "ops@dev.example"]
    assert "Dev Co" in notice.subject and "2 integrations of Dev Co switched off" in notice.subject
    assert "Dev billing" in notice.body and "Dev contacts" in notice.body and "Dev legacy" not in notice.body
    assert "/portal/" in notice.body

    # Running the schedule again changes nothing and sends nothing.
    assert idle.deactivate_idle_development(now + timedelta(hours=1)) == []
    assert len(mail.outbox) == 1

    # The next API request switches them on again, and answers with the new state.
    listing = api_client(dev).get("/api/v1/integrations/")
    assert listing.status_code == 200
    states = {i["name"]: i["status"] for i in listing.json()["integrations"]}
    assert states == {"Dev billing": "ok", "Dev contacts": "warnings", "Dev legacy": "inactive"}
    for name in ("dev billing", "dev contacts"):
        integration = Integration.objects.get(pk=integrations[name].pk)
        assert integration.deactivated_at is None
        assert integration.deactivated_for_inactivity is False
        assert IntegrationEvent.objects.filter(
            integration=integration,
            kind=IntegrationEvent.Kind.REACTIVATED,
            note="Reactivated by an API request.",
        ).exists()
    legacy.refresh_from_db()
    assert legacy.status == Status.INACTIVE
    dev.refresh_from_db()
    assert dev.last_api_request_at >= now


@pytest.mark.django_db
def test_an_integration_a_tenant_admin_reactivated_is_not_switched_off_again_the_next_day(tenants, log_in):
    _, _, _, integrations = tenants
    now = timezone.now()
    idle.deactivate_idle_development(now)
    billing = integrations["dev billing"]
    client = log_in(get_user_model().objects.get(username="dana"))
    client.post(reverse("portal:reactivate", args=[billing.pk]))
    billing.refresh_from_db()
    assert billing.status == Status.ACTIVE
    mail.outbox.clear()

    # The next daily runs, well within DEVELOPMENT_INACTIVE_AFTER of the reactivation.
    for days in (1, 2):
        idle.deactivate_idle_development(timezone.now() + timedelta(days=days))
        billing.refresh_from_db()
        assert billing.status == Status.ACTIVE, (
            f"switched off again {days} day(s) after a tenant admin reactivated it"
        )
    assert mail.outbox == []


@pytest.mark.django_db
def test_a_development_tenant_that_never_called_the_api_is_idle_from_its_creation(integration_in):
    now = timezone.now()
    old = TenantFactory(name="Old Dev", environment=Tenant.Environment.DEVELOPMENT)
    new = TenantFactory(name="New Dev", environment=Tenant.Environment.DEVELOPMENT)
    Tenant.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=15))
    old_one = integration_in(old, name="Old billing")
    integration_in(new, name="New billing")
    assert idle.deactivate_idle_development(now) == [old_one.pk]
    assert mail.outbox == []  # no alert address and no admin: nobody to tell


@pytest.mark.django_db
def test_a_tenant_admin_reactivates_in_the_portal_but_not_what_staff_switched_off(tenants, log_in):
    _, _, _, integrations = tenants
    idle.deactivate_idle_development(timezone.now())
    admin = get_user_model().objects.get(username="dana")
    client = log_in(admin)
    billing = integrations["dev billing"]
    response = client.post(reverse("portal:reactivate", args=[billing.pk]), follow=True)
    assert "Reactivated." in [str(m) for m in response.context["messages"]]
    billing.refresh_from_db()
    assert (billing.status, billing.deactivated_for_inactivity) == (Status.ACTIVE, False)
    assert IntegrationEvent.objects.filter(
        integration=billing, kind=IntegrationEvent.Kind.REACTIVATED, actor=admin
    ).exists()
    # Only what was asked: the other idle integration stays off until it is asked for too.
    contacts = Integration.objects.get(pk=integrations["dev contacts"].pk)
    assert contacts.status == Status.INACTIVE

    legacy = integrations["dev legacy"]
    refused = client.post(reverse("portal:reactivate", args=[legacy.pk]), follow=True)
    assert "This integration was switched off by our team; contact support to turn it back on." in [
        str(m) for m in refused.context["messages"]
    ]
    legacy.refresh_from_db()
    assert legacy.status == Status.INACTIVE

    viewer = get_user_model().objects.get(username="vic")
    assert log_in(viewer).post(reverse("portal:reactivate", args=[contacts.pk])).status_code == 403
    contacts.refresh_from_db()
    assert contacts.status == Status.INACTIVE
