"""The simulator's vendor profiles over plain HTTP: shapes, pagination, counts, rate limits, tokens.

Each profile imitates one vendor's documented API (integrations/simulator/profiles/);
tests/integrations/test_manifests.py syncs the manifests against them.
"""

import itertools
import os
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from integrations.simulator import profiles
from integrations.simulator.cli import HELP_TEXT

MANIFESTS = Path(__file__).resolve().parents[2] / "integrations" / "connectors" / "manifests"
_labels = itertools.count(1)


@pytest.fixture
def http():
    with requests.Session() as session:
        yield session


@pytest.fixture
def account(vendor_simulator):
    """account(key, scenario) -> Account: a profile account no other test shares."""

    def make(key, scenario):
        name = f"{scenario}.p{os.getpid()}-{next(_labels)}"
        return Account(vendor_simulator.base_url, key, name)

    return make


class Account:
    def __init__(self, base_url, key, name):
        self.root = profiles.root_url(base_url, key, name)
        self.urls = profiles.PROFILES[key].urls(self.root)
        self.base = self.urls["base_url"]
        self.token_url = self.urls.get("auth.token_url")

    def stats(self, http):
        return http.get(f"{self.root}/_control", timeout=10).json()["requests"]


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


# -- the catalog ---------------------------------------------------------------------


def test_every_profile_has_a_manifest_and_the_common_scenarios(http, vendor_simulator):
    catalog = http.get(vendor_simulator.url("/profiles"), timeout=10).json()["profiles"]

    assert set(catalog) == {path.stem for path in MANIFESTS.glob("*.json")} == set(profiles.PROFILES)
    for key, entry in catalog.items():
        assert set(profiles.base.COMMON_SCENARIOS) <= set(entry["scenarios"]), key
        assert entry["urls"]["base_url"].startswith(vendor_simulator.url(f"/profiles/{key}/SCENARIO"))
        assert key in HELP_TEXT


def test_unknown_profiles_scenarios_and_labels_are_404(http, vendor_simulator):
    assert (
        http.get(vendor_simulator.url("/profiles/nope/healthy/x"), timeout=10).json()["error"]
        == "unknown_profile"
    )
    for path in ("/profiles/pax8/sunny/v1/companies", "/profiles/pax8/healthy.b%20d/v1/companies"):
        answer = http.get(vendor_simulator.url(path), timeout=10)
        assert answer.status_code == 404 and answer.json()["error"] == "unknown_scenario"


def test_control_delete_forgets_an_account(http, account):
    acct = account("proofpoint_essentials", "healthy")
    http.get(f"{acct.base}/users", timeout=10)
    assert acct.stats(http)["api_requests"] == 1

    assert http.delete(f"{acct.root}/_control", timeout=10).json()["reset"] is True
    assert acct.stats(http)["api_requests"] == 0


# -- Pax8 ----------------------------------------------------------------------------

PAX8_CLIENT = {
    "grant_type": "client_credentials",
    "client_id": "sim-client",
    "client_secret": "good-secret",
    "audience": "api://p8p.client",
}


def pax8_token(http, acct, **changes):
    return http.post(acct.token_url, json={**PAX8_CLIENT, **changes}, timeout=10)


def test_pax8_token_request_is_json_with_the_audience(http, account):
    acct = account("pax8", "healthy")

    answer = pax8_token(http, acct)
    assert answer.status_code == 200
    assert answer.json()["token_type"] == "Bearer" and answer.json()["expires_in"] == 86400

    assert http.post(acct.token_url, data=PAX8_CLIENT, timeout=10).status_code == 400  # a form body
    assert pax8_token(http, acct, audience="api://other").status_code == 403
    refused = pax8_token(http, acct, client_secret="wrong")
    assert refused.status_code == 401 and refused.json() == {
        "error": "access_denied",
        "error_description": "Unauthorized",
    }


