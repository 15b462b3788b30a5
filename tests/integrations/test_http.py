"""The HTTP client's answers to what a vendor's connection does wrong.

Each case is a real socket on loopback answering with bytes written by hand:
a connection reset half-way through the body is the vendor being
unavailable (and is retried like a refused connection); a body shorter than
its Content-Length, a broken chunked encoding or a compression that does not
decode is a bad response. None of them is our internal error.
"""

import gzip
import itertools
import time

import pytest

from integrations.connectors import errors
from integrations.connectors.http import VendorHttp
from tests.plugins.raw_http import reset, serve_raw

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"


@pytest.fixture
def serve():
    servers = []

    def start(answer):
        server, port = serve_raw(answer)
        servers.append(server)
        return f"http://127.0.0.1:{port}/items"

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def http(settings):
    settings.VENDOR_MAX_RETRIES = 2
    settings.VENDOR_BACKOFF_SECONDS = 0
    with VendorHttp(sleep=lambda seconds: None) as client:
        yield client


def test_a_connection_reset_mid_body_is_retried_then_unavailable(serve, http):
    def answer(conn):
        conn.sendall(HEAD + b"Content-Length: 1000\r\n\r\n" + b'{"items": [' + b"1," * 100)
        reset(conn)

    url = serve(answer)
    with pytest.raises(errors.Unavailable, match="dropped the connection in the middle of its answer 3 times") as caught:
        http.request("GET", url)
    assert caught.value.code == "VENDOR_UNAVAILABLE"
    assert http.counters.http_requests == 3
    assert http.counters.retries == 2


def test_a_reset_once_then_a_good_answer_succeeds(serve, http):
    calls = itertools.count()

    def answer(conn):
        if next(calls) == 0:
            conn.sendall(HEAD + b"Content-Length: 1000\r\n\r\n" + b'{"items": [')
            reset(conn)
        else:
            conn.sendall(HEAD + b'Content-Length: 13\r\n\r\n{"items": []}')

    response = serve(answer)
    answer_json = http.request("GET", response).json()
    assert answer_json == {"items": []}
    assert http.counters.retries == 1


def test_a_body_shorter_than_its_content_length_is_a_bad_response(serve, http):
    url = serve(lambda conn: conn.sendall(HEAD + b'Content-Length: 500\r\n\r\n{"items": [1, 2'))
    with pytest.raises(errors.BadResponse, match="cut short") as caught:
        http.request("GET", url)
    assert caught.value.code == "VENDOR_BAD_RESPONSE"
    assert http.counters.retries == 0


def test_a_broken_chunked_body_is_a_bad_response(serve, http):
    url = serve(lambda conn: conn.sendall(HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\n{\"ite\r\nzz\r\n"))
    with pytest.raises(errors.BadResponse, match="cut short"):
        http.request("GET", url)


def test_a_body_that_does_not_decompress_is_a_bad_response(serve, http):
    garbage = b"\x1f\x8b\x08\x00" + b"not really gzip" * 10
    url = serve(
        lambda conn: conn.sendall(
            HEAD + b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(garbage) + garbage
        )
    )
    with pytest.raises(errors.BadResponse, match="could not be decoded"):
        http.request("GET", url)


def test_a_well_formed_compressed_body_is_read(serve, http):
    body = gzip.compress(b'{"items": [1, 2, 3]}')
    url = serve(
        lambda conn: conn.sendall(HEAD + b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    )
    assert http.request("GET", url).json() == {"items": [1, 2, 3]}


def test_a_body_that_stalls_is_a_timeout(serve, http, settings):
    settings.VENDOR_READ_TIMEOUT = 0.3
    stalled = []

    def answer(conn):
        conn.sendall(HEAD + b'Content-Length: 100\r\n\r\n{"items": [')
        stalled.append(conn.recv(1))  # waits for the client to give up

    with VendorHttp(sleep=lambda seconds: None) as client:
        with pytest.raises(errors.VendorTimeout, match="did not answer within 0.3 s"):
            client.request("GET", serve(answer))


# -- bounded answers -------------------------------------------------------------------

MEASURE_RSS = r"""
import json, resource, sys, django
django.setup()
from integrations.connectors import errors
from integrations.connectors.http import VendorHttp
url = sys.argv[1]
# Warm up: imports and the first connection cost memory of their own.
with VendorHttp() as http:
    http.request("GET", url + "?small=1")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
outcome = "returned"
try:
    with VendorHttp() as http:
        http.request("GET", url)
except errors.ConnectorError as exc:
    outcome = exc.code + ": " + exc.message
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"grew_kib": after - before, "outcome": outcome}))
"""


@pytest.mark.slow
def test_a_300_mb_answer_is_cut_off_without_filling_the_memory(serve):
    """In a fresh process, so that its peak RSS says what this one request cost."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    def answer(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")  # no length: read to the end
        block = b"0" * (1024 * 1024)
        conn.sendall(b'{"items": "')
        try:
            for _ in range(300):
                conn.sendall(block)
        except OSError:
            pass  # the client stopped reading, as it should

    served = []

    def answer_small_or_big(conn):
        served.append(1)
        if len(served) == 1:  # the warm-up
            conn.sendall(HEAD + b"Content-Length: 2\r\n\r\n{}")
        else:
            answer(conn)

    url = serve(answer_small_or_big)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "VENDOR_MAX_RESPONSE_BYTES": str(50 * 1024 * 1024)}
    result = subprocess.run(
        [sys.executable, "-c", MEASURE_RSS, url],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert measured["outcome"].startswith("VENDOR_BAD_RESPONSE: The vendor's answer is larger than 50 MB")
    assert measured["grew_kib"] < 60 * 1024, measured


def test_a_declared_length_over_the_limit_is_refused_before_reading(serve, http, settings):
    settings.VENDOR_MAX_RESPONSE_BYTES = 1000
    http.max_bytes = 1000
    url = serve(lambda conn: conn.sendall(HEAD + b"Content-Length: 5000000\r\n\r\n" + b"0" * 1000))
    with pytest.raises(errors.BadResponse, match="larger than"):
        http.request("GET", url)


def test_a_person_waiting_is_not_held_by_a_retry_after(serve, settings):
    settings.WEB_VENDOR_BUDGET_SECONDS = 15
    calls = []

    def answer(conn):
        calls.append(1)
        conn.sendall(b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 60\r\nContent-Length: 0\r\n\r\n")

    started = time.monotonic()
    with VendorHttp.for_web() as web, pytest.raises(errors.RateLimited, match="try again later"):
        web.request("GET", serve(answer))
    assert time.monotonic() - started < 2
    assert calls == [1]


def test_a_person_waiting_gets_an_answer_within_the_budget(serve, settings):
    settings.WEB_VENDOR_BUDGET_SECONDS = 1
    settings.VENDOR_READ_TIMEOUT = 30

    def answer(conn):
        conn.sendall(HEAD + b"Content-Length: 100\r\n\r\n{")
        for _ in range(40):  # a byte every 0.1 s: never idle long enough for the read timeout
            time.sleep(0.1)
            try:
                conn.sendall(b" ")
            except OSError:
                return

    started = time.monotonic()
    with VendorHttp.for_web() as web, pytest.raises(errors.VendorTimeout):
        web.request("GET", serve(answer))
    assert time.monotonic() - started < 2.5
