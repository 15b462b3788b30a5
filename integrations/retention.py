"""Retention: rows past their age go, a small batch at a time, and what is still needed stays.

Each kind of row has a setting (RETENTION_DAYS_SESSIONS, ...; 0 keeps them
forever) and a selector of the rows older than that which may go. A kind
says what it keeps whatever its age: open issues, ignored ones and those a
customer still waits on for help; each integration's last session and every
session an open issue points at; the newest alert of each integration and
rule (its unique streak stops the same alert being raised twice).

`purge` takes RETENTION_BATCH_SIZE rows at a time in primary-key order, each
batch one short transaction: lock the batch's rows (skipping any a sync holds
now: they wait for the next run), clear the references that are SET_NULL,
delete the rows that CASCADE from them (read from the model's relations, so
another app's rows, such as alert receipts of events, go without this module
importing that app), then delete the batch by id. No statement touches more
than a batch of rows of the table it deletes from, and no lock is held longer
than a batch. A relation that would PROTECT or RESTRICT a row stops the purge
with an error: a kind must not select such rows.

Other apps add their kinds with `register` when they start (alerts does, for
alerts and webhook deliveries), as they subscribe to events.
"""

import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from integrations.models import Integration, IntegrationEvent, SeenItem, SeenRange, SyncSession
from issues.models import SupportRequest, SyncIssue

logger = logging.getLogger(__name__)


