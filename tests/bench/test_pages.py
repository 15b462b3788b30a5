"""bench/pages.py end to end on a tiny dataset: the bench keeps working as the models and pages change."""

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def server_url():
    """The test database's server, through its maintenance database (the bench only creates and drops there)."""
    s = connection.settings_dict
    auth = quote(s["USER"] or "", safe="") + (f":{quote(s['PASSWORD'], safe='')}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/postgres"


def scratch_databases():
    import psycopg

    with psycopg.connect(server_url(), autocommit=True) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'syncconsole_pages_%'")
        return {name for (name,) in rows}


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (set DATABASE_URL=postgres://...)")
def test_bench_pages_generates_measures_every_page_and_drops_its_database():
    before = scratch_databases()
    completed = subprocess.run(
        [sys.executable, "bench/pages.py", "--scale", "0.005", "--runs", "1", "--warmups", "1"],
        check=False,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "BENCH_DATABASE_URL": server_url()},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    out = completed.stdout
    assert scratch_databases() <= before
    rows = [line for line in out.splitlines() if re.match(r"(admin|portal|api): ", line)]
    assert len(rows) == 18, out
    # A page may stop answering 200 when its parameters change (reported, not fatal), but none may break.
    assert not [row for row in rows if "HTTP 5" in row or "error:" in row], out
    assert re.search(r"^\d+ of 18 pages miss a target", out, re.MULTILINE), out
