"""Scenario parsing and deterministic item generation for the vendor simulator.

Nothing here stores items: an item is computed from (seed, scenario kind,
index) with a few integer operations, and a listing is described by a slot
range plus the small set of slots that control calls dropped or changed. An
account of ten million items therefore costs nothing until a page of it is
asked for.

Vocabulary:

* index: the item number, 1..N; the item id is ``item-%07d`` % index.
* slot: a 0-based position in the account's full listing before drops. It is
  the same as index - 1, except in the ``warnings`` scenario where item 44 is
  listed twice (slots 43 and 44) and later items move one slot up.
* position: a 0-based position in what a request actually sees (dropped
  items removed, possibly filtered by ``updated_since``).
"""

import base64
import hashlib
import re
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

DEFAULT_ITEM_COUNT = 120
MAX_BIG_ITEM_COUNT = 10_000_000

BASE_INSTANT = datetime(2026, 1, 1, tzinfo=timezone.utc)
BASE_UPDATED_AT = "2026-01-01T00:00:00Z"

GOOD_KEY = "good-key"
ROTATED_KEY = "new-key"
# Keys the vendor once issued and has since expired or revoked, in every scenario:
# what a customer's stored credentials hold when the fix is to re-authenticate
# with the scenario's key (good-key for the demo's authentication failures).
EXPIRED_KEY = "expired-key"
REVOKED_KEY = "revoked-key"

VENDOR_ACCOUNTS = [
    {"id": "acct-1", "name": "Northwind Retail"},
    {"id": "acct-2", "name": "Contoso Wholesale"},
]
UNLISTED_ACCOUNT_ID = "acct-9"

# Scenario name -> one-line description. The order is the order of --help.
SCENARIOS = {
    "healthy": "120 clean items.",
    "warnings": (
        "120 items with problems: items 7 and 31 have no 'name', item 19 has "
        "email 'not-an-email', item 53 has quantity -5, and item 44 is listed "
        "twice (the extra copy counts in 'total', which is 121)."
    ),
    "expired-token": (
        "'good-key' answers 401 token_expired ('The API key has expired'); "
        "the rotated key 'new-key' works and the account then behaves like healthy."
    ),
    "invalid-key": (
        "'good-key' answers 401 invalid_key; the rotated key 'new-key' works "
        "and the account then behaves like healthy."
    ),
    "forbidden": (
        "/me succeeds; /accounts and /items answer 403 forbidden "
        "('The API user lacks the Items:Read permission')."
    ),
    "rate-limited": (
        "120 items; the first request for page 2 and the first for page 3 answer "
        "429 rate_limited with 'Retry-After: 1'; repeating the request succeeds."
    ),
    "flaky": (
        "120 items; the first two /items requests answer 503 then 502, then "
        "everything works (DELETE /_control/accounts/ACCOUNT restarts this)."
    ),
    "outage": (
        "every /v1 call and /oauth/token answers 503 unavailable, without Retry-After."
    ),
    "slow": "120 items; /items answers only after --slow-seconds.",
    "malformed": (
        "120 items; the page of /items that holds item 61 (the middle one) answers 200 "
        "with a truncated JSON body, whatever the page size."
    ),
    "unmapped": (
        "120 items; /accounts lists acct-1 and acct-2, but every 10th item "
        "(10, 20, ...) belongs to acct-9, which discovery does not list."
    ),
    "big-N": (
        "N clean items (N from 0 to 10,000,000, e.g. big-20000), spread over "
        "acct-1 and acct-2; generated on demand, never held in memory."
    ),
}

_NAMED = frozenset(name for name in SCENARIOS if name != "big-N")
_BIG_RE = re.compile(r"big-(0|[1-9][0-9]{0,7})")
_LABEL_RE = re.compile(r"[A-Za-z0-9_-]+")
ITEM_ID_RE = re.compile(r"item-([0-9]{7,8})")

# warnings
WARNING_MISSING_NAME = frozenset({7, 31})
WARNING_BAD_EMAIL = 19
WARNING_BAD_QUANTITY = 53
WARNING_DUPLICATE = 44

