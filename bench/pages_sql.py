"""How `make bench-pages` writes its dataset: INSERT ... SELECT with every column accounted for.

Columns a statement does not name get the model field's default, so a field
added later with a default keeps the bench working; a NOT NULL field without
one stops it with its name. While loading, foreign-key triggers are off
(`session_replication_role = replica`; the ids are consistent by
construction) and the big tables' secondary indexes are dropped and rebuilt
afterwards, which also re-checks the conditional unique indexes.
"""

import sys
import time
from contextlib import contextmanager


def say(message):
    print(message, file=sys.stderr, flush=True)


@contextmanager
def step(what, timings):
    say(f"  {what}…")
    started = time.perf_counter()
    yield
    seconds = time.perf_counter() - started
    timings.append((what, seconds))
    say(f"  {what}: {seconds:.1f} s")


def column_defaults(model, named):
    """(columns, values) for the concrete fields a statement does not name: each field's own default.

    A NOT NULL field without a default (Django gives "" to text fields) cannot
    be guessed: stop and name it.
    """
    from django.db import connection
    from django.db.models import NOT_PROVIDED
    from django.utils import timezone

    columns, values = [], []
    for field in model._meta.concrete_fields:
        if field.primary_key or field.column in named:
            continue
        if getattr(field, "db_default", NOT_PROVIDED) is not NOT_PROVIDED:
            continue
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            value = timezone.now()
        else:
            value = field.get_default()
        if value is None:
            if field.null:
                continue
            raise RuntimeError(
                f"{model._meta.label}.{field.name} is NOT NULL without a default: bench/pages_data.py must fill it."
            )
        columns.append(field.column)
        values.append(field.get_db_prep_save(value, connection))
    return columns, values


def insert_select(cursor, model, columns, tail, params=None):
    """INSERT INTO the model's table (columns) SELECT their expressions `tail`; the row count.

    `columns` maps column names to SQL expressions; `tail` is the FROM ...
    part. Parameters are pyformat (`%(name)s`); write modulo as mod().
    """
    extra_columns, extra_values = column_defaults(model, set(columns))
    params = dict(params or {})
    expressions = list(columns.values())
    for index, value in enumerate(extra_values):
        params[f"default_{index}"] = value
        expressions.append(f"%(default_{index})s")
    names = ", ".join(f'"{name}"' for name in [*columns, *extra_columns])
    cursor.execute(
        f"INSERT INTO {model._meta.db_table} ({names}) SELECT {', '.join(expressions)} {tail}", params
    )
    return cursor.rowcount


def next_id(cursor, model):
    """Explicit ids start after whatever migrations put in the table."""
    cursor.execute(f"SELECT coalesce(max(id), 0) FROM {model._meta.db_table}")
    return cursor.fetchone()[0]


def reset_sequence(cursor, model):
    table = model._meta.db_table
    cursor.execute(
        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce((SELECT max(id) FROM {table}), 1))"
    )


@contextmanager
def secondary_indexes_rebuilt(cursor, model, timings):
    """Drop the table's indexes that back no constraint (primary key, unique constraints stay); rebuild after."""
    table = model._meta.db_table
    cursor.execute(
        """
        SELECT c.relname, pg_get_indexdef(c.oid)
        FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
        WHERE x.indrelid = %s::regclass AND NOT x.indisprimary
          AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid)
        """,
        [table],
    )
    indexes = cursor.fetchall()
    for name, _ in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    yield
    with step(f"{model._meta.verbose_name_plural}: {len(indexes)} indexes rebuilt", timings):
        for _, definition in indexes:
            cursor.execute(definition)


@contextmanager
def bulk_load_session(cursor):
    """Foreign-key triggers off (superuser only; without it they run, only slower), more memory for index builds."""
    cursor.execute("SET synchronous_commit = off")
    cursor.execute("SET maintenance_work_mem = '512MB'")
    cursor.execute("SET work_mem = '64MB'")
    from django.db import DatabaseError

    try:
        cursor.execute("SET session_replication_role = replica")  # autocommit: a refusal leaves nothing behind
    except DatabaseError as exc:
        say(f"  (foreign-key triggers stay on: {exc})")
    try:
        yield
    finally:
        for name in ("session_replication_role", "synchronous_commit", "maintenance_work_mem", "work_mem"):
            cursor.execute(f"RESET {name}")


def share_case(expression, rows, share_index):
    """A CASE choosing rows[i][0] when `expression` (0..99) falls in row i's share, rows[i][share_index] %."""
    parts, upper = [], 0
    for row in rows:
        upper += row[share_index]
        parts.append(f"WHEN {expression} < {upper} THEN '{row[0]}'")
    return f"CASE {' '.join(parts)} ELSE '{rows[-1][0]}' END"
