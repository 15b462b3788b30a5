"""Writing one page of items: skip unchanged by content hash, upsert the rest.

A page costs a fixed number of queries whatever its size: one SELECT of the
existing hashes (a second for a page in no particular order; none on a first
sync, see `write_page`), one write of the new items and one upsert of the
changed ones, and on a full sync one insert of the unchanged ids into
SeenItem (so that what was not seen can be marked deleted at the end without
rewriting every unchanged record).

The writes bypass the ORM's per-object SQL compilation, which costs more than
the database itself at thousands of items a second. PostgreSQL: new items go
straight into the records table with COPY (in a savepoint: should a row with
one of their ids have appeared meanwhile, they take the upsert path instead),
changed ones through COPY into a staging table and one INSERT ... ON
CONFLICT. SQLite: one executemany with ON CONFLICT. Unchanged items cost a
hash and a comparison: no row is built for them.

Each item's JSON is serialised once, for its hash and for the row.
"""

import hashlib
import json
import re
from dataclasses import dataclass

import orjson
from django.db import IntegrityError, connection, transaction

from integrations.models import SeenItem, SeenRange, SyncedRecord

RECORDS = SyncedRecord._meta.db_table
SEEN = SeenItem._meta.db_table
SEEN_RANGES = SeenRange._meta.db_table
# A record in a page this session skipped as unchanged (sync/fingerprints.py).
IN_SEEN_RANGE = f"""EXISTS (SELECT 1 FROM {SEEN_RANGES} sr WHERE sr.session_id = %(session)s
    AND sr.item_type = %(item_type)s AND sr.low <= r.external_id AND sr.high >= r.external_id)"""
RECORD_COLUMNS = (
    "integration_id, item_type, external_id, content_hash, data, "
    "first_synced_at, last_synced_at, seen_session_id, deleted, deleted_at"
)

# Types the standard library's json would refuse or write differently
# (datetimes, dataclasses, subclasses of str/int/dict/list) make orjson raise,
# so that they take the standard library's path.
_ORJSON_OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)
_SCALARS = frozenset({str, int, bool, type(None)})
# What json.dumps(ensure_ascii=True) escapes and orjson writes as is.
_NOT_ASCII = re.compile("[\x7f-\U0010ffff]")


def _escape(match):
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 | (code >> 10):04x}\\u{0xDC00 | (code & 0x3FF):04x}"


def _written_alike(value):
    """Whether orjson writes `value` as json.dumps does, but for the escapes `_escape` puts right.

    Only floats differ: repr() writes an exponent below 1e-4 and from 1e16
    (orjson: 0.00001, 1e16), and orjson writes NaN and Infinity as null.
    """
    kind = type(value)
    if kind is dict:
        values = value.values()
    elif kind is list or kind is tuple:
        values = value
    elif kind is float:
        size = abs(value)
        return size == 0.0 or 1e-4 <= size < 1e16  # False for NaN and Infinity
    else:
        return True
    # Most items are flat: their values' types tell at once.
    return _SCALARS.issuperset(map(type, values)) or all(map(_written_alike, values))


def _stdlib_json(data):
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def canonical_json(data):
    """The item's JSON as every stored hash was computed: sorted keys, no spaces, ASCII only.

    That is `json.dumps(data, sort_keys=True, separators=(",", ":"))`, byte for
    byte; orjson writes it several times faster, and whatever orjson could
    write differently goes to json itself: floats repr() writes with an
    exponent, NaN and Infinity, integers past 64 bits, lone surrogates,
    datetimes and other types json refuses (but UUIDs and enums, which no
    item parsed from JSON or a vCard holds). Non-ASCII characters are
    escaped as json escapes them. Changing this text changes every item's
    hash: each would look changed once.
    """
    try:
        raw = orjson.dumps(data, option=_ORJSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError; json decides (and raises what it raised before)
        return _stdlib_json(data)
    if not _written_alike(data):
        return _stdlib_json(data)
    text = raw.decode()
    if not raw.isascii() or b"\x7f" in raw:
        text = _NOT_ASCII.sub(_escape, text)
    return text


def content_hash(data):
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()


def item_contents(items):
    """{id(item): (content hash, canonical JSON, its COPY text)} of a page's items, for `write_page`.

    Pure: the page feed's thread computes it while the engine writes the
    page before, so that the engine's thread spends its time on the database.
    """
    contents = {}
    for item in items:
        text = canonical_json(item.data)
        digest = hashlib.sha256(text.encode()).hexdigest()
        contents[id(item)] = (digest, text, _copy_line(item.external_id, digest, text))
    return contents


@dataclass
class PageResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: tuple = ()


def _postgres():
    return connection.vendor == "postgresql"


def existing_rows(integration, session, item_type, external_ids):
    """{external id: (hash, deleted, seen in this session)} for the ids that have a record."""
    if _postgres():
        return _existing_rows_postgres(integration, session, item_type, list(external_ids))
    with connection.cursor() as cursor:
        placeholders = ",".join(["%s"] * len(external_ids))
        cursor.execute(
            f"""SELECT r.external_id, r.content_hash, r.deleted,
                       (r.seen_session_id = %s OR EXISTS (
                           SELECT 1 FROM {SEEN} s WHERE s.session_id = %s AND s.external_id = r.external_id)
                        OR EXISTS (SELECT 1 FROM {SEEN_RANGES} sr WHERE sr.session_id = %s AND sr.item_type = %s
                           AND sr.low <= r.external_id AND sr.high >= r.external_id))
                FROM {RECORDS} r
                WHERE r.integration_id = %s AND r.item_type = %s AND r.external_id IN ({placeholders})""",
            [session.pk, session.pk, session.pk, item_type, integration.pk, item_type, *external_ids],
        )
        return {row[0]: (row[1], bool(row[2]), bool(row[3])) for row in cursor.fetchall()}


# PostgreSQL reads a page's stored rows through the unique index, whatever
# the planner's statistics say: during a first big sync the table grows far
# past what they describe, and a hash join over all the integration's
# records per page would make the sync quadratic. Vendors list items in an
# order of their own, most often by id: the rows between the page's smallest
# and largest id (in the database's collation) are then one ordered index
# range, read at once with what SeenItem notes in the same range (ORDER BY
# ... LIMIT: the index order). A page in no particular order spans much of
# the table: when the range holds more than twice the page, the page is
# looked up id by id instead (LATERAL ... LIMIT 1). The ids travel as one
# JSON text, which costs far less to send than an array of quoted values.
_IN_RANGE = f"""WITH span AS (SELECT min(x) AS lo, max(x) AS hi FROM jsonb_array_elements_text(%(ids)s::jsonb) AS ids(x))
    SELECT r.external_id, r.content_hash, r.deleted, r.seen_session_id = %(session)s OR r.external_id IN (
            SELECT s.external_id FROM span CROSS JOIN LATERAL (
                SELECT external_id FROM {SEEN} WHERE session_id = %(session)s
                AND external_id BETWEEN span.lo AND span.hi ORDER BY external_id LIMIT %(limit)s) s)
        OR {IN_SEEN_RANGE}
    FROM span CROSS JOIN LATERAL (
        SELECT external_id, content_hash, deleted, seen_session_id FROM {RECORDS}
        WHERE integration_id = %(integration)s AND item_type = %(item_type)s
        AND external_id BETWEEN span.lo AND span.hi ORDER BY external_id LIMIT %(limit)s) r"""
_ONE_BY_ONE = f"""SELECT r.external_id, r.content_hash, r.deleted,
        (r.seen_session_id = %(session)s OR s.hit IS NOT NULL OR {IN_SEEN_RANGE})
    FROM jsonb_array_elements_text(%(ids)s::jsonb) AS ids(x)
    CROSS JOIN LATERAL (
        SELECT external_id, content_hash, deleted, seen_session_id FROM {RECORDS}
        WHERE integration_id = %(integration)s AND item_type = %(item_type)s AND external_id = ids.x LIMIT 1) r
    LEFT JOIN LATERAL (
        SELECT 1 AS hit FROM {SEEN} WHERE session_id = %(session)s AND external_id = ids.x LIMIT 1) s ON true"""


def _existing_rows_postgres(integration, session, item_type, external_ids):
    # SeenItem only notes stored records: if its range is full, the records' range is too.
    limit = 2 * len(external_ids) + 10
    params = {
        "ids": orjson.dumps(external_ids).decode(),
        "integration": integration.pk,
        "item_type": item_type,
        "session": session.pk,
        "limit": limit,
    }
    with connection.cursor() as cursor:
        cursor.execute(_IN_RANGE, params)
        rows = cursor.fetchall()
        if len(rows) == limit:
            cursor.execute(_ONE_BY_ONE, params)
            rows = cursor.fetchall()
    wanted = set(external_ids)
    return {row[0]: (row[1], bool(row[2]), bool(row[3])) for row in rows if row[0] in wanted}


UPSERT_SET = """content_hash = excluded.content_hash, data = excluded.data, last_synced_at = excluded.last_synced_at,
    seen_session_id = excluded.seen_session_id, deleted = excluded.deleted, deleted_at = NULL"""


def _db_time(moment):
    # Raw SQL gets the value the ORM would store (SQLite keeps naive UTC text).
    return connection.ops.adapt_datetimefield_value(moment)


def upsert(integration, session, item_type, rows, now):
    """Insert or update (external id, hash, json) rows in one statement."""
    now = _db_time(now)
    with connection.cursor() as cursor:
        if _postgres():
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS sync_page_stage "
                "(external_id text, content_hash text, data jsonb) ON COMMIT DELETE ROWS"
            )
            with cursor.cursor.copy("COPY sync_page_stage (external_id, content_hash, data) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(
                f"""INSERT INTO {RECORDS} ({RECORD_COLUMNS})
                    SELECT %s, %s, external_id, content_hash, data, %s, %s, %s, false, NULL FROM sync_page_stage
                    ON CONFLICT (integration_id, item_type, external_id) DO UPDATE SET {UPSERT_SET}""",
                [integration.pk, item_type, now, now, session.pk],
            )
            cursor.execute("TRUNCATE sync_page_stage")
        else:
            cursor.executemany(
                f"""INSERT INTO {RECORDS} ({RECORD_COLUMNS})
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 0, NULL)
                    ON CONFLICT (integration_id, item_type, external_id) DO UPDATE SET {UPSERT_SET}""",
                [(integration.pk, item_type, eid, digest, data, now, now, session.pk) for eid, digest, data in rows],
            )


