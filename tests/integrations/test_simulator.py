"""The vendor simulator, exercised over real HTTP against a live process."""

import json
import subprocess
import sys
import time

import pytest
import requests

from tests.plugins.simulator import REPO_ROOT, SimulatorProcess

# The project conftest may register the plugin too; registering a plugin
# module twice by name is a no-op for pytest.
pytest_plugins = ["tests.plugins.simulator"]

GOOD = {"X-API-Key": "good-key"}
SCENARIO_NAMES = [
    "healthy", "warnings", "expired-token", "invalid-key", "forbidden", "rate-limited",
    "flaky", "outage", "slow", "malformed", "unmapped", "big-N",
]


@pytest.fixture
def sim(vendor_simulator):
    return vendor_simulator


@pytest.fixture
def http():
    with requests.Session() as session:
        yield session


def get(http, sim, account, path="items", headers=GOOD, timeout=10, **params):
    return http.get(
        sim.url("/v1/%s/%s" % (account, path)), headers=headers, params=params, timeout=timeout
    )


def token(http, sim, account, secret="good-key", grant_type="client_credentials"):
    return http.post(
        sim.url("/oauth/token"),
        data={"grant_type": grant_type, "client_id": account, "client_secret": secret},
        timeout=10,
    )


def bearer(value):
    return {"Authorization": "Bearer %s" % value}


def walk_pages(http, sim, account, page_size, **params):
    ids, page, pages = [], 1, 0
    while page is not None:
        body = get(http, sim, account, page=page, page_size=page_size, **params).json()
        assert body["page"] == page
        ids += [item["id"] for item in body["items"]]
        page = body["next_page"]
        pages += 1
    return ids, body, pages


def walk_cursor(http, sim, account, page_size, **params):
    ids, cursor, pages = [], None, 0
    while True:
        query = dict(params, page_size=page_size)
        if cursor is not None:
            query["cursor"] = cursor
        body = get(http, sim, account, **query).json()
        ids += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, body, pages


# -- basics -----------------------------------------------------------------


def test_health(sim, http):
    response = http.get(sim.url("/health"), timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"ok": True}


def test_me_describes_the_account(sim, http):
    body = get(http, sim, "big-2500.t-me", "me").json()
    assert body["account"] == "big-2500.t-me"
    assert body["scenario"] == "big-2500"
    assert body["item_count"] == 2500
    assert body["server_time"].endswith("Z")


def test_accounts_discovery(sim, http):
    body = get(http, sim, "healthy.t-disc", "accounts").json()
    assert [a["id"] for a in body["accounts"]] == ["acct-1", "acct-2"]
    assert all(a["name"] for a in body["accounts"])


def test_unknown_account_and_endpoint(sim, http):
    for account in ("nonsense", "big-10000001", "healthy.bad label", "healthy."):
        response = get(http, sim, account, "me")
        assert response.status_code == 404, account
        assert response.json()["error"] == "unknown_account"
    response = get(http, sim, "healthy.t-unknown", "nope")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


# -- authentication -----------------------------------------------------------


