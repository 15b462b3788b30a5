"""Limits against guessing and abuse: fixed-window counters in Django's cache.

Each limit is a setting `(count, seconds)` in RATE_LIMITS. `hit(name, key)`
counts one attempt and returns None while the count is within the limit, or
the seconds until the window ends once it is over. The counters live in the
default cache: Redis when REDIS_URL is set (shared by every process and
machine), a per-process memory cache otherwise (development).

Logins are limited by django-axes (per username and address, with a staff
unlock); everything else that can be guessed or abused goes through here.
"""

import hashlib
import time

from django.conf import settings
from django.core.cache import cache


class Limited(Exception):
    """Over the limit; `retry_after` whole seconds until it lifts."""

    def __init__(self, name, retry_after):
        self.name = name
        self.retry_after = max(1, int(retry_after))
        super().__init__(f"Too many attempts; try again in {describe_wait(self.retry_after)}.")


def describe_wait(seconds):
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{round(seconds / 60)} minutes"


def _key(name, key, window_start):
    digest = hashlib.sha256(str(key).encode()).hexdigest()[:32]
    return f"limit:{name}:{digest}:{window_start}"


def hit(name, key, *, count=1):
    """Count an attempt for (name, key); seconds to wait if it is over the limit, else None."""
    limit, window = settings.RATE_LIMITS[name]
    now = time.time()
    window_start = int(now // window * window)
    cache_key = _key(name, key, window_start)
    if cache.add(cache_key, count, timeout=window + 5):
        used = count
    else:
        try:
            used = cache.incr(cache_key, count)
        except ValueError:  # expired between add and incr
            cache.add(cache_key, count, timeout=window + 5)
            used = count
    if used > limit:
        return window_start + window - now
    return None


def over(name, key):
    """Seconds to wait if (name, key) is already over its limit, without counting an attempt."""
    limit, window = settings.RATE_LIMITS[name]
    now = time.time()
    window_start = int(now // window * window)
    used = cache.get(_key(name, key, window_start), 0)
    if used >= limit:
        return window_start + window - now
    return None


def check(name, key):
    """Count an attempt; raise Limited when over the limit."""
    wait = hit(name, key)
    if wait is not None:
        raise Limited(name, wait)


def client_address(request):
    """The client's address: REMOTE_ADDR, or from X-Forwarded-For behind TRUSTED_PROXY_COUNT proxies."""
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "")


def axes_client_address(request):
    """AXES_CLIENT_IP_CALLABLE: the same address for logins as for every other limit."""
    return client_address(request)


def limited_page(request, exc_or_wait, message):
    """A 429 page with Retry-After, for the portal and the public pages."""
    from django.shortcuts import render

    wait = exc_or_wait.retry_after if isinstance(exc_or_wait, Limited) else max(1, int(exc_or_wait))
    response = render(request, "limited.html", {"message": message, "wait": describe_wait(wait)}, status=429)
    response["Retry-After"] = str(wait)
    return response
