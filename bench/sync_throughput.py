"""Sync throughput measurements for one database backend (bench/run.py runs it per backend).

    python bench/sync_throughput.py --backend sqlite [--simulator URL]
    python bench/sync_throughput.py --backend postgres --database-url postgres://... [--simulator URL]

sets up a dedicated database (a temporary SQLite file, or a new PostgreSQL
database on the server the URL names, dropped at the end), migrates it, and
measures on it:

- the ceiling: the connector's pages fetched and parsed, nothing written;
- on PostgreSQL, a raw COPY of the rows a first full sync of big-N stores
  (same table, same columns), the physical limit the sync is compared with;
- the first full sync of big-N and its unchanged re-sync, through the real
  engine (create_integration, start_sync, run_session), in a fresh process;
- the first full sync of a smaller big-N in another fresh process, for the
  peak RSS comparison;
- a naive baseline that saves each item with its own INSERT.

It prints progress on stderr and one JSON object on stdout. Without
--simulator it starts a vendor simulator of its own.

    python bench/sync_throughput.py --rss N --simulator URL [--resync] [--profile]

is the child mode: one full sync of big-N (and optionally its unchanged
re-sync) in this process, against the already migrated database that
DATABASE_URL names; it reports items/s, the session's counters and
ru_maxrss read at the end of the first sync. --profile runs the syncs under
cProfile and prints the top functions on stderr.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PAGE_SIZE = 1000
API_KEY = "good-key"
ITEM_TYPE = "item"


def base_environment():
    os.environ["DJANGO_SETTINGS_MODULE"] = "syncconsole.settings"
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("LOG_LEVEL", "WARNING")


def say(message):
    print(message, file=sys.stderr, flush=True)


def maxrss_kib():
    # Linux reports kilobytes (macOS bytes; this bench targets Linux).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def vm_hwm_kib():
    """This process's own peak RSS as the kernel counts it for its address space (Linux)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def setup_django():
    base_environment()
    import django

    django.setup()


def unique_label(tag):
    return f"{tag}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def connector_settings(simulator, count, tag):
    return {"account": f"big-{count}.{unique_label(tag)}", "base_url": simulator, "page_size": PAGE_SIZE}


def bench_tenant():
    from integrations.models import Tenant

    slug = f"bench-{uuid.uuid4().hex[:10]}"
    return Tenant.objects.create(name=f"Bench {slug}", slug=slug)


def new_integration(simulator, count, tag):
    from integrations.onboarding import create_integration

    return create_integration(
        bench_tenant(),
        "simulator",
        f"Bench {tag} big-{count}",
        settings=connector_settings(simulator, count, tag),
        credentials={"api_key": API_KEY},
        queue_first_sync=False,
    )


def timed_full_sync(integration, profile=None, kind="full"):
    """One sync through the engine (full unless kind says quick); (seconds, finished session)."""
    from integrations.models import SyncSession
    from integrations.sync.runner import run_session
    from integrations.sync.starting import start_sync

    session = start_sync(integration, kind=kind, enqueue=False)
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.perf_counter()
    finished = run_session(session.pk)
    seconds = time.perf_counter() - started
    if profiler is not None:
        profiler.disable()
        print_profile(profiler, profile)
    if finished is None:
        finished = SyncSession.objects.get(pk=session.pk)
    return seconds, finished


def print_profile(profiler, what, limit=30):
    import io
    import pstats

    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(limit)
        say(f"--- cProfile of the {what}, top {limit} by {order} ---")
        say(out.getvalue())


def session_summary(session):
    from integrations.models import SyncSession

    return {
        "state": session.state,
        "error_code": session.error_code_id or "",
        "error_message": session.error_message,
        **{name: getattr(session, name) for name in SyncSession.COUNTERS},
    }


def query_log_summary():
    """What Django's DEBUG query log holds now (it keeps every SQL text while DEBUG is on)."""
    from django.db import connection

    log = connection.queries_log
    return {"queries": len(log), "sql_bytes": sum(len(q.get("sql") or "") for q in log), "max": log.maxlen}


