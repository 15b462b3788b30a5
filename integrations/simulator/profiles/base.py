"""What every vendor profile shares: requests and answers, per-account state,
access tokens that run out, the rate budget, and the order checks run in.

A profile imitates one real vendor's API as its public documentation
describes it (paths, answer shapes, pagination, auth, error bodies, rate-limit
headers). Its URLs live under ``/profiles/VENDOR/SCENARIO[.LABEL]/``; the
label keeps the state of one test's account apart from another's, as in the
generic simulator. Standard library only.

Every API request goes through ``serve``, in this order: route (404 in the
vendor's shape), authentication (401), the rate budget (429), the
``server-error`` scenario (5xx), then the profile's view. Token requests go to
the profile's ``token`` view.
"""

import base64
import hashlib
import json
import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import ClassVar
from urllib.parse import parse_qs, quote

COMMON_SCENARIOS = ("healthy", "rate-limited", "expired", "server-error")

# Each account's request counters; GET /profiles/VENDOR/ACCOUNT/_control shows them.
COUNTERS = (
    "api_requests",  # token requests not included
    "token_requests",
    "tokens_issued",
    "expired_token_answers",  # 401s to an access token that ran out
    "answered_429",
    "ignored_limit_429",  # 429s to a request sent before an announced wait had run out
    "server_errors",
    "refresh_rotations",
    "stale_refresh_tokens",  # a refresh token used after it was rotated away
)


class ProfileError(Exception):
    """Raised by a view to answer at once (the vendor's error shape is in `answer`)."""

    def __init__(self, answer):
        super().__init__(answer.status)
        self.answer = answer


