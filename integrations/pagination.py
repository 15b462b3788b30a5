"""Keyset pagination: pages by (a time, id), newest first, no COUNT, fast at any depth.

A cursor is an opaque, signed token naming the last row of the previous
page; a forged or damaged cursor is refused, never trusted.
"""

from datetime import datetime

from django.core import signing

SALT = "syncconsole.issue-cursor"


class BadCursor(ValueError):
    pass


def encode(row, field="last_seen_at"):
    return signing.dumps([getattr(row, field).isoformat(), row.pk], salt=SALT, compress=True)


def decode(token):
    try:
        moment, pk = signing.loads(token, salt=SALT)
        return datetime.fromisoformat(moment), int(pk)
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise BadCursor("The page cursor is not valid; start again from the first page.") from exc


def page_by_last_seen(queryset, cursor, size):
    """(rows, next_cursor) for the page after `cursor` (newest first)."""
    return page_newest_first(queryset, cursor, size, field="last_seen_at")


def page_newest_first(queryset, cursor, size, *, field):
    """(rows, next_cursor) ordered by (`field`, id) descending, for the page after `cursor`."""
    from django.db.models import Q

    qs = queryset.order_by(f"-{field}", "-pk")
    if cursor:
        moment, pk = decode(cursor)
        qs = qs.filter(Q(**{f"{field}__lt": moment}) | Q(**{field: moment, "pk__lt": pk}))
    rows = list(qs[: size + 1])
    next_cursor = encode(rows[size - 1], field) if len(rows) > size else None
    return rows[:size], next_cursor
