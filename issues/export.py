"""A filtered list of issues as CSV, streamed: the console's changelist and the portal's Issues tab.

The rows are read in chunks (`iterator(chunk_size=...)`: a server-side cursor
on PostgreSQL) and written as they come, so neither memory nor the number of
queries grows with the rows: each row's integration, tenant and catalog
title come in the same query (`select_related`), and only the columns
written are read.

A cell a spreadsheet would read as a formula (one starting with =, +, -, @,
a tab or a carriage return) is written after a single quote: item labels,
messages and vendor URLs come from vendors' data (OWASP, "CSV Injection").
"""

import csv
from datetime import timezone as dt_timezone

from django.http import StreamingHttpResponse

CHUNK_SIZE = 2000
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Excel reads a UTF-8 file as such only after this mark; other readers skip it.
BYTE_ORDER_MARK = "\ufeff"

COLUMNS = (
    "Integration",
    "Code",
    "Title",
    "Message",
    "Severity",
    "State",
    "Item",
    "External id",
    "Occurrences",
    "First seen (UTC)",
    "Last seen (UTC)",
    "Vendor URL",
)
READ_FIELDS = (
    "pk",
    "integration",
    "integration__name",
    "error_code",
    "error_code__title",
    "message",
    "severity",
    "state",
    "item_label",
    "external_id",
    "occurrences",
    "first_seen_at",
    "last_seen_at",
    "vendor_url",
)


def csv_cell(value):
    """The value as text a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def _utc(moment):
    return f"{moment.astimezone(dt_timezone.utc):%Y-%m-%d %H:%M:%S}" if moment else ""


def issue_row(issue, *, with_tenant):
    row = [
        issue.integration.name,
        issue.error_code_id,
        issue.error_code.title,
        issue.message,
        issue.get_severity_display(),
        issue.get_state_display(),
        issue.item_label or ("" if issue.external_id else "(whole sync)"),
        issue.external_id,
        issue.occurrences,
        _utc(issue.first_seen_at),
        _utc(issue.last_seen_at),
        issue.vendor_link,
    ]
    if with_tenant:
        row.insert(0, issue.tenant.name)
    return [csv_cell(value) for value in row]


class _Echo:
    """A file whose write() hands back what it was given: csv.writer then makes one line at a time."""

    def write(self, value):
        return value


def export_queryset(queryset, *, with_tenant):
    """The queryset reading only what the CSV writes, with what each row follows in the same query."""
    related = ("integration", "error_code", *(("tenant",) if with_tenant else ()))
    fields = (*READ_FIELDS, *(("tenant", "tenant__name") if with_tenant else ()))
    # select_related(None): a list's own relations (the changelist follows integration__tenant) are not read.
    return queryset.select_related(None).select_related(*related).only(*fields)


def csv_lines(queryset, *, with_tenant):
    """The CSV's lines, one string each: the header, then a line per issue.

    The query runs when the first row is asked for, so an answer nobody reads
    opens no cursor; one read to the end, or closed half-way (the client went
    away), closes its cursor at once.
    """
    writer = csv.writer(_Echo())
    yield BYTE_ORDER_MARK + writer.writerow((("Tenant",) if with_tenant else ()) + COLUMNS)
    rows = export_queryset(queryset, with_tenant=with_tenant).iterator(chunk_size=CHUNK_SIZE)
    try:
        for issue in rows:
            yield writer.writerow(issue_row(issue, with_tenant=with_tenant))
    finally:
        rows.close()


def csv_response(queryset, filename, *, with_tenant=False):
    """A streamed CSV download of the issues in `queryset`, in its order (filters checked by the caller)."""
    return StreamingHttpResponse(
        csv_lines(queryset, with_tenant=with_tenant),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )
