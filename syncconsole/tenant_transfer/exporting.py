"""Writing one tenant's rows as JSON lines, as they are read: memory stays flat however many rows.

On PostgreSQL the whole export reads one snapshot (a REPEATABLE READ, READ
ONLY transaction), so every row a line points at is in the file although
syncs go on meanwhile, and nobody waits for the export. SQLite (development)
has no such snapshot without holding off every writer, so there the export
reads as it goes: a sync finishing meanwhile can leave a line pointing at a
row the file does not hold, which the import then names.
"""

import datetime
import json
from collections import Counter
from contextlib import contextmanager

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.core.serializers.python import Serializer as PythonSerializer
from django.db import connection, transaction
from django.utils import timezone

from audit import services as audit
from audit.models import AuditRecord
from integrations.models import Tenant
from syncconsole.tenant_transfer import catalog
from syncconsole.tenant_transfer.kinds import TransferError

FORMAT = 1
CHUNK = 2000


class _Encoder(DjangoJSONEncoder):
    """Times to the microsecond: Django's encoder stops at milliseconds, and a round trip must not move them."""

    def default(self, o):
        if isinstance(o, (datetime.datetime, datetime.time)):
            return o.isoformat()
        return super().default(o)


class _RowSerializer(PythonSerializer):
    """Django's serializer, handing each row to `emit` as it goes instead of keeping a list."""

    def __init__(self, emit):
        self.emit = emit

    def start_serialization(self):
        self._current = None

    def end_object(self, obj):
        self.emit(obj.pk, self._current)
        self._current = None

    def getvalue(self):
        return None


class _Writer:
    def __init__(self, stream, without):
        self.stream = stream
        self.without = set(without)
        self.counts = Counter()
        self.shared_written = set()

    def line(self, record):
        self.stream.write(json.dumps(record, cls=_Encoder, ensure_ascii=False, separators=(",", ":")) + "\n")

    def rows(self, kind, rows):
        def emit(pk, fields):
            self._point_within_the_file(kind, fields)
            self.line({"type": kind.name, "id": pk, "fields": fields})
            self.counts[kind.name] += 1

        _RowSerializer(emit).serialize(rows, fields=kind.columns())

    def _point_within_the_file(self, kind, fields):
        """Relations the file cannot hold become null; shared rows are written before their first use."""
        for name in kind.unlinked:
            fields[name] = None
        for relation in catalog.relations(kind):
            value = fields.get(relation.field)
            if value is None:
                continue
            target = catalog.BY_NAME[relation.target]
            if target.name in self.without:
                fields[relation.field] = None
            elif target.shared and (target.name, value) not in self.shared_written:
                self.shared_written.add((target.name, value))
                self.rows(target, target.model._default_manager.filter(pk=value))
        for column, target in kind.id_columns.items():
            if target in self.without:
                fields[column] = None


@contextmanager
def _one_snapshot():
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def export_tenant(slug, stream, *, without=(), now=None):
    """Write the tenant's lines to `stream` (text); returns the lines written per type.

    `without` names optional kinds to leave out ("synced_record"). The export
    is recorded in the tenant's audit trail once the file is complete.
    """
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        raise TransferError(f"No tenant has the slug {slug!r}.")
    kinds = catalog.exported(without)
    writer = _Writer(stream, without)
    now = now or timezone.now()
    with _one_snapshot():
        writer.line(
            {
                "type": "export",
                "format": FORMAT,
                "tenant": tenant.slug,
                "exported_at": now,
                "site": settings.SITE_URL,
                "without": sorted(without),
            }
        )
        for kind in kinds:
            writer.rows(kind, kind.rows(tenant).order_by("pk").iterator(chunk_size=CHUNK))
        writer.line({"type": "end", "counts": dict(writer.counts)})
    audit.record(
        AuditRecord.Action.STAFF_ACTION,
        tenant=tenant,
        target=f"tenant {tenant.slug}",
        actor_label="manage.py export_tenant",
        changes={"exported": dict(writer.counts), "without": sorted(without)},
    )
    return writer.counts
