"""What an app declares about its rows in a tenant export: one `Kind` per model.

A leaf module: the apps import it to declare their kinds, and it imports no
app, so declaring does not add an edge to the app graph.
"""

from dataclasses import dataclass, field
from typing import Any, Callable


class TransferError(Exception):
    """An export or an import that cannot go on; the message says why (and on which line)."""


@dataclass(frozen=True, eq=False)
class Kind:
    """One type of line: a model, which of its rows are the tenant's, and how an import lands them.

    `rows(tenant)` returns the tenant's rows. A kind without `rows` is shared
    between tenants (users, error codes): its rows are written when a row
    first points at them, and an import finds the local row with
    `match(original_id, fields, context)` (or makes it) instead of inserting.

    `on_import(instance, context)` adjusts a row before it is inserted (an
    integration without credentials is switched off); returning False skips it.
    """

    name: str
    model: type
    rows: Callable[[Any], Any] | None = None
    match: Callable[[Any, dict, Any], Any] | None = None
    # Columns written; None: every column except `leave_out`.
    only: tuple[str, ...] | None = None
    # Never written, and refused in a file: secrets.
    leave_out: tuple[str, ...] = ()
    # Relations to rows that are not the tenant's (an incident spans tenants): written as null.
    unlinked: tuple[str, ...] = ()
    # Plain integer columns that hold another kind's id: remapped when that row came along, else null.
    id_columns: dict[str, str] = field(default_factory=dict)
    # The export may leave this kind out (`--without-records`); relations to it are then written as null.
    optional: bool = False
    on_import: Callable[[Any, Any], bool | None] | None = None
    # Why `on_import` skips a row, for the import's summary.
    skip_note: str = ""

    @property
    def shared(self):
        return self.rows is None

    def columns(self):
        """The names of the columns a line of this kind carries (the primary key is the line's id)."""
        names = [f.name for f in self.model._meta.concrete_fields if not f.primary_key]
        if self.only is not None:
            return [name for name in names if name in self.only]
        return [name for name in names if name not in self.leave_out]


@dataclass(frozen=True)
class Relation:
    """A foreign key of a kind, and the kind it points at."""

    field: str
    attname: str
    target: str
    null: bool
    # The target's lines come later in the file: set once every line is in.
    deferred: bool
