"""The scheduler: queue every integration that is due, in batches, within a time budget.

Each integration's next_sync_at is set when its session finishes (the
interval, backed off while failing, plus jitter), so due times drift apart
instead of all landing on the same tick. A tick queues all that are due, most
overdue first, SYNC_SCHEDULER_BATCH at a time. Each batch is one transaction
of three queries: one SELECT of due ids, one INSERT ... SELECT of their
sessions returning the new ids (ON CONFLICT DO NOTHING: the one-open-session
constraint skips integrations that started syncing meanwhile) and one UPDATE
of their next_sync_at; once it commits, one broker round trip for all its
tasks (`sync.broker.BatchedBroker`) and one UPDATE of their task ids. The
statements are written out: building a thousand model instances per batch
cost more than the database work. A tick starts no batch it could not finish
within SYNC_SCHEDULER_TICK_SECONDS, so it is over before the next tick
starts; what it leaves is the next tick's first batch.

The due query reads the partial index `integration_due` (next_sync_at of the
integrations the scheduler may queue, the very condition of the query) in
order and stops at the batch size. Whether an integration already has an open
session is asked per row of that scan, through the open-session partial
unique index: `OFFSET 0` keeps PostgreSQL from turning the NOT EXISTS into a
join, whose kind (hash, merge, nested loop over a sequential scan) it would
choose from statistics that can be hours old on a table that changes by the
thousand every minute.
"""

import logging
import time
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from integrations.models import Integration, SyncSession
from integrations.sync.broker import BatchedBroker
from integrations.sync.starting import enqueue_session

logger = logging.getLogger(__name__)


def _literals(values):
    # Constants of the code, written into the SQL so that it reads exactly as
    # the partial index's condition (a planner matches literals, not parameters).
    assert all(value.replace("_", "").isalnum() for value in values)
    return ", ".join(f"'{value}'" for value in values)


def due_sql(now, limit):
    """The due query: (sql, params) selecting the ids of up to `limit` due integrations, most overdue first."""
    integrations = connection.ops.quote_name(Integration._meta.db_table)
    sessions = connection.ops.quote_name(SyncSession._meta.db_table)
    sql = f"""SELECT i.id FROM {integrations} i
        WHERE i.next_sync_at <= %s
          AND NOT i.paused AND i.mapping_complete
          AND NOT (i.status IN ({_literals(Integration.NOT_SCHEDULED)}))
          AND NOT EXISTS (
              SELECT 1 FROM {sessions} s
              WHERE s.integration_id = i.id AND s.state IN ({_literals(SyncSession.OPEN_STATES)})
              LIMIT 1 OFFSET 0)
        ORDER BY i.next_sync_at
        LIMIT %s"""
    return sql, [connection.ops.adapt_datetimefield_value(now), limit]


def due_ids(now, limit):
    with connection.cursor() as cursor:
        cursor.execute(*due_sql(now, limit))
        return [row[0] for row in cursor.fetchall()]


def insert_sql(due, now):
    """One INSERT of a queued scheduled session per due integration, skipping those that already have an
    open session (the one-open-session constraint), returning the new sessions' ids: (sql, params)."""
    quote = connection.ops.quote_name
    template = SyncSession(kind=SyncSession.Kind.QUICK, trigger=SyncSession.Trigger.SCHEDULE, queued_at=now)
    columns, values, params = [], [], []
    for field in SyncSession._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(quote(field.column))
        if field.attname == "integration_id":
            values.append("v.column1")
        else:
            values.append("%s")
            params.append(field.get_db_prep_save(getattr(template, field.attname), connection))
    # The ids come with the statement (no table to plan a read of); `WHERE true` is SQLite's way of
    # telling the upsert clause from a join of the SELECT.
    sql = f"""INSERT INTO {quote(SyncSession._meta.db_table)} ({", ".join(columns)})
        SELECT {", ".join(values)} FROM (VALUES {", ".join(["(%s)"] * len(due))}) AS v
        WHERE true
        ON CONFLICT DO NOTHING
        RETURNING id"""
    return sql, params + list(due)


def save_task_ids(task_ids):
    """{session id: task id} in one UPDATE."""
    if not task_ids:
        return
    table = connection.ops.quote_name(SyncSession._meta.db_table)
    rows = ", ".join(["(%s, %s)"] * len(task_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET task_id = v.column2 FROM (VALUES {rows}) AS v WHERE {table}.id = v.column1",
            [value for pk, task_id in task_ids.items() for value in (pk, str(task_id))],
        )


def enqueue_all(session_ids):
    """Send every session's task in one broker round trip, then record the task ids in one UPDATE."""
    broker = BatchedBroker()
    task_ids = {pk: enqueue_session(pk, save_task_id=False, broker=broker) for pk in session_ids}
    broker.flush()
    save_task_ids(task_ids)


def queue_batch(now, limit):
    """One batch in one transaction: (integrations due, session ids queued); tasks go after commit."""
    with transaction.atomic():
        due = due_ids(now, limit)
        if not due:
            return [], []
        with connection.cursor() as cursor:
            cursor.execute(*insert_sql(due, now))
            ids = [row[0] for row in cursor.fetchall()]
        Integration.objects.filter(pk__in=due).update(next_sync_at=None)
        transaction.on_commit(partial(enqueue_all, ids))
    return due, ids


def tick(now=None, *, batch_size=None, budget_seconds=None):
    """Queue the due integrations, batch after batch, until none is due or the time is up; returns the new session ids."""
    now = now or timezone.now()
    batch_size = batch_size or settings.SYNC_SCHEDULER_BATCH
    budget = settings.SYNC_SCHEDULER_TICK_SECONDS if budget_seconds is None else budget_seconds
    started = time.monotonic()
    queued, due_count, batches, slowest = [], 0, 0, 0.0
    while True:
        batch_started = time.monotonic()
        due, ids = queue_batch(now, batch_size)
        batches += 1
        due_count += len(due)
        queued += ids
        slowest = max(slowest, time.monotonic() - batch_started)
        if len(due) < batch_size:
            break
        if time.monotonic() - started + slowest > budget:
            logger.warning(
                "scheduler stopped after %d batch(es) in %.1f s: more is due, the next tick goes on",
                batches,
                time.monotonic() - started,
            )
            break
    logger.info(
        "scheduler queued %d session(s) of %d due in %d batch(es), %.2f s",
        len(queued),
        due_count,
        batches,
        time.monotonic() - started,
    )
    return queued
