"""The one HTTP client every connector uses.

One `requests.Session` per run (connections are reused across pages), connect
and read timeouts, exponential back-off retries for 5xx answers and refused or
dropped connections, and 429 answers honoured by waiting their Retry-After.
Every bound is a setting. The counters end up on the SyncSession.

The body is read here, not inside `requests`, so that what goes wrong while
reading it has a catalog code: a connection reset mid-answer is the vendor
being unavailable (retried like a refused connection), a body shorter than its
Content-Length, a broken chunked encoding or an undecodable compression is a
bad response.
"""

import logging
import time
from dataclasses import dataclass

import requests
from django.conf import settings
from urllib3.exceptions import IncompleteRead, InvalidChunkLength, ReadTimeoutError

from integrations.connectors import errors

logger = logging.getLogger(__name__)


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
    """requests with the engine's timeouts, retries and counters."""

    def __init__(self, *, sleep=time.sleep, user_agent="SyncConsole/1.0"):
        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent
        self.timeout = (settings.VENDOR_CONNECT_TIMEOUT, settings.VENDOR_READ_TIMEOUT)
        self.max_retries = settings.VENDOR_MAX_RETRIES
        self.backoff = settings.VENDOR_BACKOFF_SECONDS
        self.max_retry_after = settings.VENDOR_MAX_RETRY_AFTER
        self.counters = HttpCounters()
        self._sleep = sleep

    def close(self):
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def request(self, method, url, **kwargs):
        """The response to a request, once it is neither a 5xx nor a 429.

        Raises Unavailable after the retries for 5xx and connection errors,
        VendorTimeout when the vendor is slower than the read timeout,
        RateLimited when a 429 asks for a longer wait than we accept (or keeps
        coming), and returns any other answer for the connector to classify.
        """
        kwargs.setdefault("timeout", self.timeout)
        attempt = 0
        rate_limited = 0
        while True:
            self.counters.http_requests += 1
            try:
                response = self.session.request(method, url, stream=True, **kwargs)
                _read_body(response, method, url)
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
                self._wait_backoff(attempt)
                continue

            if response.status_code == 429:
                wait = _retry_after_seconds(response)
                rate_limited += 1
                if wait is None:
                    wait = self.backoff * (2**rate_limited)
                if wait > self.max_retry_after or rate_limited > self.max_retries + 2:
                    raise errors.RateLimited(
                        f"The vendor kept rate limiting (asked to wait {wait:g} s).",
                        status=429,
                        retry_after=wait,
                    )
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
                self._wait_backoff(attempt)
                continue
            return response

    def _wait_backoff(self, attempt):
        self.counters.retries += 1
        self._sleep(self.backoff * (2 ** (attempt - 1)))


class _Dropped(Exception):
    """The connection broke while the body was being read."""


_TRUNCATED = (IncompleteRead, InvalidChunkLength)


def _read_body(response, method, url):
    """Read the streamed body into `response.content`, classifying what breaks.

    urllib3 wraps both a reset socket and a short body in ProtocolError, and
    requests turns that into ChunkedEncodingError (or ConnectionError): the
    wrapped reason tells them apart.
    """
    try:
        response.content  # noqa: B018 - reads the whole body
    except requests.exceptions.ContentDecodingError as exc:
        response.close()
        raise errors.BadResponse(
            f"The vendor's answer could not be decoded ({method} {_path(url)}: {_reason(exc)})."
        ) from exc
    except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError) as exc:
        response.close()
        if _caused_by(exc, (ReadTimeoutError, TimeoutError)):
            raise requests.exceptions.ReadTimeout(str(exc)) from exc
        if _caused_by(exc, _TRUNCATED):
            raise errors.BadResponse(
                f"The vendor's answer was cut short ({method} {_path(url)}: {_reason(exc)})."
            ) from exc
        raise _Dropped(str(exc)) from exc


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


def _reason(exc):
    return str(exc)[:200]


def _path(url):
    """The URL without its query string: queries may carry tokens."""
    return url.split("?", 1)[0]
