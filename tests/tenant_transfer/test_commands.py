"""`manage.py export_tenant` and `import_tenant`: through call_command, and as real processes."""

import io
import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from integrations.models import Integration, SyncSession, Tenant
from issues.models import SyncIssue
from tests.plugins.qcluster import database_url
from tests.tenant_transfer.conftest import build_tenant, move_users_aside, row_counts

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_export_to_a_file_then_import_it_under_another_slug(acme, tmp_path):
    path = tmp_path / "acme.jsonl"
    out = io.StringIO()

    call_command("export_tenant", "acme", "--output", str(path), stdout=out)

    assert "Exported tenant acme: 1 tenant" in out.getvalue()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # customer data: its owner only
    assert not (tmp_path / "acme.jsonl.partial").exists()
    move_users_aside()
    out = io.StringIO()

    call_command("import_tenant", str(path), "--as", "acme-escalation", stdout=out)

    said = out.getvalue()
    assert "Imported tenant acme-escalation" in said and "3 integration" in said
    assert "0 matched here, 3 created inactive without a password" in said
    assert "switched off and have no credentials" in said
    assert Integration.objects.filter(tenant__slug="acme-escalation").count() == 3


@pytest.mark.django_db
def test_export_to_stdout_keeps_the_summary_out_of_the_lines(acme):
    out, err = io.StringIO(), io.StringIO()

    call_command("export_tenant", "acme", stdout=out, stderr=err)

    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert records[0]["type"] == "export" and records[-1]["type"] == "end"
    assert "Exported tenant acme" in err.getvalue()


@pytest.mark.django_db
def test_the_commands_refuse_with_a_message(acme, tmp_path):
    with pytest.raises(CommandError, match="No tenant has the slug 'nobody'"):
        call_command("export_tenant", "nobody", "--output", str(tmp_path / "x.jsonl"))
    assert list(tmp_path.iterdir()) == []

    with pytest.raises(CommandError, match="Cannot read .*missing.jsonl: No such file"):
        call_command("import_tenant", str(tmp_path / "missing.jsonl"))

    good, damaged = tmp_path / "acme.jsonl", tmp_path / "damaged.jsonl"
    call_command("export_tenant", "acme", "--output", str(good), stdout=io.StringIO())
    damaged.write_text("".join(good.read_text().splitlines(keepends=True)[:-3]))
    before = row_counts()
    with pytest.raises(CommandError, match=r"cut short\. Nothing was imported\.$"):
        call_command("import_tenant", str(damaged), "--as", "acme-2")
    assert row_counts() == before

    with pytest.raises(CommandError, match="'acme' exists already"):
        call_command("import_tenant", str(good))
    assert row_counts() == before


def manage(*args, stdin=None):
    """A real `manage.py` process on this test's database."""
    settings = connection.settings_dict
    url = database_url(settings) if connection.vendor == "postgresql" else f"sqlite:///{settings['NAME']}"
    env = {**os.environ, "DEBUG": "on", "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "syncconsole.settings"}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        timeout=120,
    )


@pytest.mark.django_db(transaction=True)
def test_real_processes_export_and_import_a_tenant(error_catalog, tmp_path):
    build_tenant("acme", "ACME")
    path = tmp_path / "acme.jsonl"

    exported = manage("export_tenant", "acme", "-o", str(path))
    assert exported.returncode == 0, exported.stderr.decode()

    imported = manage("import_tenant", "-", "--as", "acme-copy", stdin=path.read_bytes())
    assert imported.returncode == 0, imported.stderr.decode()
    assert b"Imported tenant acme-copy" in imported.stdout
    copy = Tenant.objects.get(slug="acme-copy")
    assert copy.integrations.count() == 3
    assert SyncIssue.objects.filter(tenant=copy).count() == 2

    lines = path.read_bytes().splitlines(keepends=True)
    lines[9] = b"{not json\n"
    path.write_bytes(b"".join(lines))
    before = row_counts()
    refused = manage("import_tenant", str(path), "--as", "acme-third")
    assert refused.returncode == 1
    assert b"Line 10: not JSON" in refused.stderr and b"Nothing was imported." in refused.stderr
    assert row_counts() == before


needs_postgres = pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL: the export's snapshot")


class WriterMidExport(io.StringIO):
    """A stream that, when the first session line is written, has another connection commit a new
    session and an issue on it for the tenant, as a sync finishing meanwhile would."""

    def __init__(self, integration_id):
        super().__init__()
        self.integration_id = integration_id
        self.done = False

    def write(self, text):
        if not self.done and text.startswith('{"type":"sync_session"'):
            self.done = True
            thread = threading.Thread(target=self.commit_elsewhere)
            thread.start()
            thread.join()
        return super().write(text)

    def commit_elsewhere(self):
        try:
            now = timezone.now()
            integration = Integration.objects.get(pk=self.integration_id)
            session = SyncSession.objects.create(
                integration=integration, state="failed", queued_at=now, finished_at=now, error_code_id="AUTH_INVALID"
            )
            SyncIssue.objects.create(
                tenant_id=integration.tenant_id,
                integration=integration,
                first_session=session,
                last_session=session,
                error_code_id="AUTH_INVALID",
                first_seen_at=now,
                last_seen_at=now,
                message="written during the export",
            )
        finally:
            connection.close()


@pytest.mark.postgres
@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_on_postgresql_the_export_reads_one_snapshot(error_catalog):
    """Rows committed while the export runs are not in it, so every line points within the file."""
    from syncconsole.tenant_transfer.exporting import export_tenant
    from syncconsole.tenant_transfer.importing import import_tenant

    tenant = build_tenant("acme", "ACME")
    integration = tenant.integrations.get(name="ACME Contacts")
    stream = WriterMidExport(integration.pk)

    export_tenant("acme", stream)

    assert stream.done
    assert SyncIssue.objects.filter(message="written during the export").exists()
    assert "written during the export" not in stream.getvalue()
    import_tenant(io.BytesIO(stream.getvalue().encode()), new_slug="acme-copy")
    assert Tenant.objects.get(slug="acme-copy").issues.count() == 2