def planner_statistics():
    """PostgreSQL: when the records table was last analyzed (its plans depend on it); None elsewhere."""
    from django.db import connection

    from integrations.models import SyncedRecord

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT last_analyze, last_autoanalyze FROM pg_stat_user_tables WHERE relname = %s",
            [SyncedRecord._meta.db_table],
        )
        row = cursor.fetchone()
    stamps = [stamp for stamp in (row or ()) if stamp is not None]
    return max(stamps).isoformat() if stamps else ""


# -- child mode: one full sync in a fresh process ------------------------


def run_child(args):
    setup_django()
    if args.no_query_log:
        # Diagnostic only: while DEBUG is on, Django keeps the SQL text of
        # every query (up to 9,000) on the connection; this shows the sync
        # without that log.
        from django.conf import settings

        settings.DEBUG = False
    from django.db import connection, reset_queries

    from integrations.models import SyncedRecord

    count = args.rss
    integration = new_integration(args.simulator, count, "rss")
    reset_queries()
    rss_before = maxrss_kib()
    # The process's CPU time (both threads): steadier than the wall time on a busy machine.
    cpu_started = time.process_time()
    seconds, session = timed_full_sync(integration, profile=args.profile and f"first full sync of big-{count}")
    cpu_seconds = time.process_time() - cpu_started
    rss_after = maxrss_kib()
    result = {
        "items": count,
        "vendor": connection.vendor,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "items_per_s": count / seconds if seconds else None,
        "session": session_summary(session),
        "records": SyncedRecord.objects.filter(integration=integration, deleted=False).count(),
        "rss_before_kib": rss_before,
        "rss_kib": rss_after,
        "vm_hwm_kib": vm_hwm_kib(),
        "query_log": query_log_summary(),
    }
    if args.resync:
        reset_queries()
        analyzed_before = planner_statistics()
        seconds, session = timed_full_sync(integration, profile=args.profile and f"unchanged re-sync of big-{count}")
        result["resync"] = {
            "seconds": seconds,
            "items_per_s": count / seconds if seconds else None,
            "session": session_summary(session),
            "analyzed_before": analyzed_before,
            "analyzed_after": planner_statistics(),
        }
        # The scheduled kind of re-sync: incremental from the stored cursor.
        reset_queries()
        seconds, session = timed_full_sync(integration, kind="quick")
        result["quick_resync"] = {"seconds": seconds, "session": session_summary(session)}
    print(json.dumps(result), flush=True)


# -- backend mode --------------------------------------------------------


def with_database(url, name):
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


class BenchDatabase:
    """A database of the bench's own: a temporary SQLite file, or a new PostgreSQL database."""

    def __init__(self, backend, admin_url=None):
        self.backend = backend
        self.admin_url = admin_url
        self.tempdir = None
        self.pg_name = None
        self.url = None

    def create(self):
        if self.backend == "sqlite":
            self.tempdir = tempfile.mkdtemp(prefix="syncconsole-bench-")
            self.url = f"sqlite:///{self.tempdir}/bench.sqlite3"
        else:
            from psycopg import sql

            self.pg_name = f"syncconsole_bench_{os.getpid()}"
            with self.admin_connection() as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(self.pg_name)))
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.pg_name)))
            self.url = with_database(self.admin_url, self.pg_name)
        os.environ["DATABASE_URL"] = self.url
        return self.url

    def drop(self):
        if self.tempdir:
            shutil.rmtree(self.tempdir, ignore_errors=True)
            self.tempdir = None
        if self.pg_name:
            try:
                from django.db import connections

                connections.close_all()
            except Exception:  # Django may not be set up yet
                pass
            from psycopg import sql

            with self.admin_connection() as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.pg_name))
                )
            self.pg_name = None

    def admin_connection(self):
        """A connection to the server the URL names: to its database, or to `postgres` when that one does not exist."""
        import psycopg

        try:
            return psycopg.connect(self.admin_url, autocommit=True)
        except psycopg.OperationalError as exc:
            if "does not exist" not in str(exc):
                raise
            return psycopg.connect(with_database(self.admin_url, "postgres"), autocommit=True)

    def describe(self):
        if self.backend == "sqlite":
            return self.url
        parts = urlsplit(self.url)
        return f"postgresql {parts.hostname}:{parts.port or 5432}/{self.pg_name}"