BACKSLASH, ESCAPED_BACKSLASH = "\\", "\\\\"
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_value(value):
    """A text value as COPY's text format writes it."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_COPY_ESCAPES)
    return value


def _copy_line(external_id, digest, text):
    """The middle of a record's COPY line: external id, hash and JSON (which holds no tab, newline or carriage return)."""
    return f"{_copy_value(external_id)}\t{digest}\t{text.replace(BACKSLASH, ESCAPED_BACKSLASH)}"


def copy_rows(integration, session, item_type, lines, now):
    """The COPY text of records: each line (external id, hash and JSON: `item_contents`) between the shared parts."""
    at = _db_time(now).isoformat()
    head = f"{integration.pk}\t{_copy_value(item_type)}\t"
    tail = f"\t{at}\t{at}\t{session.pk}\tf\t\\N\n"
    return f"{head}{(tail + head).join(lines)}{tail}" if lines else ""


def insert_new(integration, session, item_type, rows, now):
    """Store (external id, hash, json, COPY text) rows that had no record when the page was read.

    PostgreSQL: COPY straight into the records table, as fast as the
    database takes rows. Only one session of an integration runs, so nobody
    else inserts these ids; if a row appeared all the same (a session whose
    lease ran out, still writing), the savepoint takes the COPY back and the
    rows go through the upsert.
    """
    if not _postgres():
        upsert(integration, session, item_type, [row[:3] for row in rows], now)
        return
    text = copy_rows(integration, session, item_type, [row[3] for row in rows], now)
    try:
        with transaction.atomic(), connection.cursor() as cursor, connection.wrap_database_errors:
            with cursor.cursor.copy(f"COPY {RECORDS} ({RECORD_COLUMNS}) FROM STDIN") as copy:
                copy.write(text)
    except IntegrityError:
        upsert(integration, session, item_type, [row[:3] for row in rows], now)


