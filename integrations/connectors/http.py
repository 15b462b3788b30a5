"""The one HTTP client every connector uses.

One `requests.Session` per run from `syncconsole.outbound` (connections are
reused across pages, and every connection is checked against the outbound
policy when it connects), connect and read timeouts, exponential back-off
retries for 5xx answers and refused or dropped connections, and 429 answers
honoured by waiting their Retry-After. Every bound is a setting. The counters
end up on the SyncSession.

The body is read here, not inside `requests`, so that what goes wrong while
reading it has a catalog code: a connection reset mid-answer is the vendor
being unavailable (retried like a refused connection), a body shorter than its
Content-Length, a broken chunked encoding or an undecodable compression is a
bad response, and an answer larger than VENDOR_MAX_RESPONSE_BYTES is cut off
as a bad response before it fills the memory.

Redirects are followed here too, only within the origin of the request:
credentials (headers, Basic auth) never travel to another host.

`VendorHttp.for_web()` is the profile for a person waiting on a page: no
Retry-After sleeps, one retry, WEB_VENDOR_BUDGET_SECONDS in all.
"""

import http.client
import logging
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests
from django.conf import settings
from urllib3.exceptions import (
    DecodeError,
    IncompleteRead,
    InvalidChunkLength,
    ProtocolError,
    ReadTimeoutError,
)

from integrations.connectors import errors
from syncconsole import outbound

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 5
CHUNK_BYTES = 256 * 1024


@dataclass
class HttpCounters:
    http_requests: int = 0
    retries: int = 0
    rate_limited_waits: int = 0


def _retry_after_seconds(response):
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class VendorHttp:
    """requests with the engine's timeouts, retries, limits and counters."""

    def __init__(
        self,
        *,
        sleep=time.sleep,
        user_agent="SyncConsole/1.0",
        budget=None,
        max_retries=None,
        wait_for_rate_limits=True,
    ):
        self.session = outbound.session(user_agent)
        self.timeout = (settings.VENDOR_CONNECT_TIMEOUT, settings.VENDOR_READ_TIMEOUT)
        self.max_retries = settings.VENDOR_MAX_RETRIES if max_retries is None else max_retries
        self.backoff = settings.VENDOR_BACKOFF_SECONDS
        self.max_retry_after = settings.VENDOR_MAX_RETRY_AFTER
        self.max_bytes = settings.VENDOR_MAX_RESPONSE_BYTES
        self.request_budget = settings.VENDOR_REQUEST_BUDGET_SECONDS
        self.wait_for_rate_limits = wait_for_rate_limits
        # A budget for everything this client does (a person waiting), or None.
        self.deadline = None if budget is None else time.monotonic() + budget
        self.budget = budget
        self.counters = HttpCounters()
        self._sleep = sleep

    @classmethod
    def for_web(cls, **kwargs):
        """For calls made while a person waits on a page: bounded in time, no long waits."""
        return cls(budget=settings.WEB_VENDOR_BUDGET_SECONDS, max_retries=1, wait_for_rate_limits=False, **kwargs)

    def close(self):
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def request(self, method, url, **kwargs):
        """The response to a request, once it is neither a 5xx nor a 429.

        Raises Unavailable after the retries for 5xx and connection errors,
        VendorTimeout when the vendor is slower than the read timeout or the
        request's time budget, RateLimited when a 429 asks for a longer wait
        than we accept (or keeps coming), BadResponse when the body is cut
        short, cannot be decoded or is too large, DestinationRefused when the
        address or a redirect is not allowed, and returns any other answer
        for the connector to classify.
        """
        started = time.monotonic()
        deadline = started + self.request_budget
        if self.deadline is not None:
            deadline = min(deadline, self.deadline)
        attempt = 0
        rate_limited = 0
        while True:
            self.counters.http_requests += 1
            try:
                response = self._send(method, url, deadline, **kwargs)
            except requests.exceptions.ReadTimeout as exc:
                raise errors.VendorTimeout(
                    f"The vendor did not answer within {self.timeout[1]:g} s ({method} {_path(url)})."
                ) from exc
            except (requests.exceptions.ConnectionError, requests.exceptions.ConnectTimeout, _Dropped) as exc:
                if attempt >= self.max_retries:
                    if isinstance(exc, _Dropped):
                        message = (
                            f"The vendor dropped the connection in the middle of its answer "
                            f"{attempt + 1} times ({method} {_path(url)})."
                        )
                    else:
                        message = f"Could not connect to the vendor after {attempt + 1} attempts ({_path(url)})."
                    raise errors.Unavailable(message) from exc
                attempt += 1
                self._wait_backoff(attempt, deadline, method, url)
                continue

            if response.status_code == 429:
                wait = _retry_after_seconds(response)
                rate_limited += 1
                if wait is None:
                    wait = self.backoff * (2**rate_limited)
                if not self.wait_for_rate_limits:
                    raise errors.RateLimited(
                        f"The vendor is rate limiting right now and asked us to wait {wait:g} s; try again later.",
                        status=429,
                        retry_after=wait,
                    )
                if wait > self.max_retry_after or rate_limited > self.max_retries + 2:
                    raise errors.RateLimited(
                        f"The vendor kept rate limiting (asked to wait {wait:g} s).",
                        status=429,
                        retry_after=wait,
                    )
                self._check_time(deadline, wait, method, url)
                self.counters.rate_limited_waits += 1
                logger.info("rate limited, waiting %.1f s as the vendor asks", wait)
                self._sleep(wait)
                continue

            if response.status_code >= 500:
                if attempt >= self.max_retries:
                    raise errors.Unavailable(
                        f"The vendor answered {response.status_code} {response.reason} "
                        f"{attempt + 1} times ({_path(url)}).",
                        status=response.status_code,
                    )
                attempt += 1
                self._wait_backoff(attempt, deadline, method, url)
                continue
            return response

    def _send(self, method, url, deadline, **kwargs):
        """One request and the redirects it leads to within its origin; the body read and bounded."""
        kwargs.setdefault("timeout", self._timeout(deadline, method, url))
        kwargs["allow_redirects"] = False
        for _ in range(MAX_REDIRECTS + 1):
            try:
                response = self.session.request(method, url, stream=True, **kwargs)
            except outbound.DestinationRefused as exc:
                raise errors.DestinationRefused(str(exc)) from exc
            except requests.exceptions.InvalidSchema as exc:
                raise errors.DestinationRefused(f"Only http and https addresses can be used ({_path(url)}).") from exc
            if not response.is_redirect:
                _read_body(response, method, url, self.max_bytes, deadline)
                return response
            response.close()
            target = urljoin(url, response.headers["Location"])
            if outbound.origin(target) != outbound.origin(url):
                raise errors.DestinationRefused(
                    f"The vendor redirected {method} {_path(url)} to another site ({_origin_text(target)}); "
                    "credentials are not sent there. Use that address in the integration's settings if it is right."
                )
            if response.status_code == 303 and method != "HEAD":
                method = "GET"
                kwargs.pop("data", None)
                kwargs.pop("json", None)
            url = target
            kwargs["timeout"] = self._timeout(deadline, method, url)
        raise errors.BadResponse(f"The vendor redirected more than {MAX_REDIRECTS} times ({method} {_path(url)}).")

    def _timeout(self, deadline, method, url):
        remaining = self._check_time(deadline, 0, method, url)
        return (min(self.timeout[0], remaining), min(self.timeout[1], remaining))

    def _check_time(self, deadline, wait, method, url):
        """The seconds left before the deadline, after a wait of `wait`; VendorTimeout if none."""
        remaining = deadline - time.monotonic() - wait
        if remaining <= 0:
            if self.deadline is not None and deadline == self.deadline:
                raise errors.VendorTimeout(
                    f"The vendor did not answer in time (within {self.budget:g} s); nothing was saved. "
                    "Try again in a few minutes."
                )
            raise errors.VendorTimeout(
                f"The request took longer than its {self.request_budget:g} s budget ({method} {_path(url)})."
            )
        return remaining

    def _wait_backoff(self, attempt, deadline, method, url):
        wait = self.backoff * (2 ** (attempt - 1))
        self._check_time(deadline, wait, method, url)
        self.counters.retries += 1
        self._sleep(wait)


class _Dropped(Exception):
    """The connection broke while the body was being read."""


_TRUNCATED = (IncompleteRead, InvalidChunkLength, http.client.IncompleteRead)


def _read_body(response, method, url, max_bytes, deadline):
    """Read the streamed body into `response._content`, bounded in size and time, classifying what breaks.

    `read1` returns what has arrived (decompressed at most CHUNK_BYTES at a
    time), so a vendor that sends a byte now and then still meets the
    deadline, and a compressed answer cannot expand past the limit unseen.
    urllib3 wraps both a reset socket and a short body in ProtocolError: the
    wrapped reason tells them apart.
    """
    too_large = errors.BadResponse(
        f"The vendor's answer is larger than {_megabytes(max_bytes)}, the most we read "
        f"({method} {_path(url)}); it was not read."
    )
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        response.close()
        raise too_large
    chunks, size = [], 0
    try:
        while True:
            chunk = response.raw.read1(CHUNK_BYTES, decode_content=True)
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                raise too_large
            if time.monotonic() > deadline:
                raise errors.VendorTimeout(
                    f"The vendor's answer was still arriving when this request's time ran out "
                    f"({method} {_path(url)}, {size} bytes so far)."
                )
            chunks.append(chunk)
    except errors.ConnectorError:
        response.close()
        raise
    except (DecodeError, requests.exceptions.ContentDecodingError) as exc:
        response.close()
        raise errors.BadResponse(
            f"The vendor's answer could not be decoded ({method} {_path(url)}: {_reason(exc)})."
        ) from exc
    except (ReadTimeoutError, TimeoutError) as exc:
        response.close()
        raise requests.exceptions.ReadTimeout(str(exc)) from exc
    except (ProtocolError, OSError, requests.exceptions.RequestException) as exc:
        response.close()
        if _caused_by(exc, (ReadTimeoutError, TimeoutError)):
            raise requests.exceptions.ReadTimeout(str(exc)) from exc
        if _caused_by(exc, _TRUNCATED):
            raise errors.BadResponse(
                f"The vendor's answer was cut short ({method} {_path(url)}: {_reason(exc)})."
            ) from exc
        raise _Dropped(str(exc)) from exc
    response._content = b"".join(chunks)
    response._content_consumed = True
    response.close()


def _caused_by(exc, types):
    """Whether `exc` or anything it wraps (args, __cause__, __context__) is one of `types`."""
    seen = set()
    pending = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, types):
            return True
        if isinstance(current, BaseException):
            pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
            pending.extend((current.__cause__, current.__context__))
    return False


def _megabytes(size):
    return f"{size / (1024 * 1024):g} MB"


def _reason(exc):
    return str(exc)[:200]


def _origin_text(url):
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _path(url):
    """The URL without its query string: queries may carry tokens."""
    return url.split("?", 1)[0]