def test_api_key_auth(sim, http):
    assert get(http, sim, "healthy.t-auth", "me").status_code == 200
    missing = get(http, sim, "healthy.t-auth", "me", headers={})
    assert missing.status_code == 401
    assert missing.json()["error"] == "missing_credentials"
    wrong = get(http, sim, "healthy.t-auth", "items", headers={"X-API-Key": "nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_key"


@pytest.mark.parametrize(
    "scenario, error, message",
    [
        ("expired-token", "token_expired", "The API key has expired"),
        ("invalid-key", "invalid_key", None),
    ],
)
def test_rotated_credentials(sim, http, scenario, error, message):
    account = scenario + ".t-rotate"
    old = get(http, sim, account, "me")
    assert old.status_code == 401
    assert old.json()["error"] == error
    if message:
        assert old.json()["message"] == message
    new = {"X-API-Key": "new-key"}
    assert get(http, sim, account, "me", headers=new).status_code == 200
    body = get(http, sim, account, headers=new, page_size=200).json()
    assert body["total"] == 120
    assert len({item["id"] for item in body["items"]}) == 120
    assert get(http, sim, account, headers={"X-API-Key": "other"}).json()["error"] == "invalid_key"
    # The rotated key also works for the OAuth flow.
    issued = token(http, sim, account, secret="new-key")
    assert issued.status_code == 200
    assert get(http, sim, account, "me", headers=bearer(issued.json()["access_token"])).status_code == 200


def test_oauth_client_credentials(sim, http):
    account = "healthy.t-oauth"
    issued = token(http, sim, account)
    assert issued.status_code == 200
    body = issued.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    access = body["access_token"]
    me = get(http, sim, account, "me", headers=bearer(access))
    assert me.status_code == 200
    assert get(http, sim, account, headers=bearer(access)).json()["total"] == 120

    # A token is bound to its account and cannot be forged.
    other = get(http, sim, "healthy.t-oauth-other", "me", headers=bearer(access))
    assert other.status_code == 401
    assert other.json()["error"] == "invalid_token"
    forged = access[:-4] + ("0000" if not access.endswith("0000") else "1111")
    bad = get(http, sim, account, "me", headers=bearer(forged))
    assert bad.status_code == 401
    assert bad.json()["error"] == "invalid_token"
    garbage = get(http, sim, account, "me", headers=bearer("garbage"))
    assert garbage.json()["error"] == "invalid_token"

    wrong_secret = token(http, sim, account, secret="nope")
    assert wrong_secret.status_code == 401
    assert wrong_secret.json()["error"] == "invalid_client"
    wrong_grant = token(http, sim, account, grant_type="password")
    assert wrong_grant.status_code == 400
    assert wrong_grant.json()["error"] == "unsupported_grant_type"
    assert token(http, sim, "expired-token.t-oauth").json()["error"] == "token_expired"

    # Rotating the key through the control API invalidates earlier tokens.
    sim.control(account, api_key="rotated")
    assert get(http, sim, account, "me", headers=bearer(access)).json()["error"] == "invalid_token"
    assert get(http, sim, account, "me").json()["error"] == "invalid_key"
    assert get(http, sim, account, "me", headers={"X-API-Key": "rotated"}).status_code == 200
    assert token(http, sim, account, secret="rotated").status_code == 200
    assert sim.stats(account)["requests"]["token"] == 3


def test_oauth_token_expires_and_server_stops_cleanly(http):
    with SimulatorProcess(slow_seconds=1, token_ttl=1) as short_lived:
        issued = token(http, short_lived, "healthy.t-ttl")
        assert issued.json()["expires_in"] == 1
        access = issued.json()["access_token"]
        assert get(http, short_lived, "healthy.t-ttl", "me", headers=bearer(access)).status_code == 200
        time.sleep(1.1)
        expired = get(http, short_lived, "healthy.t-ttl", "me", headers=bearer(access))
        assert expired.status_code == 401
        assert expired.json()["error"] == "token_expired"
        assert short_lived.stop() == 0


def test_log_has_requests_but_no_secrets(sim, http):
    account = "healthy.t-log"
    access = token(http, sim, account).json()["access_token"]
    get(http, sim, account, "me", headers=bearer(access))
    get(http, sim, account, "me", headers={"X-API-Key": "very-secret-key"})
    sim.control(account, api_key="another-secret-key")
    deadline = time.monotonic() + 5
    while "/v1/%s/me 401" % account not in sim.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    log = sim.log()
    assert "GET /v1/%s/me 200" % account in log
    assert "POST /oauth/token 200" in log
    for secret in ("good-key", "very-secret-key", "another-secret-key", access, "Bearer"):
        assert secret not in log


# -- pagination ---------------------------------------------------------------


def test_page_walk_sees_every_item_in_order(sim, http):
    ids, last, pages = walk_pages(http, sim, "big-2500.t-pages", 300)
    assert pages == 9
    assert len(ids) == len(set(ids)) == 2500
    assert ids == ["item-%07d" % i for i in range(1, 2501)]
    assert last["total"] == 2500
    assert last["next_page"] is None and last["next_cursor"] is None


def test_cursor_walk_sees_every_item_in_order(sim, http):
    ids, last, pages = walk_cursor(http, sim, "big-2500.t-cursor", 700)
    assert pages == 4
    assert ids == ["item-%07d" % i for i in range(1, 2501)]
    assert last["page"] is None
    assert last["total"] == 2500


def test_page_size_default_and_cap(sim, http):
    body = get(http, sim, "big-20000.t-size").json()
    assert body["page_size"] == 100 and len(body["items"]) == 100
    assert body["next_page"] == 2
    body = get(http, sim, "big-20000.t-size", page_size=99999).json()
    assert body["page_size"] == 5000 and len(body["items"]) == 5000
    assert get(http, sim, "big-0.t-size").json()["items"] == []
    beyond = get(http, sim, "healthy.t-size", page=99).json()
    assert beyond["items"] == [] and beyond["next_page"] is None


def test_item_shape_and_single_item(sim, http):
    account = "healthy.t-shape"
    first = get(http, sim, account, page_size=1).json()["items"][0]
    assert set(first) == {
        "id", "account_id", "name", "email", "quantity", "status", "updated_at", "url",
    }
    assert first["id"] == "item-0000001"
    assert first["account_id"] in ("acct-1", "acct-2")
    assert first["status"] == "active"
    assert first["updated_at"] == "2026-01-01T00:00:00Z"
    assert first["url"] == sim.url("/v1/%s/items/item-0000001" % account)
    assert http.get(first["url"], headers=GOOD, timeout=5).json() == first
    assert get(http, sim, account, "items/item-0000121").status_code == 404
    # Deterministic: the same scenario gives the same data under any label.
    assert get(http, sim, "healthy.t-shape2", page_size=1).json()["items"][0]["name"] == first["name"]
    accounts = {item["account_id"] for item in get(http, sim, account, page_size=120).json()["items"]}
    assert accounts == {"acct-1", "acct-2"}


@pytest.mark.parametrize(
    "params",
    [
        {"page": "0"},
        {"page": "x"},
        {"page": "-1"},
        {"page_size": "0"},
        {"page_size": "ten"},
        {"cursor": "%%%not-a-cursor"},
        {"cursor": "Zm9v"},
        {"updated_since": "yesterday"},
        {"page": "1", "cursor": ""},
    ],
)
def test_bad_query_parameters(sim, http, params):
    response = get(http, sim, "healthy.t-bad", **params)
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"] == "bad_request"
    assert body["message"]


# -- control API: changes and drops ------------------------------------------


def test_updated_since_returns_only_changed_items(sim, http):
    account = "healthy.t-since"
    cursor = get(http, sim, account, "me").json()["server_time"]
    assert get(http, sim, account, updated_since=cursor).json()["items"] == []
    everything = get(http, sim, account, updated_since="2025-12-31T00:00:00Z", page_size=500).json()
    assert everything["total"] == 120

    sim.control(account, change=["item-0000005", "item-0000077"])
    body = get(http, sim, account, updated_since=cursor).json()
    assert [item["id"] for item in body["items"]] == ["item-0000005", "item-0000077"]
    assert body["total"] == 2
    assert all(item["name"].endswith(" (v2)") for item in body["items"])
    assert all(item["updated_at"] > cursor for item in body["items"])

    next_cursor = body["server_time"]
    assert get(http, sim, account, updated_since=next_cursor).json()["items"] == []
    sim.control(account, change=["item-0000005"])
    again = get(http, sim, account, updated_since=next_cursor).json()["items"]
    assert [item["id"] for item in again] == ["item-0000005"]
    assert again[0]["name"].endswith(" (v3)")
    # The cursor form of the same query, one item per page.
    ids, _, _ = walk_cursor(http, sim, account, 1, updated_since=cursor)
    assert ids == ["item-0000005", "item-0000077"]
    # Offsets written with +00:00 are understood too.
    plus = get(http, sim, account, updated_since=cursor.replace("Z", "+00:00")).json()
    assert plus["total"] == 2


def test_a_page_served_again_is_the_same_until_the_account_changes(sim, http):
    """The simulator keeps the pages it served (state.PageCache): a change or a drop is served at once."""
    account = "healthy.t-cache"
    first = get(http, sim, account, page_size=50).json()
    again = get(http, sim, account, page_size=50).json()
    assert first["items"] == again["items"] and len(first["items"]) == 50
    assert list(first) == ["items", "page", "page_size", "next_page", "next_cursor", "total", "server_time"]

    sim.control(account, change=["item-0000007"])
    changed = get(http, sim, account, page_size=50).json()["items"]
    assert changed[6]["name"] == first["items"][6]["name"] + " (v2)"
    assert changed[:6] == first["items"][:6] and changed[7:] == first["items"][7:]

    sim.control(account, drop=["item-0000002"])
    dropped = get(http, sim, account, page_size=50).json()["items"]
    assert [item["id"] for item in dropped][:3] == ["item-0000001", "item-0000003", "item-0000004"]
    sim.reset(account)
    assert get(http, sim, account, page_size=50).json()["items"] == first["items"]


def test_the_page_cache_keeps_the_pages_used_last_within_its_size():
    from integrations.simulator.state import PageCache

    cache = PageCache(max_bytes=10)
    cache.put("a", b"1234")
    cache.put("b", b"5678")
    assert cache.get("a") == b"1234"  # now the most recent
    cache.put("c", b"90ab")
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (b"1234", None, b"90ab")
    assert cache.size == 8
    cache.put("huge", b"x" * 11)
    assert cache.get("huge") is None and cache.size == 8


def test_drop_removes_items(sim, http):
    account = "healthy.t-drop"
    state = sim.control(account, drop=["item-0000003", "item-0000100"])
    assert state["dropped"] == ["item-0000003", "item-0000100"]
    body = get(http, sim, account, page_size=50).json()
    assert body["total"] == 118
    ids, _, _ = walk_pages(http, sim, account, 50)
    assert len(ids) == 118
    assert "item-0000003" not in ids and "item-0000100" not in ids
    assert ids == sorted(ids)
    cursor_ids, _, _ = walk_cursor(http, sim, account, 7)
    assert cursor_ids == ids
    assert get(http, sim, account, "items/item-0000003").status_code == 404
    assert get(http, sim, account, "me").json()["item_count"] == 118
    sim.reset(account)
    assert get(http, sim, account).json()["total"] == 120


def test_control_validation_and_stats(sim, http):
    account = "healthy.t-control"
    url = sim.url("/_control/accounts/%s" % account)
    assert http.post(url, data="{not json", timeout=5).status_code == 400
    assert http.post(url, json=[1], timeout=5).status_code == 400
    unknown = http.post(url, json={"explode": True}, timeout=5)
    assert unknown.status_code == 400 and unknown.json()["error"] == "bad_request"
    assert http.post(url, json={"drop": ["item-0000999"]}, timeout=5).status_code == 400
    assert http.post(url, json={"drop": "item-0000001"}, timeout=5).status_code == 400
    assert http.post(url, json={"fail": "yes"}, timeout=5).status_code == 400
    assert http.post(sim.url("/_control/accounts/nonsense"), json={}, timeout=5).status_code == 404

    get(http, sim, account, "me")
    get(http, sim, account, "accounts")
    get(http, sim, account)
    get(http, sim, account)
    token(http, sim, account)
    requests_ = sim.stats(account)["requests"]
    assert requests_ == {"items": 2, "item": 0, "accounts": 1, "me": 1, "token": 1, "total": 5}
    sim.reset(account)
    assert sim.stats(account)["requests"]["total"] == 0


def test_fail_and_recover(sim, http):
    account = "warnings.t-recover"
    sim.control(account, fail=True)
    assert get(http, sim, account, "me").status_code == 503
    state = sim.control(account, recover=True)
    assert state["recovered"] and not state["failed"]
    body = get(http, sim, account, page_size=500).json()
    assert body["total"] == 120
    assert all("name" in item for item in body["items"])


# -- fault scenarios ----------------------------------------------------------


def test_warnings_items(sim, http):
    body = get(http, sim, "warnings.t-warn", page_size=500).json()
    items = body["items"]
    assert body["total"] == 121 and len(items) == 121
    ids = [item["id"] for item in items]
    assert ids.count("item-0000044") == 2 and len(set(ids)) == 120
    by_id = {item["id"]: item for item in items}
    assert "name" not in by_id["item-0000007"] and "name" not in by_id["item-0000031"]
    assert by_id["item-0000019"]["email"] == "not-an-email"
    assert by_id["item-0000053"]["quantity"] == -5
    clean = [i for i in by_id.values() if i["id"] not in
             ("item-0000007", "item-0000031", "item-0000019", "item-0000053")]
    assert all("@" in i["email"] and i["quantity"] >= 0 and i["name"] for i in clean)
    # The duplicate survives pagination across the page boundary it sits on.
    ids_paged, _, _ = walk_pages(http, sim, "warnings.t-warn", 44)
    assert ids_paged == ids
    ids_cursor, _, _ = walk_cursor(http, sim, "warnings.t-warn", 44)
    assert ids_cursor == ids


def test_forbidden(sim, http):
    account = "forbidden.t-403"
    assert get(http, sim, account, "me").status_code == 200
    for path in ("accounts", "items"):
        response = get(http, sim, account, path)
        assert response.status_code == 403
        assert response.json() == {
            "error": "forbidden", "message": "The API user lacks the Items:Read permission",
        }


def test_rate_limited(sim, http):
    account = "rate-limited.t-429"
    assert get(http, sim, account, page=1).status_code == 200
    for page in (2, 3):
        limited = get(http, sim, account, page=page)
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "1"
        assert limited.json()["error"] == "rate_limited"
        assert get(http, sim, account, page=page).status_code == 200
    assert get(http, sim, account, page=2).status_code == 200
    sim.reset(account)
    assert get(http, sim, account, page=2).status_code == 429


def test_flaky(sim, http):
    account = "flaky.t-5xx"
    assert [get(http, sim, account).status_code for _ in range(3)] == [503, 502, 200]
    assert get(http, sim, account, "me").status_code == 200
    sim.reset(account)
    assert get(http, sim, account).status_code == 503


def test_outage(sim, http):
    account = "outage.t-down"
    for path in ("me", "accounts", "items"):
        response = get(http, sim, account, path)
        assert response.status_code == 503
        assert response.json()["error"] == "unavailable"
        assert "Retry-After" not in response.headers
    assert token(http, sim, account).status_code == 503


def test_slow(sim, http):
    account = "slow.t-slow"
    started = time.monotonic()
    assert get(http, sim, account, "me", timeout=1).status_code == 200
    assert time.monotonic() - started < 1
    with pytest.raises(requests.Timeout):
        get(http, sim, account, timeout=1)


def test_malformed(sim, http):
    account = "malformed.t-json"
    first = get(http, sim, account, page=1, page_size=50)
    assert first.status_code == 200 and len(first.json()["items"]) == 50
    second = get(http, sim, account, page=2, page_size=50)
    assert second.status_code == 200
    assert second.headers["Content-Type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(second.text)
    # The same page reached by cursor is just as broken.
    cursor = first.json()["next_cursor"]
    with pytest.raises(json.JSONDecodeError):
        json.loads(get(http, sim, account, cursor=cursor, page_size=50).text)
    # One page holding everything holds the broken middle too: no page size reads it cleanly.
    for size in (100, 120, 500, 1000):
        with pytest.raises(json.JSONDecodeError):
            json.loads(get(http, sim, account, page=1, page_size=size).text)


def test_unmapped(sim, http):
    account = "unmapped.t-acct9"
    listed = {a["id"] for a in get(http, sim, account, "accounts").json()["accounts"]}
    assert listed == {"acct-1", "acct-2"}
    items = get(http, sim, account, page_size=500).json()["items"]
    orphans = [item["id"] for item in items if item["account_id"] == "acct-9"]
    assert orphans == ["item-%07d" % i for i in range(10, 121, 10)]
    assert {item["account_id"] for item in items if item["id"] not in orphans} <= listed


# -- scale --------------------------------------------------------------------


def test_big_account_deep_page_is_fast(sim, http):
    started = time.monotonic()
    body = get(http, sim, "big-1000000.t-deep", page=9000).json()
    assert time.monotonic() - started < 1
    assert body["total"] == 1000000
    assert body["items"][0]["id"] == "item-0899901"
    assert body["items"][-1]["id"] == "item-0900000"
    assert body["next_page"] == 9001


def test_reading_100000_items_takes_seconds_not_minutes(sim, http):
    started = time.monotonic()
    ids, last, pages = walk_pages(http, sim, "big-100000.t-speed", 5000)
    assert time.monotonic() - started < 10
    assert pages == 20 and len(ids) == 100000 and ids[-1] == "item-0100000"


# -- command line -------------------------------------------------------------


def test_help_lists_every_scenario():
    result = subprocess.run(
        [sys.executable, "manage.py", "vendor_simulator", "--help"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for name in SCENARIO_NAMES:
        assert name in result.stdout, name
    for option in ("--port", "--host", "--seed", "--slow-seconds", "--token-ttl",
                   "--page-size", "--max-page-size", "/_control/accounts/"):
        assert option in result.stdout
