"""The one HTTP client every connector uses.

One `requests.Session` per run from `syncconsole.outbound` (connections are
reused across pages, and every connection is checked against the outbound
policy when it connects), connect and read timeouts, exponential back-off
retries for 5xx answers and refused or dropped connections, and 429 answers
honoured by waiting their Retry-After. Every bound is a setting. The counters
end up on the SyncSession.

The vendor's rate-limit headers (`connectors.ratelimit`: Retry-After on any
answer, X-RateLimit-*, the IETF RateLimit fields, or names the connector
declares) are read after every answer: when they say the budget is used up,
the next request waits for the reset before it is sent, so a run slows down
instead of meeting a 429. A wait longer than VENDOR_MAX_RETRY_AFTER or the
time left raises RateLimited before sending.

TLS is always verified (`connectors.tls`). An integration whose server has
its own certificate authority gives its CA certificate (PEM, `ca_certificate`):
it is trusted besides the usual CAs, for that client only. A certificate that
does not verify is VENDOR_TLS_INVALID, saying why, and is not retried.

The body is read here, not inside `requests`, so that what goes wrong while
reading it has a catalog code: a connection reset mid-answer is the vendor
being unavailable (retried like a refused connection), a body shorter than its
Content-Length, a broken chunked encoding or an undecodable compression is a
bad response, and an answer larger than VENDOR_MAX_RESPONSE_BYTES is cut off
as a bad response before it fills the memory.

Redirects are followed here too, only within the origin of the request:
credentials (headers, Basic auth) never travel to another host.

`VendorHttp.for_web()` is the profile for a person waiting on a page: no
Retry-After or rate-limit sleeps, one retry, WEB_VENDOR_BUDGET_SECONDS in all.
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

from integrations.connectors import errors, ratelimit
from integrations.connectors.tls import VERIFY_ERRORS, ca_certificate_problem, certificate_failure, trusting
from syncconsole import outbound

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 5
CHUNK_BYTES = 256 * 1024


@dataclass
class HttpCounters:
    http_requests: int = 0
    retries: int = 0
    rate_limited_waits: int = 0


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
        ca_certificate=None,
        rate_limit_headers=None,
    ):
        # A ca_certificate that does not parse fails every request with its reason, so
        # that a run built on it ends with that outcome rather than before it starts.
        if isinstance(ca_certificate, str) and not ca_certificate.strip():
            ca_certificate = None
        self._tls_problem = ca_certificate_problem(ca_certificate) if ca_certificate else None
        context = trusting(ca_certificate) if ca_certificate and not self._tls_problem else None
        self.session = outbound.session(user_agent, ssl_context=context)
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
        self.set_rate_limit_headers(rate_limit_headers)
        self._sleep = sleep
        self._held = None  # (monotonic time the next request may go, the Pause that says so)

    @classmethod
    def for_web(cls, **kwargs):
        """For calls made while a person waits on a page: bounded in time, no long waits."""
        return cls(budget=settings.WEB_VENDOR_BUDGET_SECONDS, max_retries=1, wait_for_rate_limits=False, **kwargs)

    @classmethod
    def for_integration(cls, integration, web=False, **kwargs):
        """The client for this integration's vendor: its CA certificate trusted; the web profile if `web`."""
        kwargs.setdefault("ca_certificate", integration.settings.get("ca_certificate") or None)
        return cls.for_web(**kwargs) if web else cls(**kwargs)

    def set_rate_limit_headers(self, names):
        """Read the vendor's own remaining/reset headers, {"remaining": ..., "reset": ...}, either or both.

        They replace X-RateLimit-Remaining/-Reset; the IETF fields and
        Retry-After are read anyway. ValueError for another key.
        """
        self.rate_limit_headers = ratelimit.header_names(names)

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
        request's time budget, RateLimited when a 429 or the vendor's rate-limit
        headers ask for a longer wait than we accept (or 429s keep coming),
        BadResponse when the body is cut short, cannot be decoded or is too
        large, DestinationRefused when the address or a redirect is not
        allowed, TlsCertificateInvalid when the server's certificate does not
        verify, and returns any other answer for the connector to classify.
        """
        if kwargs.get("verify", True) is not True or self.session.verify is not True:
            raise ValueError(
                "VendorHttp always verifies TLS certificates; "
                "give ca_certificate to trust a private certificate authority."
            )
        if self._tls_problem:
            raise errors.TlsCertificateInvalid(self._tls_problem)
        started = time.monotonic()
        deadline = started + self.request_budget
        if self.deadline is not None:
            deadline = min(deadline, self.deadline)
        attempt = 0
        rate_limited = 0
        while True:
            self._wait_if_held(deadline, method, url)
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

            pause = ratelimit.pause_for(response.headers, self.rate_limit_headers)
            if response.status_code == 429:
                rate_limited += 1
                wait = self.backoff * (2**rate_limited) if pause is None else pause.seconds
                if not self.wait_for_rate_limits:
                    raise errors.RateLimited(
                        f"The vendor is rate limiting right now and asked us to wait {_seconds(wait)} s; try again later.",
                        status=429,
                        retry_after=wait,
                    )
                if wait > self.max_retry_after or rate_limited > self.max_retries + 2:
                    raise errors.RateLimited(
                        f"The vendor kept rate limiting (asked to wait {_seconds(wait)} s).",
                        status=429,
                        retry_after=wait,
                    )
                self._check_time(deadline, wait, method, url)
                self.counters.rate_limited_waits += 1
                logger.info("rate limited, waiting %.1f s as the vendor asks", wait)
                self._sleep(wait)
                continue

            if response.status_code >= 500:
                asked = 0 if pause is None else pause.seconds
                longest = self.max_retry_after if self.wait_for_rate_limits else 0
                if attempt >= self.max_retries or asked > longest:
                    come_back = f" and asked us to come back in {_seconds(asked)} s" if asked else ""
                    raise errors.Unavailable(
                        f"The vendor answered {response.status_code} {response.reason} "
                        f"{attempt + 1} times{come_back} ({_path(url)}).",
                        status=response.status_code,
                        retry_after=asked or None,
                    )
                attempt += 1
                self._wait_backoff(attempt, deadline, method, url, at_least=asked)
                continue
            self._hold(pause)
            return response

    def _hold(self, pause):
        """Keep the next request back as long as `pause` says (or not at all)."""
        self._held = (time.monotonic() + pause.seconds, pause) if pause and pause.seconds > 0 else None

    def _wait_if_held(self, deadline, method, url):
        """Before sending, wait out what the last answer asked; RateLimited if we may not wait so long."""
        if self._held is None:
            return
        until, pause = self._held
        wait = until - time.monotonic()
        if wait <= 0:
            self._held = None
            return
        if pause.used_up:
            asked = f"The vendor's rate limit is used up for the next {_seconds(wait)} s ({pause.source})"
        else:
            asked = f"The vendor asked us to wait {_seconds(wait)} s before the next request (Retry-After)"
        if not self.wait_for_rate_limits:
            raise errors.RateLimited(f"{asked}; try again later.", retry_after=wait)
        if wait > self.max_retry_after:
            raise errors.RateLimited(
                f"{asked}, longer than the {self.max_retry_after:g} s we wait ({method} {_path(url)}).",
                retry_after=wait,
            )
        if deadline - time.monotonic() <= wait:
            raise errors.RateLimited(
                f"{asked}, longer than this request has left of its time ({method} {_path(url)}).",
                retry_after=wait,
            )
        self.counters.rate_limited_waits += 1
        logger.info("%s; waiting before the next request", asked)
        self._sleep(wait)
        self._held = None

    def _send(self, method, url, deadline, **kwargs):
        """One request and the redirects it leads to within its origin; the body read and bounded."""
        kwargs.setdefault("timeout", self._timeout(deadline, method, url))
        kwargs["allow_redirects"] = False
        for _ in range(MAX_REDIRECTS + 1):
            try:
                response = self.session.request(method, url, stream=True, **kwargs)
            except outbound.DestinationRefused as exc:
                raise errors.DestinationRefused(str(exc)) from exc
            except requests.exceptions.SSLError as exc:
                failure = _cause(exc, VERIFY_ERRORS)
                if failure is not None:
                    raise errors.TlsCertificateInvalid(certificate_failure(failure, url)) from exc
                raise
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

    def _wait_backoff(self, attempt, deadline, method, url, at_least=0):
        wait = max(self.backoff * (2 ** (attempt - 1)), at_least)
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
    """Whether `exc` or anything it wraps (args, reason, __cause__, __context__) is one of `types`."""
    return _cause(exc, types) is not None


def _cause(exc, types):
    """`exc` or the first exception it wraps that is one of `types`, or None."""
    seen = set()
    pending = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, types):
            return current
        if isinstance(current, BaseException):
            pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
            reason = getattr(current, "reason", None)  # urllib3's MaxRetryError keeps its cause there
            pending.extend((current.__cause__, current.__context__))
            pending.append(reason if isinstance(reason, BaseException) else None)
    return None


def _seconds(seconds):
    return f"{round(seconds, 1):g}"


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
