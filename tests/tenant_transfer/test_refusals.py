"""An import that cannot be done whole is refused with the line named, and writes nothing."""

import json
import re

import pytest

from syncconsole.tenant_transfer.kinds import TransferError
from tests.tenant_transfer.conftest import export_text, import_text, move_users_aside, row_counts

pytestmark = pytest.mark.django_db


def edit(text, change):
    """The export with `change(records)` applied to its parsed lines."""
    records = [json.loads(line) for line in text.splitlines()]
    change(records)
    return "".join(json.dumps(record) + "\n" for record in records)


def first(records, type_):
    return next(n for n, record in enumerate(records) if record["type"] == type_)


def bad_reference(records):
    records[first(records, "sync_session")]["fields"]["integration"] = 999999


def bad_choice(records):
    records[first(records, "sync_issue")]["fields"]["state"] = "exploded"


def smuggled_credentials(records):
    records[first(records, "integration")]["fields"]["credentials_ciphertext"] = "gAAAAAB-not-from-an-export"


def unknown_type(records):
    records.insert(5, {"type": "api_key", "id": 1, "fields": {}})


def second_tenant(records):
    records.insert(first(records, "audit_record"), dict(records[1], id=2))


def no_end(records):
    records.pop()


def line_dropped(records):
    records.pop(first(records, "audit_record"))


def late_last_session(records):
    records[first(records, "integration")]["fields"]["last_session"] = 424242


def unknown_column(records):
    records[first(records, "alert")]["fields"]["priority"] = "high"


def bad_date(records):
    records[first(records, "sync_session")]["fields"]["queued_at"] = "yesterday-ish"


def twice(records):
    at = first(records, "account_mapping")
    records.insert(at + 1, records[at])


@pytest.mark.parametrize(
    "change, message",
    [
        (bad_reference, "points at integration 999999 (integration), which is not earlier in the file"),
        (bad_choice, "state: Value 'exploded' is not a valid choice"),
        (smuggled_credentials, "carries credentials_ciphertext, which no export holds"),
        (unknown_type, "unknown type 'api_key'"),
        (second_tenant, "a second tenant"),
        (no_end, "without its end line: it was cut short"),
        (line_dropped, "the end line's counts differ from the lines read: audit_record 2 (read 1)"),
        (late_last_session, "points at sync_session 424242 (last_session), which is not in the file"),
        (unknown_column, "no column 'priority' here"),
        (bad_date, "queued_at: “yesterday-ish” value has an invalid format"),
        (twice, "appears twice"),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_a_damaged_file_is_refused_naming_the_line_and_nothing_is_written(acme, change, message):
    text = edit(export_text("acme"), change)
    move_users_aside()
    before = row_counts()

    with pytest.raises(TransferError) as refused:
        import_text(text, new_slug="acme-copy")

    assert message in str(refused.value)
    assert re.search(r"\b[Ll]ines? \d+", str(refused.value))
    assert row_counts() == before


def test_a_line_that_is_not_json_is_named(acme):
    lines = export_text("acme").splitlines(keepends=True)
    lines[6] = lines[6][: len(lines[6]) // 2] + "\n"
    before = row_counts()

    with pytest.raises(TransferError, match=r"^Line 7: not JSON \(") as refused:
        import_text("".join(lines), new_slug="acme-copy")

    assert "column" in str(refused.value)
    assert row_counts() == before


def test_bytes_that_are_not_utf8_are_named(acme):
    lines = export_text("acme").encode().splitlines(keepends=True)
    lines[3] = b'{"type": "user", "id": 99, "fields": {"username": "\xff\xfe"}}\n'
    from io import BytesIO

    from syncconsole.tenant_transfer.importing import import_tenant

    with pytest.raises(TransferError, match="^Line 4: not UTF-8 text"):
        import_tenant(BytesIO(b"".join(lines)), new_slug="acme-copy")


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "The file is empty"),
        ('{"type": "tenant", "id": 1, "fields": {}}\n', "Line 1: not a SyncConsole tenant export"),
        ('{"type": "export", "format": 7, "tenant": "acme"}\n', "export format 7; this installation reads format 1"),
        ("[1, 2]\n", "Line 1: not an object with a type"),
    ],
    ids=["empty", "no-header", "future-format", "not-an-object"],
)
def test_something_else_than_an_export_is_refused(db, text, message):
    with pytest.raises(TransferError, match=message):
        import_text(text)


def test_an_existing_slug_is_refused_unless_imported_under_another(acme):
    text = export_text("acme")
    before = row_counts()

    with pytest.raises(TransferError, match="A tenant with the slug 'acme' exists already; import it under another slug with --as"):
        import_text(text)
    assert row_counts() == before

    with pytest.raises(TransferError, match="'not a slug' is not a slug"):
        import_text(text, new_slug="not a slug")
    assert row_counts() == before

    done = import_text(text, new_slug="acme-2")
    assert done.slug == "acme-2"