_FIRST = (
    "Ada", "Ben", "Chloe", "Dmitri", "Elena", "Farid", "Grace", "Hiro",
    "Ines", "Jonas", "Keiko", "Liam", "Maya", "Nikolai", "Olga", "Pedro",
    "Quinn", "Rosa", "Sami", "Tara", "Uma", "Victor", "Wen", "Xavier",
    "Yara", "Zoltan", "Amara", "Bruno", "Carmen", "Dario", "Esme", "Felix",
)
_LAST = (
    "Adler", "Baker", "Castro", "Dubois", "Eriksen", "Fischer", "Garcia",
    "Hansen", "Ibrahim", "Jensen", "Kowalski", "Larsen", "Moreau", "Nakamura",
    "Okafor", "Petrov", "Quispe", "Rossi", "Schmidt", "Tanaka", "Ueda",
    "Varga", "Weber", "Xu", "Yilmaz", "Zhang", "Abbott", "Brennan", "Costa",
    "Duval", "Evans", "Ferreira",
)
_FIRST_LOWER = tuple(name.lower() for name in _FIRST)
_LAST_LOWER = tuple(name.lower() for name in _LAST)


@dataclass(frozen=True)
class Scenario:
    """What an account name asks for."""

    account: str  # the full account name, e.g. "healthy.t-auth"
    name: str  # the scenario name, e.g. "healthy" or "big-2500"
    kind: str  # "healthy", ..., or "big" for big-N
    label: str  # "" when the account has no label
    item_count: int


def parse_account(account):
    """The Scenario for an account name ``SCENARIO`` or ``SCENARIO.LABEL``,
    or None when the name does not designate a known scenario."""
    name, dot, label = account.partition(".")
    if dot and not _LABEL_RE.fullmatch(label):
        return None
    if name in _NAMED:
        return Scenario(account, name, name, label, DEFAULT_ITEM_COUNT)
    match = _BIG_RE.fullmatch(name)
    if match:
        count = int(match.group(1))
        if count <= MAX_BIG_ITEM_COUNT:
            return Scenario(account, name, "big", label, count)
    return None


def item_id(index):
    return "item-%07d" % index


def parse_item_id(value):
    """The index of an item id, or None when the value is not an item id."""
    if not isinstance(value, str):
        return None
    match = ITEM_ID_RE.fullmatch(value)
    if not match:
        return None
    index = int(match.group(1))
    return index if index > 0 else None