@dataclass
class Answer:
    status: int
    payload: object  # JSON-serialisable
    headers: dict = field(default_factory=dict)

    def body(self):
        return json.dumps(self.payload, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Limits:
    """A rate budget of `limit` requests (`first` for the very first one) and a `window` of seconds.

    By default the budget comes back only `window` seconds after the request that
    found it used up (a 429): how many requests pass before the 429 does not
    depend on how fast the client is, so a test can count on it. With
    `refills_by_time` it also comes back `window` seconds after it started,
    like a vendor's fixed window (for budgets that should never run out).
    """

    limit: int
    window: float
    first: int | None = None
    refills_by_time: bool = False


@dataclass
class Request:
    method: str
    path: tuple  # the segments after /profiles/VENDOR/ACCOUNT
    query: dict  # name -> [values]
    headers: object  # the handler's email.message.Message
    body: bytes
    root: str  # http://HOST/profiles/VENDOR/ACCOUNT
    scenario: str

    def arg(self, name, default=None):
        values = self.query.get(name)
        return values[-1] if values else default

    def form(self):
        text = self.body.decode("utf-8", "replace")
        return {key: values[-1] for key, values in parse_qs(text, keep_blank_values=True).items()}

    def json(self):
        try:
            value = json.loads(self.body.decode("utf-8") if self.body else "")
        except (ValueError, UnicodeDecodeError):
            return None
        return value if isinstance(value, dict) else None

    def bearer(self):
        scheme, _, token = (self.headers.get("Authorization") or "").strip().partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""

    def basic(self):
        """(user, password) of HTTP Basic auth, or None."""
        scheme, _, value = (self.headers.get("Authorization") or "").strip().partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, sep, password = (
                base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
            )
        except (ValueError, UnicodeDecodeError):
            return None
        return (user, password) if sep else None

    def url(self, *segments, **params):
        """An absolute URL under this account's root; the query keeps $ and , readable (as Graph's do)."""
        path = "/".join(quote(str(s), safe="") for s in segments)
        query = "&".join(
            f"{quote(k, safe='$')}={quote(str(v), safe='$,')}" for k, v in params.items() if v is not None
        )
        return f"{self.root}/{path}" + (f"?{query}" if query else "")


class State:
    """One account of one profile. Guarded by the store's lock."""

    def __init__(self):
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.tokens = {}  # access token -> API requests it may still make
        self.refresh_token = None  # the live one, once a profile sets it
        self.window_start = None  # when the current budget started
        self.window_used = 0
        self.windows = 0
        self.cooldown_until = None  # after a 429: when the budget comes back
        self.wait_until = 0.0  # the end of the last wait announced (Retry-After), monotonic


class Store:
    def __init__(self):
        self.lock = threading.Lock()
        self.states = {}


_store_lock = threading.Lock()


def store_for(server):
    """The profiles' state of one simulator process, created on first use."""
    with _store_lock:
        store = getattr(server, "profile_store", None)
        if store is None:
            store = server.profile_store = Store()
        return store


class Context:
    """A request's view of its account's state; every method takes the lock."""

    def __init__(self, store, key):
        self.store = store
        self.key = key
        with store.lock:
            self._state = store.states.setdefault(key, State())

    def count(self, name, by=1):
        with self.store.lock:
            self._state.counters[name] += by

    def stats(self):
        with self.store.lock:
            state = self._state
            return {
                "requests": dict(state.counters),
                "live_tokens": len(state.tokens),
                "refresh_token": state.refresh_token,
            }

    def reset(self):
        with self.store.lock:
            self.store.states.pop(self.key, None)

    # -- access tokens -------------------------------------------------------

    def issue_token(self, uses):
        token = "sim." + uuid.uuid4().hex
        with self.store.lock:
            self._state.tokens[token] = uses
            self._state.counters["tokens_issued"] += 1
        return token

    def check_token(self, token):
        """ "ok", "expired" (its answered requests are used up) or "unknown"."""
        with self.store.lock:
            left = self._state.tokens.get(token)
            if left is None:
                return "unknown"
            if left <= 0:
                self._state.counters["expired_token_answers"] += 1
                return "expired"
            return "ok"

    def spend_token(self, token):
        """One answered request less for the token (a 429 or a 5xx spends none)."""
        with self.store.lock:
            if token in self._state.tokens:
                self._state.tokens[token] -= 1

    # -- refresh tokens ------------------------------------------------------

    def refresh_token(self, initial):
        with self.store.lock:
            if self._state.refresh_token is None:
                self._state.refresh_token = initial
            return self._state.refresh_token

    def rotate_refresh_token(self, used):
        """A new refresh token in place of `used`, or None when `used` is not the live one."""
        with self.store.lock:
            if used != self._state.refresh_token:
                return None
            self._state.refresh_token = "sim-refresh-" + uuid.uuid4().hex[:16]
            self._state.counters["refresh_rotations"] += 1
            return self._state.refresh_token

    # -- the rate budget -----------------------------------------------------

    def take(self, limits, now=None):
        """(allowed, remaining, seconds until the budget comes back) for one request; counts 429s."""
        now = time.monotonic() if now is None else now
        with self.store.lock:
            state = self._state
            cooled = state.cooldown_until is not None and now >= state.cooldown_until
            expired = (
                limits.refills_by_time
                and state.window_start is not None
                and now >= state.window_start + limits.window
            )
            if state.window_start is None or cooled or expired:
                state.window_start, state.window_used, state.cooldown_until = now, 0, None
                state.windows += 1
            limit = limits.first if state.windows == 1 and limits.first is not None else limits.limit
            if state.cooldown_until is None and state.window_used >= limit:
                state.cooldown_until = now + limits.window
            if state.cooldown_until is not None:
                state.counters["answered_429"] += 1
                if now < state.wait_until:
                    state.counters["ignored_limit_429"] += 1
                return False, 0, state.cooldown_until - now
            state.window_used += 1
            reset_in = state.window_start + limits.window - now if limits.refills_by_time else limits.window
            return True, limit - state.window_used, max(0.0, reset_in)

    def announce_wait(self, seconds, now=None):
        now = time.monotonic() if now is None else now
        with self.store.lock:
            self._state.wait_until = max(self._state.wait_until, now + seconds)


class Profile:
    """One vendor. Subclasses set the class attributes and write the views."""

    key = ""  # = the manifest key
    label = ""
    scenarios: ClassVar[dict] = {}  # name -> one-line description; COMMON_SCENARIOS at least
    credentials = ""  # for the help text
    uses_tokens = False  # OAuth: Bearer access tokens that run out
    token_uses = 2  # API requests an access token gets answered before it answers 401 expired
    rate_limited = Limits(2, 1.0)
    healthy_limits = None  # a budget that also applies outside `rate-limited` (headers on every answer)
    sends_retry_after = True

    def urls(self, root):
        """{"base_url": ..., "auth.token_url": ...} of an account whose root URL is `root`."""
        raise NotImplementedError

    def help_lines(self):
        """Extra paragraphs for --help (paths, page sizes)."""
        return []

    def is_token_path(self, path):
        return False

    def token(self, ctx, request):
        raise NotImplementedError

    def route(self, request):
        """The view for a GET, or None (404)."""
        raise NotImplementedError

    def authenticate(self, ctx, request):
        """None, or the Answer refusing the request."""
        raise NotImplementedError

    def error(self, request, status, code, message):
        """An error Answer in the vendor's shape."""
        raise NotImplementedError

    def too_many(self, request):
        return self.error(request, 429, "rate_limited", "Too many requests")

    def server_error(self, request):
        return self.error(request, 500, "internal_error", "An internal error occurred")

    def rate_headers(self, limits, remaining, reset_in):
        """Headers every answer carries while a budget applies (none unless the vendor documents them)."""
        return {}

    def limits_for(self, scenario):
        return self.rate_limited if scenario == "rate-limited" else self.healthy_limits

    # -- shared checks ---------------------------------------------------------

    def check_bearer(self, ctx, request, *, missing, invalid, expired):
        """The usual Bearer check: `missing`, `invalid`, `expired` are Answers for each refusal."""
        token = request.bearer()
        if not token:
            return missing
        outcome = ctx.check_token(token)
        if outcome == "unknown":
            return invalid
        if outcome == "expired":
            return expired
        return None


def serve(profile, ctx, request):
    """The Answer to one request of one profile's account."""
    try:
        if profile.is_token_path(request.path):
            if request.method != "POST":
                return profile.error(request, 405, "method_not_allowed", "Use POST")
            ctx.count("token_requests")
            return profile.token(ctx, request)
        view = profile.route(request)
        if view is None:
            return profile.error(request, 404, "not_found", "No such resource")
        if request.method != "GET":
            return profile.error(request, 405, "method_not_allowed", "Use GET")
        ctx.count("api_requests")
        refusal = profile.authenticate(ctx, request)
        if refusal is not None:
            return refusal
        headers = {}
        limits = profile.limits_for(request.scenario)
        if limits is not None:
            allowed, remaining, reset_in = ctx.take(limits)
            if not allowed:
                answer = profile.too_many(request)
                answer.headers.update(profile.rate_headers(limits, 0, reset_in))
                if profile.sends_retry_after:
                    wait = max(1, math.ceil(reset_in))
                    answer.headers["Retry-After"] = str(wait)
                    ctx.announce_wait(wait)
                return answer
            headers = profile.rate_headers(limits, remaining, reset_in)
        if request.scenario == "server-error":
            ctx.count("server_errors")
            return profile.server_error(request)
        answer = view(ctx, request)
        if profile.uses_tokens and answer.status < 300:
            ctx.spend_token(request.bearer())
        answer.headers = {**headers, **answer.headers}
        return answer
    except ProfileError as exc:
        return exc.answer


# -- small helpers for the item data ------------------------------------------------


def fixed_uuid(*parts):
    """A UUID that is the same for the same parts, every run."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def pick(options, index, salt=0):
    return options[(index * 7 + salt) % len(options)]


def whole(text, *, minimum=0):
    """A whole number from a query value, or None."""
    if text is None or not text.strip().lstrip("-").isdigit() or len(text) > 12:
        return None
    value = int(text)
    return value if value >= minimum else None


# fmt: off
FIRST_NAMES = (
    "Ada", "Ben", "Chloe", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Keiko", "Liam",
    "Maya", "Nikolai", "Olga", "Pedro", "Quinn", "Rosa", "Sami", "Tara", "Uma", "Victor", "Wen", "Yara",
)
LAST_NAMES = (
    "Adler", "Baker", "Castro", "Dubois", "Eriksen", "Fischer", "Garcia", "Hansen", "Ibrahim", "Jensen",
    "Kowalski", "Larsen", "Moreau", "Nakamura", "Okafor", "Petrov", "Rossi", "Schmidt", "Tanaka", "Weber",
    "Xu", "Yilmaz", "Zhang",
)
# fmt: on