def mark_seen(session, external_ids):
    with connection.cursor() as cursor:
        if _postgres():
            head = f"{session.pk}\t"
            with cursor.cursor.copy(f"COPY {SEEN} (session_id, external_id) FROM STDIN") as copy:
                copy.write("".join([f"{head}{_copy_value(external_id)}\n" for external_id in external_ids]))
        else:
            cursor.executemany(
                f"INSERT INTO {SEEN} (session_id, external_id) VALUES (%s, %s)",
                [(session.pk, external_id) for external_id in external_ids],
            )


def split_duplicates(items):
    """({external id: item}, the repeated copies): the first copy of an id wins."""
    by_id = dict(zip([item.external_id for item in items], items, strict=True))
    if len(by_id) == len(items):
        return by_id, []
    by_id, duplicates = {}, []
    for item in items:
        if item.external_id in by_id:
            duplicates.append(item)
        else:
            by_id[item.external_id] = item
    return by_id, duplicates


def content_of(item, contents):
    """(hash, canonical JSON, COPY text) of an item, from `item_contents` when it was worked out there."""
    content = contents.get(id(item)) if contents else None
    if content is None:
        text = canonical_json(item.data)
        digest = hashlib.sha256(text.encode()).hexdigest()
        content = (digest, text, _copy_line(item.external_id, digest, text))
    return content


def write_page(integration, session, item_type, items, *, full, now, contents=None):
    """Upsert the page's items; returns counts and the duplicates it met.

    `items` are connector Items already filtered to the ones to store. An id
    seen twice (in this page, or on an earlier page of the same full sync) is
    a duplicate: the first copy wins. `contents`, from `item_contents`, saves
    computing the items' JSON and hashes here. (The first sync of an item
    type on PostgreSQL writes its pages without reading first: fresh_copy.py.)
    """
    result = PageResult()
    by_id, duplicates = split_duplicates(items)
    if not by_id:
        result.duplicates = tuple(duplicates)
        return result
    existing = existing_rows(integration, session, item_type, list(by_id))
    new, changed, unchanged_ids = [], [], []
    for external_id, item in by_id.items():
        digest, text, line = content_of(item, contents)
        old = existing.get(external_id)
        if old is None:
            new.append((external_id, digest, text, line))
        elif full and old[2]:
            duplicates.append(item)
        elif old[0] == digest and not old[1]:
            unchanged_ids.append(external_id)
        else:
            changed.append((external_id, digest, text))
    if new:
        insert_new(integration, session, item_type, new, now)
    if changed:
        upsert(integration, session, item_type, changed, now)
    if unchanged_ids and full:
        mark_seen(session, unchanged_ids)
    result.created, result.updated, result.unchanged = len(new), len(changed), len(unchanged_ids)
    result.duplicates = tuple(duplicates)
    return result


def record_ids(integration, item_type, external_ids):
    """{external id: record pk} of the given ids that have a record."""
    if not external_ids:
        return {}
    return dict(
        SyncedRecord.objects.filter(
            integration=integration, item_type=item_type, external_id__in=list(external_ids)
        ).values_list("external_id", "pk")
    )