def test_pax8_pages_companies_and_subscriptions_from_page_zero(http, account):
    acct = account("pax8", "healthy")
    token = pax8_token(http, acct).json()["access_token"]

    companies = http.get(
        f"{acct.base}/companies", params={"size": 200}, headers=bearer(token), timeout=10
    ).json()
    assert companies["page"] == {"size": 200, "totalElements": 7, "totalPages": 1, "number": 0}
    company_ids = {c["id"] for c in companies["content"]}
    assert len(company_ids) == 7

    sizes, subscriptions = [], []
    for page in range(4):
        if page % 2 == 0:  # a token answers two requests, then a new one is needed
            token = pax8_token(http, acct).json()["access_token"]
        body = http.get(
            f"{acct.base}/subscriptions",
            params={"page": page, "size": 200},
            headers=bearer(token),
            timeout=10,
        ).json()
        assert body["page"]["totalElements"] == 523 and body["page"]["number"] == page
        sizes.append(len(body["content"]))
        subscriptions += body["content"]
    assert sizes == [200, 200, 123, 0]
    assert len({s["id"] for s in subscriptions}) == 523
    assert {s["companyId"] for s in subscriptions} == company_ids
    assert all(s["quantity"] >= 0 for s in subscriptions)


def test_pax8_rejects_a_page_size_over_200_in_its_error_shape(http, account):
    acct = account("pax8", "healthy")
    token = pax8_token(http, acct).json()["access_token"]

    answer = http.get(f"{acct.base}/subscriptions", params={"size": 201}, headers=bearer(token), timeout=10)

    assert answer.status_code == 400
    assert answer.json() == {
        "type": "BAD_REQUEST",
        "message": "size must be between 1 and 200",
        "instance": "/v1/subscriptions",
        "status": 400,
        "details": [],
    }


def test_pax8_access_token_expires_after_two_answers(http, account):
    acct = account("pax8", "healthy")
    token = pax8_token(http, acct).json()["access_token"]

    for _ in range(2):
        assert http.get(f"{acct.base}/companies", headers=bearer(token), timeout=10).status_code == 200
    expired = http.get(f"{acct.base}/companies", headers=bearer(token), timeout=10)

    assert expired.status_code == 401 and expired.json()["type"] == "UNAUTHORIZED"
    assert expired.json()["message"] == "The access token has expired"
    fresh = pax8_token(http, acct).json()["access_token"]
    assert http.get(f"{acct.base}/companies", headers=bearer(fresh), timeout=10).status_code == 200
    stats = acct.stats(http)
    assert (stats["tokens_issued"], stats["expired_token_answers"], stats["api_requests"]) == (2, 1, 4)