def measure_ceiling(simulator, count):
    """The connector's pages fetched and parsed with no database work."""
    from integrations.connectors.base import get_connector_class
    from integrations.connectors.http import VendorHttp

    connector_class = get_connector_class("simulator")
    settings = connector_settings(simulator, count, "ceiling")
    items = pages = 0
    with VendorHttp() as http:
        connector = connector_class(settings, {"api_key": API_KEY}, http)
        started = time.perf_counter()
        for page in connector.iter_pages(full=True, cursor=""):
            pages += 1
            items += len(page.items)
        seconds = time.perf_counter() - started
    return {"items": items, "pages": pages, "seconds": seconds, "items_per_s": items / seconds}


def measure_copy(simulator, count):
    """PostgreSQL: the rows a first full sync of big-N stores, written with one raw COPY; None elsewhere.

    The same table and columns as the engine writes, for an integration of
    its own; the rows (external id, content hash, canonical JSON) are read
    and prepared before the clock starts. Timed: the COPY and its commit.
    """
    import hashlib

    from django.db import connection, transaction
    from django.utils import timezone

    from integrations.connectors.base import get_connector_class
    from integrations.connectors.http import VendorHttp
    from integrations.models import SyncedRecord
    from integrations.sync.records import RECORD_COLUMNS, RECORDS, canonical_json

    if connection.vendor != "postgresql":
        return None
    integration = new_integration(simulator, count, "copy")
    rows = []
    with VendorHttp() as http:
        connector = get_connector_class(integration.connector)(integration.settings, integration.get_credentials(), http)
        for page in connector.iter_pages(full=True, cursor=""):
            for item in page.items:
                text = canonical_json(item.data)
                rows.append((item.external_id, hashlib.sha256(text.encode()).hexdigest(), text))
    now = timezone.now().isoformat()
    head, tail = (integration.pk, ITEM_TYPE), (now, now, None, False, None)
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {RECORDS} ({RECORD_COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(head + row + tail)
    seconds = time.perf_counter() - started
    stored = SyncedRecord.objects.filter(integration=integration).count()
    return {"rows": len(rows), "stored": stored, "seconds": seconds, "rows_per_s": len(rows) / seconds}


def measure_naive(simulator, count):
    """The same pages, each item saved with its own INSERT (autocommit, one transaction each)."""
    from django.utils import timezone

    from integrations.connectors.base import get_connector_class
    from integrations.connectors.http import VendorHttp
    from integrations.models import SyncedRecord
    from integrations.sync.records import content_hash

    integration = new_integration(simulator, count, "naive")
    connector_class = get_connector_class(integration.connector)
    items = 0
    with VendorHttp() as http:
        connector = connector_class(integration.settings, integration.get_credentials(), http)
        started = time.perf_counter()
        for page in connector.iter_pages(full=True, cursor=""):
            now = timezone.now()
            for item in page.items:
                SyncedRecord(
                    integration=integration,
                    item_type=ITEM_TYPE,
                    external_id=item.external_id,
                    content_hash=content_hash(item.data),
                    data=item.data,
                    first_synced_at=now,
                    last_synced_at=now,
                ).save()
                items += 1
        seconds = time.perf_counter() - started
    stored = SyncedRecord.objects.filter(integration=integration).count()
    return {"items": items, "stored": stored, "seconds": seconds, "items_per_s": items / seconds}


def run_in_child(simulator, count, *, resync=False, profile=False, no_query_log=False):
    command = [sys.executable, str(Path(__file__).resolve()), "--rss", str(count), "--simulator", simulator]
    if resync:
        command.append("--resync")
    if profile:
        command.append("--profile")
    if no_query_log:
        command.append("--no-query-log")
    # Through sh, which forks the child: a process started directly from this
    # one (vfork/exec) would inherit this process's peak RSS as its own
    # ru_maxrss, and fork without exec its current RSS.
    command = ["sh", "-c", '"$@"; exit $?', "sh", *command]
    completed = subprocess.run(command, cwd=ROOT, env=dict(os.environ), stdout=subprocess.PIPE, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"the full sync of big-{count} exited with status {completed.returncode}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def run_backend(args):
    base_environment()
    database = BenchDatabase(args.backend, args.database_url)
    results = {"backend": args.backend, "items": args.items, "small_items": args.small_items,
               "naive_items": args.naive_items}
    try:
        database.create()
        setup_django()
        from django.core.management import call_command

        name = args.backend
        say(f"[{name}] database {database.describe()}: migrating")
        started = time.perf_counter()
        call_command("migrate", verbosity=0, interactive=False)
        say(f"[{name}] migrated in {time.perf_counter() - started:.1f} s")

        results["ceiling"] = measure_ceiling(args.simulator, args.items)
        say(f"[{name}] ceiling (fetch + parse, no database): {results['ceiling']['items_per_s']:,.0f} items/s")

        small = run_in_child(args.simulator, args.small_items, no_query_log=args.no_query_log)
        results["small"] = small
        say(f"[{name}] first full sync of {args.small_items:,} in a fresh process: "
            f"{small['items_per_s']:,.0f} items/s, peak RSS {small['rss_kib'] / 1024:.1f} MiB")

        big = run_in_child(
            args.simulator, args.items, resync=True, profile=args.profile, no_query_log=args.no_query_log
        )
        results["big"] = big
        say(f"[{name}] first full sync of {args.items:,} in a fresh process: "
            f"{big['items_per_s']:,.0f} items/s ({big['cpu_seconds']:.2f} s of CPU in the process), peak RSS {big['rss_kib'] / 1024:.1f} MiB; "
            f"unchanged re-sync {big['resync']['items_per_s']:,.0f} items/s")

        results["copy"] = measure_copy(args.simulator, args.items)
        if results["copy"]:
            say(f"[{name}] raw COPY of the same {args.items:,} rows: {results['copy']['rows_per_s']:,.0f} rows/s")

        results["naive"] = measure_naive(args.simulator, args.naive_items)
        say(f"[{name}] naive per-item save of {args.naive_items:,}: {results['naive']['items_per_s']:,.0f} items/s")
    finally:
        database.drop()
    print(json.dumps(results), flush=True)


def start_own_simulator():
    from tests.plugins.simulator import SimulatorProcess

    return SimulatorProcess().start()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), help="measure on a fresh database of this kind")
    parser.add_argument("--database-url", help="for --backend postgres: a URL naming the server (its database is untouched)")
    parser.add_argument("--rss", type=int, metavar="N", help="child mode: one full sync of big-N in this process")
    parser.add_argument("--resync", action="store_true", help="child mode: then an unchanged full re-sync")
    parser.add_argument("--profile", action="store_true", help="cProfile the full syncs (prints to stderr; slows them)")
    parser.add_argument("--no-query-log", action="store_true", help="diagnostic: no DEBUG query log in the syncs")
    parser.add_argument("--simulator", help="the simulator's base URL (default: start one)")
    parser.add_argument("--items", type=int, default=100_000, help="items of the big sync (default 100000)")
    parser.add_argument("--small-items", type=int, default=10_000, help="items of the small RSS sync (default 10000)")
    parser.add_argument("--naive-items", type=int, default=10_000, help="items of the naive baseline (default 10000)")
    args = parser.parse_args(argv)
    if args.rss is None and args.backend is None:
        parser.error("give --backend or --rss")
    if args.backend == "postgres" and not args.database_url:
        parser.error("--backend postgres needs --database-url")

    base_environment()
    simulator = None
    if not args.simulator:
        simulator = start_own_simulator()
        args.simulator = simulator.base_url
    try:
        if args.rss is not None:
            run_child(args)
        else:
            run_backend(args)
    finally:
        if simulator is not None:
            simulator.cleanup()


if __name__ == "__main__":
    main()
