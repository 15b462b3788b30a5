"""Writing one page of items: skip unchanged by content hash, upsert the rest.

A page costs a fixed number of queries whatever its size: one SELECT of the
existing hashes, one upsert of the new and changed items, and on a full sync
one insert of the unchanged ids into SeenItem (so that what was not seen can
be marked deleted at the end without rewriting every unchanged record).

The writes bypass the ORM's per-object SQL compilation, which costs more than
the database itself at thousands of items a second: PostgreSQL gets COPY into
a staging table and one INSERT ... ON CONFLICT, SQLite one executemany.
Each item's JSON is serialised once, for its hash and for the row.
"""

import hashlib
import json
from dataclasses import dataclass

from django.db import connection

from integrations.models import SeenItem, SyncedRecord

RECORDS = SyncedRecord._meta.db_table
SEEN = SeenItem._meta.db_table


def canonical_json(data):
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def content_hash(data):
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()


@dataclass
class PageResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: tuple = ()
    record_ids: dict | None = None  # external id -> pk, for items that have problems


def _postgres():
    return connection.vendor == "postgresql"


def existing_rows(integration, session, item_type, external_ids):
    """{external id: (hash, deleted, seen in this session)} for the ids that have a record."""
    with connection.cursor() as cursor:
        if _postgres():
            # One index lookup per id (LATERAL ... LIMIT 1), whatever the
            # planner's statistics say: during a first big sync the table
            # grows far past what they describe, and a hash join over all the
            # integration's records per page would make the sync quadratic.
            cursor.execute(
                f"""SELECT r.external_id, r.content_hash, r.deleted, (r.seen_session_id = %s OR s.hit IS NOT NULL)
                    FROM unnest(%s::text[]) AS ids(external_id)
                    CROSS JOIN LATERAL (
                        SELECT external_id, content_hash, deleted, seen_session_id FROM {RECORDS}
                        WHERE integration_id = %s AND item_type = %s AND external_id = ids.external_id LIMIT 1) r
                    LEFT JOIN LATERAL (
                        SELECT 1 AS hit FROM {SEEN}
                        WHERE session_id = %s AND external_id = ids.external_id LIMIT 1) s ON true""",
                [session.pk, list(external_ids), integration.pk, item_type, session.pk],
            )
        else:
            placeholders = ",".join(["%s"] * len(external_ids))
            cursor.execute(
                f"""SELECT r.external_id, r.content_hash, r.deleted,
                           (r.seen_session_id = %s OR EXISTS (
                               SELECT 1 FROM {SEEN} s WHERE s.session_id = %s AND s.external_id = r.external_id))
                    FROM {RECORDS} r
                    WHERE r.integration_id = %s AND r.item_type = %s AND r.external_id IN ({placeholders})""",
                [session.pk, session.pk, integration.pk, item_type, *external_ids],
            )
        return {row[0]: (row[1], bool(row[2]), bool(row[3])) for row in cursor.fetchall()}


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
                f"""INSERT INTO {RECORDS} (integration_id, item_type, external_id, content_hash, data,
                        first_synced_at, last_synced_at, seen_session_id, deleted, deleted_at)
                    SELECT %s, %s, external_id, content_hash, data, %s, %s, %s, false, NULL FROM sync_page_stage
                    ON CONFLICT (integration_id, item_type, external_id) DO UPDATE SET {UPSERT_SET}""",
                [integration.pk, item_type, now, now, session.pk],
            )
            cursor.execute("TRUNCATE sync_page_stage")
        else:
            cursor.executemany(
                f"""INSERT INTO {RECORDS} (integration_id, item_type, external_id, content_hash, data,
                        first_synced_at, last_synced_at, seen_session_id, deleted, deleted_at)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 0, NULL)
                    ON CONFLICT (integration_id, item_type, external_id) DO UPDATE SET {UPSERT_SET}""",
                [(integration.pk, item_type, eid, digest, data, now, now, session.pk) for eid, digest, data in rows],
            )


def mark_seen(session, external_ids):
    with connection.cursor() as cursor:
        if _postgres():
            with cursor.cursor.copy(f"COPY {SEEN} (session_id, external_id) FROM STDIN") as copy:
                for external_id in external_ids:
                    copy.write_row((session.pk, external_id))
        else:
            cursor.executemany(
                f"INSERT INTO {SEEN} (session_id, external_id) VALUES (%s, %s)",
                [(session.pk, external_id) for external_id in external_ids],
            )


def write_page(integration, session, item_type, items, *, full, now, want_ids=()):
    """Upsert the page's items; returns counts and the duplicates it met.

    `items` are connector Items already filtered to the ones to store. An id
    seen twice (in this page, or on an earlier page of the same full sync) is
    a duplicate: the first copy wins.
    """
    result = PageResult()
    by_id, duplicates = {}, []
    for item in items:
        if item.external_id in by_id:
            duplicates.append(item)
        else:
            by_id[item.external_id] = item
    if not by_id:
        result.duplicates = tuple(duplicates)
        return result

    existing = existing_rows(integration, session, item_type, list(by_id))
    to_write, unchanged_ids = [], []
    for external_id, item in by_id.items():
        text = canonical_json(item.data)
        digest = hashlib.sha256(text.encode()).hexdigest()
        old = existing.get(external_id)
        if old is not None and full and old[2]:
            duplicates.append(item)
            continue
        if old is not None and old[0] == digest and not old[1]:
            unchanged_ids.append(external_id)
            continue
        if old is None:
            result.created += 1
        else:
            result.updated += 1
        to_write.append((external_id, digest, text))
    if to_write:
        upsert(integration, session, item_type, to_write, now)
    if unchanged_ids and full:
        mark_seen(session, unchanged_ids)
    result.unchanged = len(unchanged_ids)
    result.duplicates = tuple(duplicates)
    if want_ids:
        result.record_ids = dict(
            SyncedRecord.objects.filter(
                integration=integration, item_type=item_type, external_id__in=list(want_ids)
            ).values_list("external_id", "pk")
        )
    return result


def mark_unseen_deleted(integration, session, item_type, now):
    """After a complete full sync: what the vendor no longer has is deleted."""
    now = _db_time(now)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {RECORDS} SET deleted = %s, deleted_at = %s
                WHERE integration_id = %s AND item_type = %s AND deleted = %s
                  AND (seen_session_id IS NULL OR seen_session_id <> %s)
                  AND NOT EXISTS (SELECT 1 FROM {SEEN} s
                                  WHERE s.session_id = %s AND s.external_id = {RECORDS}.external_id)""",
            [True, now, integration.pk, item_type, False, session.pk, session.pk],
        )
        return cursor.rowcount


def forget_seen(session_id):
    SeenItem.objects.filter(session_id=session_id).delete()