class RetentionError(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class Kind:
    name: str  # words for people: "finished sessions"
    setting: str  # RETENTION_DAYS_...
    model: type
    candidates: Callable  # candidates(cutoff) -> the queryset of rows that may go

    def cutoff(self, now):
        """Rows older than this may go; None when the setting keeps them forever."""
        days = getattr(settings, self.setting)
        return now - timedelta(days=days) if days and days > 0 else None


_kinds = []


def register(kind):
    if all(existing.name != kind.name for existing in _kinds):
        _kinds.append(kind)
    return kind


def kinds():
    return list(_kinds)


@dataclasses.dataclass
class Result:
    kind: Kind
    cutoff: object
    rows: int = 0  # of the kind's own table (would go, on a dry run)
    batches: int = 0
    cascaded: Counter = dataclasses.field(default_factory=Counter)  # other tables' rows, by model label


# -- the kinds of this app and of issues ---------------------------------------------------


def resolved_issues(cutoff):
    waiting_for_help = SupportRequest.objects.filter(issue=OuterRef("pk"), state__in=SupportRequest.OPEN_STATES)
    return SyncIssue.objects.filter(state=SyncIssue.State.RESOLVED, resolved_at__lt=cutoff).exclude(
        Exists(waiting_for_help)
    )


def finished_sessions(cutoff):
    open_issues = SyncIssue.objects.filter(state=SyncIssue.State.OPEN)
    return (
        SyncSession.objects.filter(state__in=SyncSession.FINISHED_STATES, finished_at__lt=cutoff)
        .exclude(Exists(Integration.objects.filter(last_session=OuterRef("pk"))))
        .exclude(Exists(open_issues.filter(first_session=OuterRef("pk"))))
        .exclude(Exists(open_issues.filter(last_session=OuterRef("pk"))))
    )


def old_events(cutoff):
    return IntegrationEvent.objects.filter(created_at__lt=cutoff)


def leftover_seen_items(cutoff):
    """Bookkeeping of full syncs that ended (their finish removes it) or whose session is gone.

    Kept: the rows of an open session, and of a session that finished after the cutoff.
    """
    keep = SyncSession.objects.filter(pk=OuterRef("session_id")).filter(
        Q(state__in=SyncSession.OPEN_STATES) | Q(finished_at__gte=cutoff)
    )
    return SeenItem.objects.exclude(Exists(keep))


def leftover_seen_ranges(cutoff):
    """The same for the ranges of pages a full sync skipped as unchanged."""
    keep = SyncSession.objects.filter(pk=OuterRef("session_id")).filter(
        Q(state__in=SyncSession.OPEN_STATES) | Q(finished_at__gte=cutoff)
    )
    return SeenRange.objects.exclude(Exists(keep))


# The order matters a little: issues and events first, so fewer references
# to the sessions are left to clear when the sessions go.
register(Kind("resolved issues", "RETENTION_DAYS_ISSUES", SyncIssue, resolved_issues))
register(Kind("timeline events", "RETENTION_DAYS_EVENTS", IntegrationEvent, old_events))
register(Kind("finished sessions", "RETENTION_DAYS_SESSIONS", SyncSession, finished_sessions))
register(Kind("seen items", "RETENTION_DAYS_SEEN_ITEMS", SeenItem, leftover_seen_items))
register(Kind("seen ranges", "RETENTION_DAYS_SEEN_ITEMS", SeenRange, leftover_seen_ranges))


# -- purging -----------------------------------------------------------------------------


def purge(now=None, *, dry_run=False, batch_size=None, only=None):
    """Purge every kind (or those named in `only`); returns a Result per kind.

    A dry run counts what would go and changes nothing.
    """
    now = now or timezone.now()
    batch_size = batch_size or settings.RETENTION_BATCH_SIZE
    results = []
    for kind in kinds():
        if only and kind.name not in only:
            continue
        result = Result(kind, kind.cutoff(now))
        if result.cutoff is not None:
            if dry_run:
                result.rows = kind.candidates(result.cutoff).count()
            else:
                purge_kind(kind, result, batch_size)
        results.append(result)
        if not dry_run and result.rows:
            logger.info(
                "retention: %d %s older than %s purged in %d batch(es)",
                result.rows,
                kind.name,
                result.cutoff,
                result.batches,
            )
    return results


def purge_kind(kind, result, batch_size):
    after = 0
    while True:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                # A purge that a crash forgets is redone by the next run: its
                # commits need not wait for the disk.
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL synchronous_commit TO OFF")
            ids = list(
                kind.candidates(result.cutoff)
                .filter(pk__gt=after)
                .order_by("pk")
                .select_for_update(skip_locked=True)
                .values_list("pk", flat=True)[:batch_size]
            )
            if not ids:
                return
            result.rows += delete_rows(kind.model, ids, batch_size, result.cascaded)
            result.batches += 1
        after = ids[-1]
        if len(ids) < batch_size:
            return
        if settings.RETENTION_BATCH_PAUSE_SECONDS > 0:
            time.sleep(settings.RETENTION_BATCH_PAUSE_SECONDS)


def referencing_relations(model):
    """The foreign keys of every model (any app's) that point at `model`, as Django's deletion reads them."""
    return [
        relation
        for relation in model._meta.get_fields(include_hidden=True)
        if relation.auto_created and not relation.concrete and (relation.one_to_many or relation.one_to_one)
    ]


def delete_rows(model, ids, batch_size, cascaded):
    """Delete these rows of `model`, clearing or deleting what references them; returns how many went."""
    for relation in referencing_relations(model):
        field = relation.field
        referencing = relation.related_model._base_manager.filter(**{f"{field.name}__in": ids})
        on_delete = field.remote_field.on_delete
        if on_delete is models.SET_NULL:
            referencing.update(**{field.name: None})
        elif on_delete is models.CASCADE:
            child_ids = list(referencing.order_by("pk").values_list("pk", flat=True))
            for start in range(0, len(child_ids), batch_size):
                chunk = child_ids[start : start + batch_size]
                cascaded[relation.related_model._meta.label] += delete_rows(
                    relation.related_model, chunk, batch_size, cascaded
                )
        elif on_delete is not models.DO_NOTHING:
            raise RetentionError(
                f"{relation.related_model._meta.label}.{field.name} would {on_delete.__name__} the deletion of "
                f"{model._meta.label} rows: the retention selector must leave those rows out."
            )
    table = connection.ops.quote_name(model._meta.db_table)
    pk = connection.ops.quote_name(model._meta.pk.column)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE {pk} IN ({', '.join(['%s'] * len(ids))})", list(ids))
        return cursor.rowcount
