"""Writing one page of items: skip unchanged by content hash, upsert the rest.

A page costs a fixed number of queries whatever its size: one SELECT of the
existing hashes, one bulk upsert of new and changed items, and on a full sync
one UPDATE stamping the unchanged ones as seen (so that what was not seen can
be marked deleted at the end).
"""

import hashlib
import json
from dataclasses import dataclass

from integrations.models import SyncedRecord


def content_hash(data):
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass
class PageResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: tuple = ()
    record_ids: dict | None = None  # external id -> pk, for items that have problems


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

    existing = {
        row[0]: row[1:]
        for row in SyncedRecord.objects.filter(
            integration=integration, item_type=item_type, external_id__in=list(by_id)
        ).values_list("external_id", "content_hash", "deleted", "seen_session_id")
    }
    to_write, unchanged_ids = [], []
    for external_id, item in by_id.items():
        digest = content_hash(item.data)
        old = existing.get(external_id)
        if old is not None and full and old[2] == session.pk:
            duplicates.append(item)
            continue
        if old is not None and old[0] == digest and not old[1]:
            unchanged_ids.append(external_id)
            continue
        if old is None:
            result.created += 1
        else:
            result.updated += 1
        to_write.append(
            SyncedRecord(
                integration=integration,
                item_type=item_type,
                external_id=external_id,
                content_hash=digest,
                data=item.data,
                first_synced_at=now,
                last_synced_at=now,
                seen_session_id=session.pk,
                deleted=False,
                deleted_at=None,
            )
        )
    if to_write:
        SyncedRecord.objects.bulk_create(
            to_write,
            update_conflicts=True,
            unique_fields=["integration", "item_type", "external_id"],
            update_fields=["content_hash", "data", "last_synced_at", "seen_session_id", "deleted", "deleted_at"],
        )
    if unchanged_ids and full:
        SyncedRecord.objects.filter(
            integration=integration, item_type=item_type, external_id__in=unchanged_ids
        ).update(seen_session_id=session.pk)
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
    return (
        SyncedRecord.objects.filter(integration=integration, item_type=item_type, deleted=False)
        .exclude(seen_session_id=session.pk)
        .update(deleted=True, deleted_at=now)
    )
