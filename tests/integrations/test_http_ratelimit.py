"""The vendor's rate-limit headers slow a run down before it meets a 429.

The vendor here is the standard library's HTTP server on loopback, allowing
LIMIT requests per WINDOW seconds and answering 429 past that, on a clock that
runs with real time plus every second the client's (fake) sleep waited. It
tells its state in one header dialect or another; the client reads it after
each answer and waits for the reset before the next request, never after the
one that used the budget up.
"""

import math
import re
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from integrations.connectors import errors, ratelimit
from integrations.connectors.http import VendorHttp

LIMIT = 3
WINDOW = 30


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        status, headers = self.server.vendor.answer(self.path)
        body = b"{}"
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, str(value))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Vendor:
    """A rate-limited vendor; `headers(remaining, reset_seconds)` is its dialect."""

    def __init__(self, headers=None, limit=LIMIT, window=WINDOW, answer=None):
        self.headers = headers or (lambda remaining, reset: {})
        self.limit = limit
        self.window = window
        self.custom = answer  # (vendor, path) -> (status, headers), replacing the counting
        self.started = time.monotonic()
        self.slept = 0.0
        self.used = {}  # window number -> requests counted in it
        self.events = []  # ("request", status) and ("sleep", seconds), in order
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.vendor = self
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/items"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def now(self):
        return time.monotonic() - self.started + self.slept

    def sleep(self, seconds):
        """The client's sleep: the vendor's clock moves on by `seconds` at once."""
        self.events.append(("sleep", seconds))
        self.slept += seconds

    def answer(self, path):
        if self.custom is not None:
            status, headers = self.custom(self, path)
        else:
            now = self.now()
            number = int(now // self.window)
            reset = math.ceil((number + 1) * self.window - now)
            used = self.used.get(number, 0)
            if used >= self.limit:
                status, headers = 429, {"Retry-After": reset, **self.headers(0, reset)}
            else:
                self.used[number] = used + 1
                status, headers = 200, self.headers(self.limit - used - 1, reset)
        self.events.append(("request", status))
        return status, headers

    @property
    def statuses(self):
        return [status for kind, status in self.events if kind == "request"]

    @property
    def sleeps(self):
        return [seconds for kind, seconds in self.events if kind == "sleep"]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def vendor():
    started = []

    def start(*args, **kwargs):
        started.append(Vendor(*args, **kwargs))
        return started[-1]

    yield start
    for peer in started:
        peer.close()


def epoch(reset):
    return math.ceil(time.time() + reset)


DIALECTS = {
    "x-ratelimit": (
        lambda remaining, reset: {
            "X-RateLimit-Limit": LIMIT,
            "X-RateLimit-Remaining": remaining,
            "X-RateLimit-Reset": reset,
        },
        None,
    ),
    "x-ratelimit-epoch": (
        lambda remaining, reset: {"X-RateLimit-Remaining": remaining, "X-RateLimit-Reset": epoch(reset)},
        None,
    ),
    "x-ratelimit-epoch-ms": (
        lambda remaining, reset: {"X-RateLimit-Remaining": remaining, "X-RateLimit-Reset": epoch(reset) * 1000},
        None,
    ),
    "ietf-separate": (
        lambda remaining, reset: {"RateLimit-Limit": LIMIT, "RateLimit-Remaining": remaining, "RateLimit-Reset": reset},
        None,
    ),
    "ietf-combined": (lambda remaining, reset: {"RateLimit": f"limit={LIMIT}, remaining={remaining}, reset={reset}"}, None),
    "ietf-structured": (
        lambda remaining, reset: {
            "RateLimit": f'"default";r={remaining};t={reset}',
            "RateLimit-Policy": f'"default";q={LIMIT};w={WINDOW}',
        },
        None,
    ),
    "custom-names": (
        lambda remaining, reset: {"X-Vendor-Calls-Left": remaining, "X-Vendor-Calls-Reset": reset},
        {"remaining": "X-Vendor-Calls-Left", "reset": "X-Vendor-Calls-Reset"},
    ),
}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_run_waits_for_the_reset_and_never_meets_a_429(vendor, dialect):
    headers, names = DIALECTS[dialect]
    peer = vendor(headers)

    with VendorHttp(sleep=peer.sleep, rate_limit_headers=names) as http:
        for _ in range(10):
            assert http.request("GET", peer.url).status_code == 200

    assert peer.statuses == [200] * 10
    assert len(peer.sleeps) == 3
    assert peer.sleeps == [pytest.approx(WINDOW, abs=1)] * 3
    assert http.counters.rate_limited_waits == 3
    assert (http.counters.http_requests, http.counters.retries) == (10, 0)
    # Each wait comes right after the answer that used the budget up, before the next request.
    kinds = [kind for kind, _ in peer.events]
    assert kinds == (["request"] * 3 + ["sleep"]) * 3 + ["request"]


def test_the_answer_that_uses_the_budget_up_is_returned_at_once(vendor):
    peer = vendor(DIALECTS["x-ratelimit"][0])

    with VendorHttp(sleep=peer.sleep) as http:
        for _ in range(LIMIT):
            http.request("GET", peer.url)
        assert peer.sleeps == []  # the wait belongs to the next request, if there is one
        http.request("GET", peer.url)

    assert peer.sleeps == [pytest.approx(WINDOW, abs=1)]


def test_without_rate_limit_headers_nothing_is_paced(vendor):
    peer = vendor(limit=100)

    with VendorHttp(sleep=peer.sleep) as http:
        for _ in range(10):
            http.request("GET", peer.url)

    assert (peer.statuses, peer.sleeps, http.counters.rate_limited_waits) == ([200] * 10, [], 0)


def test_a_budget_not_yet_used_up_or_without_a_reset_is_not_paced(vendor):
    answers = iter(
        [
            {"X-RateLimit-Remaining": 1, "X-RateLimit-Reset": 30},
            {"X-RateLimit-Remaining": 0},  # no reset: nothing says how long
            {"X-RateLimit-Remaining": 0, "X-RateLimit-Reset": 0},  # resets now
            {"RateLimit": '"default";r=5;t=30'},
            {},
        ]
    )
    peer = vendor(answer=lambda vendor, path: (200, next(answers)))

    with VendorHttp(sleep=peer.sleep) as http:
        for _ in range(5):
            http.request("GET", peer.url)

    assert (peer.statuses, peer.sleeps) == ([200] * 5, [])


def test_retry_after_on_a_successful_answer_holds_the_next_request(vendor):
    answers = iter([(200, {"Retry-After": "12"}), (200, {})])
    peer = vendor(answer=lambda vendor, path: next(answers))

    with VendorHttp(sleep=peer.sleep) as http:
        http.request("GET", peer.url)
        http.request("GET", peer.url)

    assert peer.sleeps == [pytest.approx(12, abs=0.5)]
    assert [kind for kind, _ in peer.events] == ["request", "sleep", "request"]


def test_retry_after_as_an_http_date(vendor):
    answers = iter([(200, {"Retry-After": formatdate(time.time() + 20, usegmt=True)}), (200, {})])
    peer = vendor(answer=lambda vendor, path: next(answers))

    with VendorHttp(sleep=peer.sleep) as http:
        http.request("GET", peer.url)
        http.request("GET", peer.url)

    assert peer.sleeps == [pytest.approx(20, abs=1.5)]


def test_a_503_with_retry_after_is_retried_after_that_long(vendor, settings):
    settings.VENDOR_BACKOFF_SECONDS = 0.05
    answers = iter([(503, {"Retry-After": "7"}), (200, {})])
    peer = vendor(answer=lambda vendor, path: next(answers))

    with VendorHttp(sleep=peer.sleep) as http:
        assert http.request("GET", peer.url).status_code == 200

    assert peer.sleeps == [7]
    assert (http.counters.retries, http.counters.rate_limited_waits) == (1, 0)


def test_a_503_asking_for_longer_than_we_wait_is_unavailable_at_once(vendor, settings):
    settings.VENDOR_MAX_RETRY_AFTER = 60
    peer = vendor(answer=lambda vendor, path: (503, {"Retry-After": "3600"}))

    with VendorHttp(sleep=peer.sleep) as http, pytest.raises(errors.Unavailable, match="come back in 3600 s"):
        http.request("GET", peer.url)

    assert (peer.statuses, peer.sleeps) == ([503], [])


def test_a_429_without_retry_after_waits_for_the_rate_limit_reset(vendor):
    answers = iter([(429, {"X-RateLimit-Remaining": 0, "X-RateLimit-Reset": 9}), (200, {})])
    peer = vendor(answer=lambda vendor, path: next(answers))

    with VendorHttp(sleep=peer.sleep) as http:
        assert http.request("GET", peer.url).status_code == 200

    assert peer.sleeps == [9]  # once: the wait for the 429 is not repeated before the retry
    assert http.counters.rate_limited_waits == 1


# -- bounds ------------------------------------------------------------------------------


def test_a_reset_further_than_we_wait_raises_before_sending(vendor, settings):
    settings.VENDOR_MAX_RETRY_AFTER = 60
    peer = vendor(lambda remaining, reset: {"X-RateLimit-Remaining": remaining, "X-RateLimit-Reset": 600}, limit=1)

    with VendorHttp(sleep=peer.sleep) as http:
        assert http.request("GET", peer.url).status_code == 200
        with pytest.raises(errors.RateLimited) as caught:
            http.request("GET", peer.url)

    assert caught.value.code == "RATE_LIMITED"
    assert re.fullmatch(
        r"The vendor's rate limit is used up for the next (600|599\.\d) s \(X-RateLimit-Remaining: 0\), "
        rf"longer than the 60 s we wait \(GET {re.escape(peer.url)}\)\.",
        caught.value.message,
    )
    assert caught.value.retry_after == pytest.approx(600, abs=1)
    assert (peer.statuses, peer.sleeps) == ([200], [])


def test_a_wait_longer_than_the_requests_time_left_raises_before_sending(vendor, settings):
    settings.VENDOR_REQUEST_BUDGET_SECONDS = 10
    peer = vendor(DIALECTS["x-ratelimit"][0], limit=1)

    with VendorHttp(sleep=peer.sleep) as http:
        http.request("GET", peer.url)
        with pytest.raises(errors.RateLimited, match="longer than this request has left of its time"):
            http.request("GET", peer.url)

    assert (peer.statuses, peer.sleeps) == ([200], [])


def test_a_person_waiting_is_never_paced(vendor, settings):
    settings.WEB_VENDOR_BUDGET_SECONDS = 15
    peer = vendor(DIALECTS["ietf-structured"][0], limit=1)

    with VendorHttp.for_web(sleep=peer.sleep) as web:
        assert web.request("GET", peer.url).status_code == 200
        with pytest.raises(errors.RateLimited) as caught:
            web.request("GET", peer.url)

    assert re.fullmatch(
        r'The vendor\'s rate limit is used up for the next (30|29\.\d) s \(RateLimit: "default";r=0\); try again later\.',
        caught.value.message,
    )
    assert (peer.statuses, peer.sleeps) == ([200], [])


def test_a_person_waiting_is_not_held_by_a_short_reset_either(vendor):
    answers = iter([(200, {"RateLimit": "limit=10, remaining=0, reset=1"}), (200, {})])
    peer = vendor(answer=lambda vendor, path: next(answers))

    with VendorHttp.for_web(sleep=peer.sleep) as web:
        web.request("GET", peer.url)
        with pytest.raises(errors.RateLimited, match="try again later"):
            web.request("GET", peer.url)

    assert peer.sleeps == []


def test_unknown_rate_limit_header_keys_are_refused():
    with pytest.raises(ValueError, match="Unknown rate-limit header keys"):
        VendorHttp(rate_limit_headers={"limit": "X-Limit"})


def test_a_connector_may_name_its_headers_after_the_client_is_made(vendor):
    peer = vendor(DIALECTS["custom-names"][0], limit=1)

    with VendorHttp(sleep=peer.sleep) as http:
        http.set_rate_limit_headers({"remaining": "X-Vendor-Calls-Left", "reset": "X-Vendor-Calls-Reset"})
        http.request("GET", peer.url)
        http.request("GET", peer.url)

    assert peer.statuses == [200, 200]
    assert peer.sleeps == [pytest.approx(WINDOW, abs=1)]


# -- reading the headers -----------------------------------------------------------------

NOW = 1_700_000_000


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30"}, 30),
        ({"X-RateLimit-Remaining": "-1", "X-RateLimit-Reset": "2.5"}, 2.5),
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(NOW + 45)}, 45),
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str((NOW + 45) * 1000)}, 45),
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(NOW - 45)}, 0),
        ({"X-RateLimit-Remaining": "1", "X-RateLimit-Reset": "30"}, None),
        ({"X-RateLimit-Remaining": "0"}, None),
        ({"X-RateLimit-Remaining": "none", "X-RateLimit-Reset": "30"}, None),
        ({"Retry-After": "15"}, 15),
        ({"Retry-After": formatdate(NOW + 90, usegmt=True)}, 90),
        ({"Retry-After": "soon"}, None),
        ({"RateLimit": '"day";r=500;t=3600, "minute";r=0;t=20'}, 20),
        ({"RateLimit": '"a,b";r=0;t=5'}, 5),
        ({"RateLimit": '"default";r=0', "RateLimit-Policy": '"default";q=100;w=60'}, 60),
        ({"RateLimit": '"default";r=0'}, None),
        ({"RateLimit": "limit=100, remaining=0, reset=30"}, 30),
        ({"RateLimit": "limit=100, remaining=1, reset=30"}, None),
        ({"RateLimit": 'garbage;;;==,,"'}, None),
        ({"Retry-After": "10", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "40"}, 40),  # the longest
    ],
)
def test_pause_for(headers, seconds):
    pause = ratelimit.pause_for(headers, now=NOW)
    assert (None if pause is None else pause.seconds) == seconds
