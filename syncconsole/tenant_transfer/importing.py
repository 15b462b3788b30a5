"""Loading a tenant export into this installation: every row under a new id, in one transaction.

The file is read a line at a time and written in batches as it is read; only
the map from exported to local ids is kept. Any fault (a line that is not
JSON, an unknown type, a relation to a row not earlier in the file, a value
the model refuses, a file cut short or altered) raises `TransferError` naming
the line, and the transaction takes back everything written before it.
"""

import json
from collections import Counter, defaultdict
from contextlib import contextmanager

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.core.validators import validate_slug
from django.db import DatabaseError, models, transaction
from django.utils import timezone

from audit import services as audit
from audit.models import AuditRecord
from integrations.models import Tenant
from syncconsole.tenant_transfer import catalog
from syncconsole.tenant_transfer.exporting import FORMAT
from syncconsole.tenant_transfer.kinds import TransferError

BATCH = 500
MISSING = object()


class Context:
    """What landing a row needs to know, and what the import did."""

    def __init__(self, *, slug, source, now):
        self.slug = slug
        self.source = source
        self.now = now
        self.tenant_id = None
        self.ids = defaultdict(dict)  # kind name -> {exported id: local id, or None when skipped}
        self.users_matched = set()
        self.users_created = set()
        self.codes_added = []
        self.inserted = Counter()
        self.skipped = Counter()

    def build(self, kind, fields, pk=None):
        """A model instance from a line's fields, each converted as its Django field reads it (not saved)."""
        meta = kind.model._meta
        values = {} if pk is None else {meta.pk.attname: pk}
        for name, value in fields.items():
            try:
                field = meta.get_field(name)
            except FieldDoesNotExist:
                field = None
            if field is None or not field.concrete or field.primary_key:
                raise TransferError(f"no column {name!r} here.")
            try:
                if field.is_relation:
                    values[field.attname] = None if value is None else field.target_field.to_python(value)
                else:
                    values[field.attname] = field.to_python(value)
                if field.choices:
                    field.validate(values[field.attname], None)
            except ValidationError as exc:
                raise TransferError(f"{name}: {' '.join(exc.messages)}") from None
        return kind.model(**values)


def _records(stream):
    """(line number, object) for each non-empty line of a binary stream."""
    for number, raw in enumerate(stream, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except UnicodeDecodeError:
            raise TransferError(f"Line {number}: not UTF-8 text.") from None
        except json.JSONDecodeError as exc:
            raise TransferError(f"Line {number}: not JSON ({exc.msg} at column {exc.colno}).") from None
        if not isinstance(record, dict) or not isinstance(record.get("type"), str):
            raise TransferError(f"Line {number}: not an object with a type.")
        yield number, record


def _describe(exc):
    if isinstance(exc, ValidationError):
        if hasattr(exc, "error_dict"):
            return "; ".join(f"{name}: {' '.join(messages)}" for name, messages in exc.message_dict.items())
        return " ".join(exc.messages)
    return str(exc)


@contextmanager
def _at_line(number, what):
    """Faults of Django or the database while handling a line, as a TransferError naming it."""
    try:
        yield
    except TransferError as exc:
        raise TransferError(f"Line {number}: {what}, {exc}") from exc
    except (ValidationError, ValueError, TypeError, DatabaseError) as exc:
        raise TransferError(f"Line {number}: {what}: {_describe(exc)}") from exc


class _Loader:
    def __init__(self, context):
        self.context = context
        self.read = Counter()
        self.buffer = []
        self.buffer_kind = None
        self.buffer_ids = set()
        self.deferred = []

    def add(self, number, record):
        kind = catalog.BY_NAME.get(record["type"])
        if kind is None:
            raise TransferError(f"Line {number}: unknown type {record['type']!r}.")
        original, fields = record.get("id"), record.get("fields")
        if isinstance(original, bool) or not isinstance(original, (int, str)) or not isinstance(fields, dict):
            raise TransferError(f"Line {number}: a {kind.name} line needs an id and an object of fields.")
        if original in self.context.ids[kind.name] or (kind is self.buffer_kind and original in self.buffer_ids):
            raise TransferError(f"Line {number}: {kind.name} {original} appears twice.")
        for name in kind.leave_out:
            if name in fields:
                raise TransferError(f"Line {number}: {kind.name} {original} carries {name}, which no export holds.")
        self.read[kind.name] += 1
        what = f"{kind.name} {original}"
        if kind.shared:
            with _at_line(number, what):
                self.context.ids[kind.name][original] = kind.match(original, fields, self.context)
            return
        if kind is not self.buffer_kind:
            self.flush()
            self.buffer_kind = kind
        if kind.name == "tenant" and (self.context.tenant_id is not None or self.buffer):
            raise TransferError(f"Line {number}: a second tenant; an export holds one.")
        with _at_line(number, what):
            fields, deferred = self._local_references(number, kind, original, fields)
            instance = self.context.build(kind, fields)
            if kind.on_import and kind.on_import(instance, self.context) is False:
                self.context.ids[kind.name][original] = None
                self.context.skipped[kind.name] += 1
                return
        self.buffer.append((number, original, instance, deferred))
        self.buffer_ids.add(original)
        if len(self.buffer) >= BATCH:
            self.flush()

    def _local_references(self, number, kind, original, fields):
        """The fields with every relation rewritten to local ids; relations set later apart."""
        fields = dict(fields)
        deferred = []
        for relation in catalog.relations(kind):
            value = fields.get(relation.field)
            if value is None:
                continue
            if relation.deferred:
                deferred.append((relation, value))
                fields[relation.field] = None
                continue
            local = self.context.ids[relation.target].get(value, MISSING)
            if local is MISSING or local is None:
                raise TransferError(
                    f"Line {number}: {kind.name} {original} points at {relation.target} {value} "
                    f"({relation.field}), which is not earlier in the file."
                )
            fields[relation.field] = local
        for column, target in kind.id_columns.items():
            if fields.get(column) is not None:
                fields[column] = self.context.ids[target].get(fields[column])
        for name in kind.unlinked:
            fields[name] = None
        return fields, deferred

    def flush(self):
        if not self.buffer:
            return
        kind = self.buffer_kind
        instances = [instance for _, _, instance, _ in self.buffer]
        first, last = self.buffer[0][0], self.buffer[-1][0]
        try:
            if _stamps_times(kind.model):
                # bulk_create would stamp "now" over the exported times; a raw save keeps them.
                for instance in instances:
                    models.Model.save_base(instance, raw=True)
            else:
                kind.model._default_manager.bulk_create(instances)
        except DatabaseError as exc:
            raise TransferError(f"Lines {first}-{last} ({kind.name}): the database refused them: {exc}") from exc
        for number, original, instance, deferred in self.buffer:
            self.context.ids[kind.name][original] = instance.pk
            self.context.inserted[kind.name] += 1
            self.deferred.extend((number, kind, instance.pk, relation, value) for relation, value in deferred)
        if kind.name == "tenant":
            self.context.tenant_id = instances[0].pk
        self.buffer, self.buffer_ids = [], set()

    def set_deferred(self):
        """Relations to rows later in the file (an integration's last session), now that every row is in."""
        updates = defaultdict(list)
        for number, kind, pk, relation, value in self.deferred:
            local = self.context.ids[relation.target].get(value)
            if local is None:
                raise TransferError(
                    f"Line {number}: {kind.name} points at {relation.target} {value} ({relation.field}), "
                    "which is not in the file."
                )
            updates[(kind, relation)].append(kind.model(pk=pk, **{relation.attname: local}))
        for (kind, relation), instances in updates.items():
            kind.model._default_manager.bulk_update(instances, [relation.field], batch_size=BATCH)


def _stamps_times(model):
    fields = model._meta.concrete_fields
    return any(getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False) for f in fields)