def test_pax8_rate_limited_answers_429_with_retry_after(http, account):
    acct = account("pax8", "rate-limited")

    def get():
        token = pax8_token(http, acct).json()["access_token"]
        return http.get(f"{acct.base}/companies", headers=bearer(token), timeout=10)

    answers = [get() for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    limited = answers[2]
    assert limited.json() == {
        "type": "TOO_MANY_REQUESTS",
        "message": "Too many requests hit the API quickly",
        "instance": "/v1/companies",
        "status": 429,
        "details": [],
    }
    assert limited.headers["Retry-After"] == "1"
    assert get().status_code == 429  # before the Retry-After ran out
    time.sleep(1)
    assert get().status_code == 200
    stats = acct.stats(http)
    assert (stats["answered_429"], stats["ignored_limit_429"]) == (2, 1)


def test_pax8_expired_and_server_error(http, account):
    expired = pax8_token(http, account("pax8", "expired"))
    assert expired.status_code == 401
    assert expired.json() == {"error": "access_denied", "error_description": "The client secret has expired"}

    acct = account("pax8", "server-error")
    token = pax8_token(http, acct).json()["access_token"]
    failed = http.get(f"{acct.base}/subscriptions", headers=bearer(token), timeout=10)
    assert failed.status_code == 500 and failed.json()["type"] == "INTERNAL_SERVER_ERROR"
    assert set(failed.json()) == {"type", "message", "instance", "status", "details"}


# -- ConnectWise PSA ------------------------------------------------------------------

CW_AUTH = ("simco+sim-public", "sim-private")
CW_HEADERS = {"clientId": "sim-client-id"}


def cw_get(http, url, **kwargs):
    kwargs.setdefault("auth", CW_AUTH)
    kwargs.setdefault("headers", CW_HEADERS)
    return http.get(url, timeout=10, **kwargs)


def test_connectwise_needs_basic_auth_and_a_client_id(http, account):
    acct = account("connectwise_manage", "healthy")

    no_client = cw_get(http, f"{acct.base}/system/info", headers={})
    wrong_key = cw_get(http, f"{acct.base}/system/info", auth=("simco+sim-public", "nope"))

    assert no_client.status_code == 401 and no_client.json()["code"] == "Unauthorized"
    assert wrong_key.status_code == 401 and wrong_key.json()["message"] == "Incorrect public/private key"
    assert cw_get(http, f"{acct.base}/system/info").json()["isCloud"] is True


def test_connectwise_answers_plain_arrays_paged_by_the_link_header(http, account):
    acct = account("connectwise_manage", "healthy")
    companies = cw_get(http, f"{acct.base}/company/companies", params={"pageSize": 1000})
    assert isinstance(companies.json(), list) and len(companies.json()) == 12
    assert "Link" not in companies.headers

    url, params, sizes, contacts, links = f"{acct.base}/company/contacts", {"pageSize": 1000}, [], [], []
    while url:
        answer = cw_get(http, url, params=params)
        assert isinstance(answer.json(), list)
        sizes.append(len(answer.json()))
        contacts += answer.json()
        links.append(answer.links)
        url, params = answer.links.get("next", {}).get("url"), None

    assert sizes == [1000, 1000, 345]
    assert links[0]["last"]["url"].endswith("pageSize=1000&page=3")
    assert links[1]["prev"]["url"].endswith("page=1") and "next" not in links[2]
    assert len({c["id"] for c in contacts}) == 2345
    assert {c["company"]["id"] for c in contacts} == {c["id"] for c in companies.json()}


def test_connectwise_page_size_defaults_to_25_and_is_capped_at_1000(http, account):
    acct = account("connectwise_manage", "healthy")

    assert len(cw_get(http, f"{acct.base}/company/contacts").json()) == 25
    assert len(cw_get(http, f"{acct.base}/company/contacts", params={"pageSize": 5000}).json()) == 1000


def test_connectwise_rate_limited_expired_and_server_error(http, account):
    acct = account("connectwise_manage", "rate-limited")
    answers = [cw_get(http, f"{acct.base}/company/companies") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json()["code"] == "TooManyRequests" and answers[2].headers["Retry-After"] == "1"

    expired = cw_get(http, f"{account('connectwise_manage', 'expired').base}/system/info")
    assert expired.status_code == 401 and expired.json()["message"] == "The API key has expired"

    failed = cw_get(http, f"{account('connectwise_manage', 'server-error').base}/company/contacts")
    assert failed.status_code == 500 and failed.json()["code"] == "UnexpectedError"


# -- Proofpoint Essentials -------------------------------------------------------------

PP_HEADERS = {"X-User": "admin@simcorp.example", "X-Password": "sim-password"}


def test_proofpoint_lists_every_user_in_one_answer(http, account):
    acct = account("proofpoint_essentials", "healthy")

    answer = http.get(f"{acct.base}/users", headers=PP_HEADERS, timeout=10)

    users = answer.json()["users"]
    assert list(answer.json()) == ["users"] and len(users) == 137
    assert len({u["primary_email"] for u in users}) == 137
    assert all(u["primary_email"].endswith("@simcorp.example") for u in users)
    assert (
        http.get(f"{acct.base}", headers=PP_HEADERS, timeout=10).json()["primary_domain"] == "simcorp.example"
    )


def test_proofpoint_refuses_wrong_headers_and_other_organisations(http, account):
    acct = account("proofpoint_essentials", "healthy")

    refused = http.get(f"{acct.base}/users", headers={**PP_HEADERS, "X-Password": "nope"}, timeout=10)
    other = http.get(
        acct.base.replace("simcorp.example", "other.example") + "/users", headers=PP_HEADERS, timeout=10
    )

    assert refused.status_code == 401 and "X-User" in refused.json()["message"]
    assert other.status_code == 404


def test_proofpoint_rate_limited_expired_and_server_error(http, account):
    acct = account("proofpoint_essentials", "rate-limited")
    first = http.get(f"{acct.base}/users", headers=PP_HEADERS, timeout=10)
    assert first.status_code == 429 and first.headers["Retry-After"] == "1"
    time.sleep(1)
    assert http.get(f"{acct.base}/users", headers=PP_HEADERS, timeout=10).status_code == 200
    assert acct.stats(http)["ignored_limit_429"] == 0

    expired = http.get(
        f"{account('proofpoint_essentials', 'expired').base}/users", headers=PP_HEADERS, timeout=10
    )
    assert expired.status_code == 401 and expired.json() == {
        "message": "The password for this account has expired"
    }

    failed = http.get(
        f"{account('proofpoint_essentials', 'server-error').base}/users", headers=PP_HEADERS, timeout=10
    )
    assert failed.status_code == 500


# -- Microsoft Graph -------------------------------------------------------------------

GRAPH_FORM = {
    "grant_type": "client_credentials",
    "client_id": "sim-client",
    "client_secret": "good-secret",
    "scope": "https://graph.microsoft.com/.default",
}
GRAPH_SELECT = "id,displayName,mail,userPrincipalName"


def graph_token(http, acct, **changes):
    return http.post(acct.token_url, data={**GRAPH_FORM, **changes}, timeout=10)


def test_graph_token_endpoint_answers_entra_errors(http, account):
    acct = account("microsoft_graph_mailboxes", "healthy")

    good = graph_token(http, acct).json()
    assert (good["token_type"], good["expires_in"]) == ("Bearer", 3599)
    other_tenant = http.post(acct.token_url.replace("sim-tenant", "other"), data=GRAPH_FORM, timeout=10)
    assert other_tenant.status_code == 400 and other_tenant.json()["error_codes"] == [90002]
    bad_scope = graph_token(http, acct, scope="User.Read.All")
    assert bad_scope.status_code == 400 and bad_scope.json()["error"] == "invalid_scope"
    bad_secret = graph_token(http, acct, client_secret="nope")
    assert bad_secret.status_code == 401 and bad_secret.json()["error_description"].startswith(
        "AADSTS7000215:"
    )

    expired = graph_token(http, account("microsoft_graph_mailboxes", "expired"))
    assert expired.status_code == 401 and expired.json()["error"] == "invalid_client"
    assert expired.json()["error_codes"] == [7000222]


def test_graph_users_follow_the_next_link(http, account):
    acct = account("microsoft_graph_mailboxes", "healthy")
    url, params, sizes, users = f"{acct.base}/users", {"$top": 999, "$select": GRAPH_SELECT}, [], []

    while url:
        token = graph_token(http, acct).json()["access_token"]
        body = http.get(url, params=params, headers=bearer(token), timeout=10).json()
        sizes.append(len(body["value"]))
        users += body["value"]
        url, params = body.get("@odata.nextLink"), None
        if url:
            assert "$skiptoken=" in url and f"$select={GRAPH_SELECT}" in url and "$top=999" in url

    assert sizes == [999, 999, 52]
    assert len({u["id"] for u in users}) == 2050
    assert all(set(u) == set(GRAPH_SELECT.split(",")) for u in users)
    assert sum(1 for u in users if u["mail"] is None) == 82


def test_graph_top_over_999_and_expired_tokens(http, account):
    acct = account("microsoft_graph_mailboxes", "healthy")
    token = graph_token(http, acct).json()["access_token"]

    too_big = http.get(f"{acct.base}/users", params={"$top": 1000}, headers=bearer(token), timeout=10)
    assert too_big.status_code == 400 and too_big.json()["error"]["code"] == "BadRequest"
    for _ in range(2):
        assert http.get(f"{acct.base}/users", headers=bearer(token), timeout=10).status_code == 200
    expired = http.get(f"{acct.base}/users", headers=bearer(token), timeout=10).json()["error"]
    assert expired["code"] == "InvalidAuthenticationToken"
    assert expired["message"] == "Lifetime validation failed, the token is expired."
    assert set(expired["innerError"]) == {"date", "request-id", "client-request-id"}


def test_graph_rate_limited_and_server_error(http, account):
    acct = account("microsoft_graph_mailboxes", "rate-limited")
    answers = [
        http.get(
            f"{acct.base}/users", headers=bearer(graph_token(http, acct).json()["access_token"]), timeout=10
        )
        for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert (
        answers[2].json()["error"]["code"] == "TooManyRequests" and answers[2].headers["Retry-After"] == "1"
    )

    failed_acct = account("microsoft_graph_mailboxes", "server-error")
    failed = http.get(
        f"{failed_acct.base}/users",
        headers=bearer(graph_token(http, failed_acct).json()["access_token"]),
        timeout=10,
    )
    assert failed.status_code == 503 and failed.json()["error"]["code"] == "serviceNotAvailable"


# -- HubSpot ----------------------------------------------------------------------------

HS_FORM = {
    "grant_type": "refresh_token",
    "client_id": "sim-client",
    "client_secret": "good-secret",
    "refresh_token": "sim-refresh-token",
}


def hs_token(http, acct, **changes):
    return http.post(acct.token_url, data={**HS_FORM, **changes}, timeout=10)


def test_hubspot_pages_contacts_by_the_after_cursor_with_rate_headers(http, account):
    acct = account("hubspot_contacts", "healthy")
    params, sizes, contacts, remaining = {"limit": 100}, [], [], []

    while params is not None:
        token = hs_token(http, acct).json()["access_token"]
        answer = http.get(
            f"{acct.base}/crm/v3/objects/contacts", params=params, headers=bearer(token), timeout=10
        )
        assert answer.headers["X-HubSpot-RateLimit-Max"] == "110"
        assert answer.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
        remaining.append(int(answer.headers["X-HubSpot-RateLimit-Remaining"]))
        body = answer.json()
        sizes.append(len(body["results"]))
        contacts += body["results"]
        after = body.get("paging", {}).get("next", {}).get("after")
        if after:
            assert body["paging"]["next"]["link"].endswith(f"after={quote(after, safe='')}")
        params = {"limit": 100, "after": after} if after else None

    assert sizes == [100] * 12 + [34]
    assert remaining == list(range(109, 96, -1))
    assert len({c["id"] for c in contacts}) == 1234
    assert all(c["properties"]["hs_object_id"] == c["id"] for c in contacts)


def test_hubspot_limit_over_100_and_expired_access_tokens(http, account):
    acct = account("hubspot_contacts", "healthy")
    answer = hs_token(http, acct).json()
    assert (answer["token_type"], answer["expires_in"], answer["refresh_token"]) == (
        "bearer",
        1800,
        "sim-refresh-token",
    )
    url, headers = f"{acct.base}/crm/v3/objects/contacts", bearer(answer["access_token"])

    assert (
        http.get(url, params={"limit": 101}, headers=headers, timeout=10).json()["category"]
        == "VALIDATION_ERROR"
    )
    for _ in range(2):
        assert http.get(url, headers=headers, timeout=10).status_code == 200
    expired = http.get(url, headers=headers, timeout=10)
    assert expired.status_code == 401 and expired.json()["category"] == "EXPIRED_AUTHENTICATION"


def test_hubspot_rate_limited_window_has_no_retry_after(http, account):
    acct = account("hubspot_contacts", "rate-limited")
    url = f"{acct.base}/crm/v3/objects/contacts"
    answers = [
        http.get(url, headers=bearer(hs_token(http, acct).json()["access_token"]), timeout=10)
        for _ in range(11)
    ]

    assert [a.status_code for a in answers] == [200] * 10 + [429]
    assert [a.headers["X-HubSpot-RateLimit-Remaining"] for a in answers] == [
        str(n) for n in range(9, -1, -1)
    ] + ["0"]
    limited = answers[-1]
    assert limited.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "1000"
    assert "Retry-After" not in limited.headers
    assert (
        limited.json()["errorType"] == "RATE_LIMIT" and limited.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    )
    time.sleep(1)
    assert (
        http.get(url, headers=bearer(hs_token(http, acct).json()["access_token"]), timeout=10).status_code
        == 200
    )
    assert (acct.stats(http)["answered_429"], acct.stats(http)["ignored_limit_429"]) == (1, 0)


def test_hubspot_rotate_replaces_the_refresh_token_and_kills_the_old_one(http, account):
    acct = account("hubspot_contacts", "rotate")

    first = hs_token(http, acct).json()["refresh_token"]
    stale = hs_token(http, acct)
    second = hs_token(http, acct, refresh_token=first).json()["refresh_token"]

    assert first != "sim-refresh-token" and second not in (first, "sim-refresh-token")
    assert stale.status_code == 400 and stale.json()["status"] == "BAD_REFRESH_TOKEN"
    assert hs_token(http, acct, refresh_token=first).status_code == 400
    stats = http.get(f"{acct.root}/_control", timeout=10).json()
    assert stats["refresh_token"] == second
    assert (stats["requests"]["refresh_rotations"], stats["requests"]["stale_refresh_tokens"]) == (2, 2)


def test_hubspot_expired_and_server_error(http, account):
    expired = hs_token(http, account("hubspot_contacts", "expired"))
    assert expired.status_code == 400
    assert (
        expired.json()["status"] == "BAD_REFRESH_TOKEN"
        and expired.json()["message"] == "missing or invalid refresh token"
    )

    acct = account("hubspot_contacts", "server-error")
    failed = http.get(
        f"{acct.base}/crm/v3/objects/contacts",
        headers=bearer(hs_token(http, acct).json()["access_token"]),
        timeout=10,
    )
    assert failed.status_code == 500 and failed.json()["status"] == "error"
