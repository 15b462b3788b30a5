"""Keyset pagination: pages by (a field, id), no COUNT, fast at any depth.

A cursor is an opaque, signed token naming the last row of the previous
page; a forged or damaged cursor is refused, never trusted. Each order signs
its cursors with its own salt, so a cursor of one list is refused by a list
in another order instead of being read as something it is not.

Two orders: newest first by a time (issues, the activity page) and by name
(the integration lists).
"""

from datetime import datetime

from django.core import signing
from django.db.models import Q

SALT = "syncconsole.issue-cursor"
NAME_SALT = "syncconsole.name-cursor"


class BadCursor(ValueError):
    pass


def _text(value):
    if not isinstance(value, str):
        raise TypeError("a name cursor holds a name")
    return value


class Keyset:
    """One order to page in: (`field`, id), both descending or both ascending, and its cursors."""

    def __init__(self, field, *, descending, salt, dump, load):
        self.field, self.descending, self.salt = field, descending, salt
        self.dump, self.load = dump, load

    def encode(self, row):
        return signing.dumps([self.dump(getattr(row, self.field)), row.pk], salt=self.salt, compress=True)

    def decode(self, token):
        try:
            value, pk = signing.loads(token, salt=self.salt)
            return self.load(value), int(pk)
        except (signing.BadSignature, ValueError, TypeError) as exc:
            raise BadCursor("The page cursor is not valid; start again from the first page.") from exc

    def page(self, queryset, cursor, size):
        """(rows, next_cursor) for the page after `cursor`: at most `size` rows, None after the last page."""
        sign, beyond = ("-", "lt") if self.descending else ("", "gt")
        qs = queryset.order_by(f"{sign}{self.field}", f"{sign}pk")
        if cursor:
            value, pk = self.decode(cursor)
            qs = qs.filter(
                Q(**{f"{self.field}__{beyond}": value}) | Q(**{self.field: value, f"pk__{beyond}": pk})
            )
        rows = list(qs[: size + 1])
        next_cursor = self.encode(rows[size - 1]) if len(rows) > size else None
        return rows[:size], next_cursor


def newest_first(field):
    return Keyset(field, descending=True, salt=SALT, dump=datetime.isoformat, load=datetime.fromisoformat)


BY_NAME = Keyset("name", descending=False, salt=NAME_SALT, dump=str, load=_text)


def encode(row, field="last_seen_at"):
    return newest_first(field).encode(row)


def decode(token):
    return newest_first("last_seen_at").decode(token)


def page_by_last_seen(queryset, cursor, size):
    """(rows, next_cursor) for the page after `cursor` (newest first)."""
    return page_newest_first(queryset, cursor, size, field="last_seen_at")


def page_newest_first(queryset, cursor, size, *, field):
    """(rows, next_cursor) ordered by (`field`, id) descending, for the page after `cursor`."""
    return newest_first(field).page(queryset, cursor, size)


def page_by_name(queryset, cursor, size):
    """(rows, next_cursor) ordered by (name, id) ascending, for the page after `cursor`."""
    return BY_NAME.page(queryset, cursor, size)