def iso(moment):
    """ISO 8601 in UTC with a trailing Z, to the microsecond."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utcnow():
    return datetime.now(timezone.utc)


def change_instant():
    """When a change made now is dated: now, but never at or before the base instant."""
    return max(utcnow(), BASE_INSTANT + timedelta(seconds=1))


def parse_instant(value):
    """An aware datetime from an ISO 8601 string; a naive value is taken as UTC.

    A '+' in a query string that was not percent-encoded arrives as a space,
    so a space before the offset is read as '+'. Raises ValueError."""
    text = value.strip().replace(" ", "+")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


def encode_cursor(slot, since=None):
    raw = "%d|%s" % (slot, iso(since) if since is not None else "")
    return base64.urlsafe_b64encode(raw.encode("ascii")).decode("ascii").rstrip("=")


def decode_cursor(cursor):
    """(slot, since or None) from an opaque cursor. Raises ValueError."""
    if not cursor or len(cursor) > 200:
        raise ValueError("empty or oversized cursor")
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        raw = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
    except Exception as exc:
        raise ValueError("undecodable cursor") from exc
    slot_text, bar, since_text = raw.partition("|")
    if not bar or not slot_text.isdigit():
        raise ValueError("malformed cursor")
    since = parse_instant(since_text) if since_text else None
    return int(slot_text), since


@dataclass
class Change:
    version: int  # 2 after the first change
    updated_at: datetime


@dataclass
class Overrides:
    """What the control API changed for one account. Small by construction."""

    dropped: set = field(default_factory=set)  # item indexes
    changed: dict = field(default_factory=dict)  # index -> Change
    recovered: bool = False
    failed: bool = False
    api_key: str = None

    def as_json(self):
        return {
            "dropped": [item_id(i) for i in sorted(self.dropped)],
            "changed": {
                item_id(i): {"version": c.version, "updated_at": iso(c.updated_at)}
                for i, c in sorted(self.changed.items())
            },
            "recovered": self.recovered,
            "failed": self.failed,
            "api_key_set": self.api_key is not None,
        }

    def snapshot(self):
        """A copy that a request can use outside the lock."""
        return Overrides(
            dropped=set(self.dropped),
            changed=dict(self.changed),
            recovered=self.recovered,
            failed=self.failed,
            api_key=self.api_key,
        )


def effective_kind(scenario, overrides):
    """The scenario kind in force: an account told to recover behaves like healthy."""
    if overrides.recovered:
        return "healthy"
    return scenario.kind


class Catalog:
    """The items of one account as one request sees them."""

    def __init__(self, scenario, overrides, seed, item_url_prefix):
        self.scenario = scenario
        self.kind = effective_kind(scenario, overrides)
        self.count = scenario.item_count
        self.overrides = overrides
        self.url_prefix = item_url_prefix  # ".../v1/ACCOUNT/items/"
        digest = hashlib.sha256(("%s:%s" % (seed, scenario.kind)).encode()).digest()
        self._offset = int.from_bytes(digest[:4], "big")
        self.duplicate = (
            WARNING_DUPLICATE
            if self.kind == "warnings" and WARNING_DUPLICATE <= self.count
            else None
        )
        self.slot_count = self.count + (1 if self.duplicate else 0)
        self.dropped_slots = sorted(
            slot for index in overrides.dropped if index <= self.count
            for slot in self.slots_of(index)
        )
        self._dropped_slot_set = frozenset(self.dropped_slots)

    # -- slots -----------------------------------------------------------

    def slots_of(self, index):
        dup = self.duplicate
        if dup is None or index < dup:
            return (index - 1,)
        if index == dup:
            return (dup - 1, dup)
        return (index,)

    def index_of_slot(self, slot):
        dup = self.duplicate
        if dup is None or slot < dup:
            return slot + 1
        return slot

    def has(self, index):
        return 1 <= index <= self.count and index not in self.overrides.dropped

    @property
    def distinct_count(self):
        return self.count - sum(1 for i in self.overrides.dropped if i <= self.count)

    # -- items -----------------------------------------------------------

    def item(self, index):
        h = ((index + self._offset) * 0x9E3779B1) & 0xFFFFFFFF
        h ^= h >> 16
        h = (h * 0x85EBCA6B) & 0xFFFFFFFF
        h ^= h >> 13
        first = h & 31
        last = (h >> 5) & 31
        iid = "item-%07d" % index
        kind = self.kind
        change = self.overrides.changed.get(index) if self.overrides.changed else None
        name = _FIRST[first] + " " + _LAST[last]
        if change is not None:
            name = "%s (v%d)" % (name, change.version)
        item = {
            "id": iid,
            "account_id": "acct-1" if (h >> 10) & 1 else "acct-2",
            "name": name,
            "email": "%s.%s.%d@example.com" % (_FIRST_LOWER[first], _LAST_LOWER[last], index),
            "quantity": (h >> 11) % 1000,
            "status": "active",
            "updated_at": BASE_UPDATED_AT if change is None else iso(change.updated_at),
            "url": self.url_prefix + iid,
        }
        if kind == "warnings":
            if index in WARNING_MISSING_NAME:
                del item["name"]
            elif index == WARNING_BAD_EMAIL:
                item["email"] = "not-an-email"
            elif index == WARNING_BAD_QUANTITY:
                item["quantity"] = -5
        elif kind == "unmapped" and index % 10 == 0:
            item["account_id"] = UNLISTED_ACCOUNT_ID
        return item

    # -- listings --------------------------------------------------------

    def listing(self, since=None):
        """The Listing that ``updated_since=since`` selects."""
        if since is not None and since >= BASE_INSTANT:
            slots = sorted(
                slot
                for index, change in self.overrides.changed.items()
                if change.updated_at > since and self.has(index)
                for slot in self.slots_of(index)
            )
            return ChangedListing(self, slots)
        return FullListing(self)


class FullListing:
    """Every slot of the account, minus the dropped ones."""

    def __init__(self, catalog):
        self.catalog = catalog
        self.total = catalog.slot_count - len(catalog.dropped_slots)

    def slot_at(self, position):
        slot = position
        for dropped in self.catalog.dropped_slots:
            if dropped <= slot:
                slot += 1
            else:
                break
        return slot

    def position_of(self, slot):
        """How many visible slots come before ``slot``."""
        slot = min(slot, self.catalog.slot_count)
        return slot - bisect_left(self.catalog.dropped_slots, slot)

    def take(self, position, count):
        """Up to ``count`` slots from ``position``."""
        catalog = self.catalog
        end = catalog.slot_count
        skip = catalog._dropped_slot_set
        slot = self.slot_at(position)
        slots = []
        if not skip:
            return list(range(slot, min(end, slot + count)))
        while slot < end and len(slots) < count:
            if slot not in skip:
                slots.append(slot)
            slot += 1
        return slots


class ChangedListing:
    """Only the items changed after a given instant (a short sorted list)."""

    def __init__(self, catalog, slots):
        self.catalog = catalog
        self.slots = slots
        self.total = len(slots)

    def position_of(self, slot):
        return bisect_left(self.slots, slot)

    def take(self, position, count):
        return self.slots[position:position + count]