def _header(first):
    if first is None:
        raise TransferError("The file is empty: not a tenant export.")
    number, record = first
    if record["type"] != "export":
        raise TransferError(f"Line {number}: not a SyncConsole tenant export (no export header).")
    if record.get("format") != FORMAT:
        raise TransferError(
            f"Line {number}: export format {record.get('format')!r}; this installation reads format {FORMAT}."
        )
    if not isinstance(record.get("tenant"), str):
        raise TransferError(f"Line {number}: the header names no tenant.")
    return record


def _free_slug(slug):
    try:
        validate_slug(slug)
    except ValidationError:
        raise TransferError(f"{slug!r} is not a slug (letters, numbers, hyphens, underscores).") from None
    if Tenant.objects.filter(slug=slug).exists():
        raise TransferError(
            f"A tenant with the slug {slug!r} exists already; import it under another slug with --as NEWSLUG."
        )


def _check_end(end, read):
    number, record = end
    counts = record.get("counts")
    if not isinstance(counts, dict):
        raise TransferError(f"Line {number}: the end line has no counts.")
    differ = sorted(name for name in set(counts) | set(read) if counts.get(name, 0) != read.get(name, 0))
    if differ:
        said = ", ".join(f"{name} {counts.get(name, 0)} (read {read.get(name, 0)})" for name in differ)
        raise TransferError(f"Line {number}: the end line's counts differ from the lines read: {said}.")


def import_tenant(stream, *, new_slug=None, now=None):
    """Load an export from a binary stream of lines; returns the Context (what was done).

    Raises TransferError, naming the line, when the file cannot be loaded whole.
    """
    records = _records(stream)
    header = _header(next(records, None))
    slug = new_slug or header["tenant"]
    _free_slug(slug)
    source = str(header.get("site") or "another installation")[:200]
    context = Context(slug=slug, source=source, now=now or timezone.now())
    loader = _Loader(context)
    with transaction.atomic():
        end = None
        last = 1
        for number, record in records:
            last = number
            if end is not None:
                raise TransferError(f"Line {number}: a line after the end line.")
            if record["type"] == "end":
                end = (number, record)
                continue
            loader.add(number, record)
        if end is None:
            raise TransferError(f"The file stops at line {last} without its end line: it was cut short.")
        loader.flush()
        _check_end(end, loader.read)
        if context.tenant_id is None:
            raise TransferError("The file holds no tenant line.")
        loader.set_deferred()
        for part in catalog.PARTS:
            if hasattr(part, "finish"):
                part.finish(context)
        audit.record(
            AuditRecord.Action.STAFF_ACTION,
            tenant=context.tenant_id,
            target=f"tenant {slug}",
            actor_label="manage.py import_tenant",
            changes={
                "imported_from": context.source,
                "exported_slug": header["tenant"],
                "exported_at": header.get("exported_at"),
                "rows": dict(context.inserted),
                "users_created": len(context.users_created),
                "error_codes_added": context.codes_added,
            },
        )
    return context
