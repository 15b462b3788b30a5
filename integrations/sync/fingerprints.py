"""Skipping the pages a full sync already holds unchanged.

An unchanged full re-sync costs little at the vendor's end and much at ours:
every item parsed, hashed, looked up and noted as seen. A connector that
fingerprints its pages (`Connector.fingerprints_pages`: the REST family)
gives each page of a full sync a key (its request) and a digest (its rows).
At the end of a complete full sync, each page that was stored whole (no
item unmapped, ignored, held, repeated or with a problem) becomes a
PageFingerprint with the lowest and highest external id it held, if that
range holds exactly its records, counted then. The next full sync hands the
connector those digests; a page that comes back the same is not read at
all, and its records are noted seen as one SeenRange (`records.py` reads
both SeenItem and SeenRange).

Skipping is safe only while the fingerprints still describe what is stored
and how it would be read (`start`): taken with the same settings and
account mapping (the `generation`), no session wrote records since (any
session that writes records and is not a complete full sync drops them in
its finishing transaction, `settle`), and no open issue on the integration
(a skipped page settles none).

The ranges are in the database's order. Python compares ids by code point,
as SQLite does and as PostgreSQL does under a "C" collation; under any other
collation a page's lowest and highest ids are asked of the database.
"""

import hashlib

import orjson
from django.db import connection

from integrations.models import PageFingerprint, SeenRange, SyncedRecord

# Bumped when what an unchanged page stands for changes (how rows become items).
VERSION = 1
RECORDS = SyncedRecord._meta.db_table
BYTEWISE_COLLATIONS = frozenset({"c", "posix", "c.utf-8", "c.utf8", "ucs_basic"})
_python_order = {}


def python_order():
    """Whether the database orders external ids as Python does (code point by code point)."""
    alias = connection.alias
    if alias not in _python_order:
        if connection.vendor != "postgresql":
            _python_order[alias] = connection.vendor == "sqlite"
        else:
            with connection.cursor() as cursor:
                cursor.execute("SELECT datcollate FROM pg_database WHERE datname = current_database()")
                collate = cursor.fetchone()[0]
                cursor.execute("SELECT count(*) FROM pg_database WHERE datname = current_database() AND datlocprovider = 'c'")
                libc = cursor.fetchone()[0] == 1
            _python_order[alias] = libc and collate.lower() in BYTEWISE_COLLATIONS
    return _python_order[alias]


def generation(integration, item_type, mappings, held_accounts):
    """What a page's items depend on besides its rows: settings, mapping, held accounts, this code."""
    mapping = sorted((m.vendor_account_id, m.tenant_account, m.ignored) for m in mappings.values())
    state = [VERSION, integration.connector, item_type, integration.settings, mapping, sorted(held_accounts)]
    return hashlib.sha256(orjson.dumps(state, option=orjson.OPT_SORT_KEYS)).hexdigest()


class PageFingerprints:
    """One full sync's fingerprints: those it may skip, and those it leaves for the next."""

    def __init__(self, integration, item_type, generation, known):
        self.integration = integration
        self.item_type = item_type
        self.generation = generation
        self.known = known  # {page key: PageFingerprint}
        self.candidates = {}  # {page key: (digest, low, high, count)}
        self.pending = []  # SeenRanges not written yet
        self.pages_read = 0  # pages not skipped

    def skip(self, session, page):
        """A page the connector did not read: its range is seen, its fingerprint stays. Its row count.

        No query: the range is written by `flush`, before the next page that
        is read (whose duplicate check reads the ranges) or the finish.
        """
        known = self.known[page.page_key]
        self.pending.append(SeenRange(session_id=session.pk, item_type=self.item_type, low=known.low, high=known.high))
        self.candidates[page.page_key] = (known.digest, known.low, known.high, known.item_count)
        return page.skipped_rows

    def flush(self):
        """Write the skipped pages' ranges (inside the caller's transaction)."""
        if self.pending:
            SeenRange.objects.bulk_create(self.pending)
            self.pending = []

    def note(self, page, stored, *, whole):
        """A page read and written; `whole`: every row stored, none with a problem or repeated."""
        self.pages_read += 1
        if not (whole and page.digest and page.page_key and stored):
            self.candidates.pop(page.page_key, None)
            return
        low, high = id_range([item.external_id for item in stored])
        self.candidates[page.page_key] = (page.digest, low, high, len(stored))

    def save(self):
        """After a complete full sync (in its finishing transaction): the pages whose range holds exactly their records."""
        exact = exact_ranges(self.integration, self.item_type, self.candidates)
        PageFingerprint.objects.filter(integration=self.integration).delete()
        PageFingerprint.objects.bulk_create(
            PageFingerprint(
                integration=self.integration,
                item_type=self.item_type,
                page_key=key,
                digest=digest,
                generation=self.generation,
                low=low,
                high=high,
                item_count=count,
            )
            for key, (digest, low, high, count) in self.candidates.items()
            if key in exact
        )


def start(integration, connector, *, full, mappings, held_accounts):
    """The fingerprints of this run, the connector told which pages it may skip; None when pages are not fingerprinted."""
    if not (full and connector.fingerprints_pages):
        return None
    item_type = connector.item_type
    current = generation(integration, item_type, mappings, held_accounts)
    known = {}
    if integration.open_issue_count == 0:
        known = {
            f.page_key: f
            for f in PageFingerprint.objects.filter(integration=integration, item_type=item_type, generation=current)
        }
    connector.known_pages = {key: f.digest for key, f in known.items()}
    return PageFingerprints(integration, item_type, current, known)


def settle(integration, session, fingerprints, *, full_complete):
    """In the finishing transaction: a complete full sync leaves its fingerprints; any other that wrote records drops them."""
    wrote = session.items_created or session.items_updated or session.items_deleted
    if full_complete and fingerprints is not None:
        if wrote or fingerprints.pages_read or set(fingerprints.candidates) != set(fingerprints.known):
            fingerprints.save()
        # else: every page skipped, nothing written: the fingerprints stand as they are.
    elif full_complete or wrote:
        PageFingerprint.objects.filter(integration=integration).delete()


def id_range(external_ids):
    """The lowest and highest of a page's ids, in the database's order."""
    if python_order():
        return min(external_ids), max(external_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT min(x), max(x) FROM jsonb_array_elements_text(%s::jsonb) AS ids(x)",
            [orjson.dumps(external_ids).decode()],
        )
        return cursor.fetchone()


def exact_ranges(integration, item_type, candidates, chunk=300):
    """The candidates' keys whose range holds as many live records as the page had, no more."""
    exact = set()
    items = list(candidates.items())
    for start_at in range(0, len(items), chunk):
        part = items[start_at : start_at + chunk]
        values = ", ".join(["(%s, %s, %s, %s)"] * len(part))
        params = [value for key, (_digest, low, high, count) in part for value in (key, low, high, count)]
        with connection.cursor() as cursor:
            cursor.execute(
                f"""WITH page(page_key, low, high, item_count) AS (VALUES {values})
                    SELECT page.page_key, page.item_count, (
                        SELECT count(*) FROM {RECORDS} r
                        WHERE r.integration_id = %s AND r.item_type = %s AND r.deleted = %s
                          AND r.external_id BETWEEN page.low AND page.high)
                    FROM page""",
                [*params, integration.pk, item_type, False],
            )
            exact.update(key for key, count, stored in cursor.fetchall() if int(count) == stored)
    return exact