def mark_unseen_deleted(integration, session, item_type, now):
    """After a complete full sync: what the vendor no longer has is deleted.

    Records in the range of a page the session skipped were seen: only the
    gaps between the ranges are searched (an index range each).
    """
    now = _db_time(now)
    scope, scope_params = _outside_seen_ranges(integration, session, item_type)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {RECORDS} SET deleted = %s, deleted_at = %s
                WHERE {scope} AND deleted = %s AND (seen_session_id IS NULL OR seen_session_id <> %s)
                  AND NOT EXISTS (SELECT 1 FROM {SEEN} s
                                  WHERE s.session_id = %s AND s.external_id = {RECORDS}.external_id)""",
            [True, now, *scope_params, False, session.pk, session.pk],
        )
        return cursor.rowcount


def _outside_seen_ranges(integration, session, item_type):
    """(SQL, params): the integration's records of the item type outside every SeenRange of the session.

    The gaps between the ranges, each an index range: on PostgreSQL a
    LATERAL scan per gap (OFFSET 0 keeps the planner from flattening it
    into one pass over every record, which it does without statistics);
    SQLite reads them as one OR. Ranges never overlap (each held exactly
    its page's records when it was fingerprinted); should some all the same,
    their records are noted one by one in SeenItem instead, which is always
    right.
    """
    everything = ("integration_id = %s AND item_type = %s", [integration.pk, item_type])
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT low, high, COALESCE(lag(high) OVER (ORDER BY low, high) >= low, %s) FROM {SEEN_RANGES}
                WHERE session_id = %s AND item_type = %s ORDER BY low, high""",
            [False, session.pk, item_type],
        )
        ranges = cursor.fetchall()
    if not ranges:
        return everything
    if any(overlaps for _low, _high, overlaps in ranges):
        _note_ranges_one_by_one(integration, session, item_type)
        return everything
    between = [(before[1], after[0]) for before, after in zip(ranges, ranges[1:], strict=False)]
    first, last = ranges[0][0], ranges[-1][1]
    if _postgres():
        own = f"SELECT id FROM {RECORDS} WHERE integration_id = %s AND item_type = %s"
        parts, params = [f"{own} AND external_id < %s", f"{own} AND external_id > %s"], [
            integration.pk, item_type, first, integration.pk, item_type, last,
        ]
        if between:
            values = ", ".join(["(%s, %s)"] * len(between))
            parts.append(
                f"""SELECT r.id FROM (VALUES {values}) AS gap(after, before) CROSS JOIN LATERAL (
                        {own} AND external_id > gap.after AND external_id < gap.before OFFSET 0) r"""
            )
            params += [bound for gap in between for bound in gap] + [integration.pk, item_type]
        return f"id IN ({' UNION ALL '.join(parts)})", params
    gaps = ["external_id < %s", *["(external_id > %s AND external_id < %s)"] * len(between), "external_id > %s"]
    params = [integration.pk, item_type, first, *[bound for gap in between for bound in gap], last]
    return f"integration_id = %s AND item_type = %s AND ({' OR '.join(gaps)})", params


def _note_ranges_one_by_one(integration, session, item_type):
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {SEEN} (session_id, external_id)
                SELECT DISTINCT %s, r.external_id FROM {RECORDS} r JOIN {SEEN_RANGES} sr
                  ON sr.session_id = %s AND sr.item_type = r.item_type
                 AND r.external_id >= sr.low AND r.external_id <= sr.high
                WHERE r.integration_id = %s AND r.item_type = %s""",
            [session.pk, session.pk, integration.pk, item_type],
        )
        cursor.execute(f"DELETE FROM {SEEN_RANGES} WHERE session_id = %s", [session.pk])


def forget_seen(session_id):
    SeenItem.objects.filter(session_id=session_id).delete()
    SeenRange.objects.filter(session_id=session_id).delete()
