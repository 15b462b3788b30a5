"""Scale measurements for one database backend (bench/run.py runs it per backend, after sync_throughput).

    python bench/scale.py --backend sqlite --simulator URL
    python bench/scale.py --backend postgres --database-url postgres://... --simulator URL

On a database of its own (as sync_throughput.py: a temporary SQLite file or a
new PostgreSQL database, dropped at the end), migrated, it measures:

- the scheduler: N integrations due (default 20,000) beside 10,000 with an
  open session, the planner statistics taken before any of them existed
  (PostgreSQL: autovacuum off on both tables); the due query's time, then one
  tick: its time, its queries (enqueueing to the ORM broker included) and
  how many sessions it queued;
- sustained syncs: W worker processes (default 4) run the queued sessions
  (`run_session`, the simulator's healthy accounts, 120 items each) for S
  seconds (default 30); the syncs that succeeded within the window, per minute;
- retention: 1,000,000 old rows (events, finished sessions, resolved issues,
  alerts, webhook deliveries) purged by `integrations.retention.purge`; a
  full sync of 10,000 items runs in another process meanwhile, and the same
  sync again once the purge is over.

It prints progress on stderr and one JSON object on stdout. Child modes:
`--worker FILE` (run sessions listed in FILE until a deadline) and
`--sync N` (one full sync of big-N, timed).
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.sync_throughput import (
    API_KEY,
    BenchDatabase,
    base_environment,
    bench_tenant,
    new_integration,
    say,
    session_summary,
    setup_django,
    timed_full_sync,
)

OPEN_SESSIONS = 10_000
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")


# -- child modes ------------------------------------------------------------------------


def run_worker(args):
    """Run the sessions of the ids file, worker `index` of `of`, from --start-at until the deadline."""
    setup_django()
    from integrations.sync.runner import run_session

    ids = json.loads(Path(args.worker).read_text())[args.index :: args.of]
    delay = args.start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    deadline = args.start_at + args.seconds
    ran = 0
    for pk in ids:
        if time.time() >= deadline:
            break
        run_session(pk, worker=f"bench-{args.index}:{os.getpid()}")
        ran += 1
    print(json.dumps({"ran": ran}), flush=True)


def run_sync_child(args):
    setup_django()
    integration = new_integration(args.simulator, args.sync, "purge")
    seconds, session = timed_full_sync(integration)
    print(
        json.dumps({"items": args.sync, "seconds": seconds, "session": session_summary(session)}), flush=True
    )


def child(args, *extra):
    command = [sys.executable, str(Path(__file__).resolve()), "--simulator", args.simulator, *map(str, extra)]
    return subprocess.Popen(command, cwd=ROOT, env=dict(os.environ), stdout=subprocess.PIPE, text=True)


def child_result(process, what):
    out, _ = process.communicate()
    lines = out.strip().splitlines()
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"{what} exited with status {process.returncode}")
    return json.loads(lines[-1])


# -- the scheduler ----------------------------------------------------------------------


def stale_statistics():
    """PostgreSQL: statistics of the (near-empty) tables now, and no autovacuum to refresh them."""
    from django.db import connection

    from integrations.models import Integration, SyncSession

    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for model in (Integration, SyncSession):
            table = connection.ops.quote_name(model._meta.db_table)
            cursor.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = off)")
            cursor.execute(f"ANALYZE {table}")


def integrations_due(simulator, count, now, *, label, mapped=True):
    """`count` active integrations on healthy simulator accounts, due over the last ten minutes."""
    from integrations.models import AccountMapping, Integration

    tenant = bench_tenant()
    template = Integration(tenant=tenant)
    template.set_credentials({"api_key": API_KEY}, set_at=now)
    rows = Integration.objects.bulk_create(
        [
            Integration(
                tenant=tenant,
                connector="simulator",
                name=f"Scale {label} {n:05d}",
                settings={"account": f"healthy.scale-{label}-{os.getpid()}-{n}", "base_url": simulator},
                credentials_ciphertext=template.credentials_ciphertext,
                credentials_set_at=now,
                status=Integration.Status.ACTIVE,
                status_changed_at=now,
                first_sync_finished_at=now - timedelta(days=1),
                mapping_complete=True,
                next_sync_at=now - timedelta(seconds=n % 600),
            )
            for n in range(count)
        ],
        batch_size=2000,
    )
    if not mapped:
        return rows
    AccountMapping.objects.bulk_create(
        [
            AccountMapping(integration=i, vendor_account_id=a, vendor_account_name=a, tenant_account=a)
            for i in rows
            for a in ("acct-1", "acct-2")
        ],
        batch_size=2000,
    )
    return rows


def measure_tick(args):
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone
    from django_q.models import OrmQ

    from integrations.models import SyncSession
    from integrations.sync import scheduler

    now = timezone.now()
    integrations_due(args.simulator, 20, now + timedelta(days=1), label="early", mapped=False)
    stale_statistics()
    made = time.perf_counter()
    due = integrations_due(args.simulator, args.due, now, label="due")
    busy = integrations_due(args.simulator, OPEN_SESSIONS, now, label="busy", mapped=False)  # never run
    SyncSession.objects.bulk_create(
        [
            SyncSession(
                integration=i,
                state=SyncSession.State.RUNNING,
                trigger=SyncSession.Trigger.STAFF,
                queued_at=now,
                started_at=now,
                lease_expires_at=now + timedelta(days=1),
            )
            for i in busy
        ],
        batch_size=2000,
    )
    say(
        f"[scale] {args.due:,} integrations due, {OPEN_SESSIONS:,} more with an open session: "
        f"made in {time.perf_counter() - made:.1f} s"
    )
    started = time.perf_counter()
    first_batch = scheduler.due_ids(now, settings.SYNC_SCHEDULER_BATCH)
    due_query_ms = (time.perf_counter() - started) * 1000

    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        ids = scheduler.tick(now=now)
        seconds = time.perf_counter() - started
    queued = (
        SyncSession.objects.filter(pk__in=ids, state=SyncSession.State.QUEUED).exclude(task_id="").count()
    )
    result = {
        "due": args.due,
        "batch": settings.SYNC_SCHEDULER_BATCH,
        "batches": math.ceil(len(ids) / settings.SYNC_SCHEDULER_BATCH),
        "budget_seconds": settings.SYNC_SCHEDULER_TICK_SECONDS,
        "due_query_ms": due_query_ms,
        "due_query_rows": len(first_batch),
        "seconds": seconds,
        "statements": len(queries.captured_queries),
        "queries": len(
            [q for q in queries.captured_queries if not q["sql"].upper().startswith(TRANSACTION_CONTROL)]
        ),
        "queued": len(ids),
        "queued_with_task": queued,
        "broker_rows": OrmQ.objects.count(),
        "due_ids": [i.pk for i in due],
    }
    say(
        f"[scale] tick: {len(ids):,} queued in {seconds:.2f} s, {result['queries']} queries; "
        f"due query {due_query_ms:.1f} ms"
    )
    return result, ids


def measure_workers(args, ids):
    from integrations.models import SyncSession

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(ids, handle)
        path = handle.name
    try:
        start_at = time.time() + 5  # the workers' Django start-up is not measured
        processes = [
            child(
                args,
                "--worker",
                path,
                "--index",
                i,
                "--of",
                args.workers,
                "--start-at",
                start_at,
                "--seconds",
                args.seconds,
            )
            for i in range(args.workers)
        ]
        results = [child_result(p, f"worker {i}") for i, p in enumerate(processes)]
    finally:
        os.unlink(path)
    window_start = datetime.fromtimestamp(start_at, tz=UTC)
    window_end = window_start + timedelta(seconds=args.seconds)
    finished = SyncSession.objects.filter(
        pk__in=ids, finished_at__gte=window_start, finished_at__lte=window_end
    )
    succeeded = finished.filter(state=SyncSession.State.SUCCEEDED).count()
    result = {
        "workers": args.workers,
        "seconds": args.seconds,
        "finished": finished.count(),
        "succeeded": succeeded,
        "per_minute": succeeded * 60 / args.seconds,
        "ran": sum(r["ran"] for r in results),
    }
    say(
        f"[scale] {args.workers} workers, {args.seconds} s: {succeeded} syncs succeeded "
        f"({result['per_minute']:,.0f}/min)"
    )
    return result


# -- retention --------------------------------------------------------------------------


def clone_rows(model, template, count, overrides=None):
    """`count` copies of the template row in one INSERT ... SELECT, numbered n.i from 1."""
    from django.db import connection

    quote = connection.ops.quote_name
    columns = [f.column for f in model._meta.concrete_fields if not f.primary_key]
    overrides = overrides or {}
    values = [overrides.get(column, f"t.{quote(column)}") for column in columns]
    table = quote(model._meta.db_table)
    if connection.vendor == "postgresql":
        numbers, source = "", "generate_series(1, %s) AS n(i)"
    else:
        numbers, source = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %s) ", "n"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {table} ({", ".join(quote(c) for c in columns)})
                {numbers}SELECT {", ".join(values)} FROM {table} t, {source}
                WHERE t.{quote(model._meta.pk.column)} = %s""",
            [count - 1, template.pk],
        )


def old_rows(total, now):
    """`total` rows past every retention period, spread over the kinds; returns {kind: rows}."""
    from django.db import connection

    from alerts.models import Alert, WebhookDelivery, WebhookEndpoint
    from integrations.models import Integration, IntegrationEvent, SyncSession
    from issues.models import ErrorCode, SyncIssue

    old = now - timedelta(days=400)
    integration = Integration.objects.create(
        tenant=bench_tenant(),
        connector="simulator",
        name="Retention",
        status=Integration.Status.ACTIVE,
        mapping_complete=True,
    )
    code, _ = ErrorCode.objects.get_or_create(code="ITEM_MISSING_FIELD", defaults={"title": "Missing field"})
    endpoint = WebhookEndpoint.objects.create(
        tenant=integration.tenant, url="https://hooks.example.com/x", secret_ciphertext="x"
    )
    shares = {"events": 0.5, "sessions": 0.25, "issues": 0.15, "alerts": 0.05, "deliveries": 0.05}
    counts = {kind: int(total * share) for kind, share in shares.items()}
    counts["events"] += total - sum(counts.values())
    templates = {
        "events": (
            IntegrationEvent,
            IntegrationEvent.objects.create(
                integration=integration,
                kind=IntegrationEvent.Kind.SESSION_FINISHED,
                created_at=old,
                note="Succeeded.",
                data={"before": {}, "after": {}},
            ),
        ),
        "sessions": (
            SyncSession,
            SyncSession.objects.create(
                integration=integration,
                state=SyncSession.State.SUCCEEDED,
                queued_at=old,
                started_at=old,
                finished_at=old,
                items_seen=120,
                log=[{"at": "", "level": "info", "message": "Finished: succeeded."}],
            ),
        ),
        "issues": (
            SyncIssue,
            SyncIssue.objects.create(
                tenant=integration.tenant,
                integration=integration,
                error_code=code,
                item_type="item",
                external_id="item-1",
                first_seen_at=old,
                last_seen_at=old,
                state=SyncIssue.State.RESOLVED,
                resolved_at=old,
                message="Missing name.",
            ),
        ),
        "alerts": (
            Alert,
            Alert.objects.create(
                integration=integration,
                tenant=integration.tenant,
                rule=Alert.Rule.REPEATED_FAILURES,
                streak="s0",
                state=Alert.State.SENT,
                subject="x",
                created_at=old,
            ),
        ),
        "deliveries": (
            WebhookDelivery,
            WebhookDelivery.objects.create(
                endpoint=endpoint,
                event="session.finished",
                payload={"n": 1},
                state=WebhookDelivery.State.SUCCEEDED,
                created_at=old,
            ),
        ),
    }
    for kind, (model, template) in templates.items():
        # Alerts are unique per (integration, rule, streak): each copy its own streak.
        overrides = {"streak": "'s' || n.i"} if kind == "alerts" else None
        clone_rows(model, template, counts[kind], overrides)
    # The integration's newest alert stays (its streak's guard): one more, newer, lets the old ones go.
    Alert.objects.create(
        integration=integration,
        tenant=integration.tenant,
        rule=Alert.Rule.REPEATED_FAILURES,
        streak="newest",
        state=Alert.State.SENT,
        subject="x",
        created_at=now,
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for model, _ in templates.values():
                cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
    return counts


def measure_retention(args):
    from django.db import connections
    from django.utils import timezone

    from integrations import retention

    now = timezone.now()
    started = time.perf_counter()
    counts = old_rows(args.purge_rows, now)
    say(f"[scale] {sum(counts.values()):,} old rows made in {time.perf_counter() - started:.1f} s: {counts}")

    outcome = {}

    def purge():
        try:
            begun = time.perf_counter()
            results = retention.purge(now=now)
            outcome["seconds"] = time.perf_counter() - begun
            outcome["rows"] = sum(r.rows for r in results)
            outcome["batches"] = sum(r.batches for r in results)
            outcome["by_kind"] = {r.kind.name: r.rows for r in results}
        except Exception as exc:  # noqa: BLE001 (reported, not raised: the bench prints what it measured)
            outcome["error"] = repr(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=purge)
    thread.start()
    time.sleep(1)
    during = child(args, "--sync", args.purge_sync_items)
    during_result = child_result(during, "the sync during the purge")
    during_result["purge_still_running"] = thread.is_alive()
    thread.join()
    say(
        f"[scale] purge: {outcome.get('rows', 0):,} rows in {outcome.get('seconds', 0):.1f} s; "
        f"sync of {args.purge_sync_items:,} meanwhile {during_result['seconds']:.2f} s"
    )
    alone = child_result(child(args, "--sync", args.purge_sync_items), "the sync after the purge")
    say(f"[scale] the same sync without a purge: {alone['seconds']:.2f} s")
    return {"made": counts, "purge": outcome, "sync_during": during_result, "sync_alone": alone}


def run_backend(args):
    base_environment()
    database = BenchDatabase(args.backend, args.database_url)
    results = {"backend": args.backend}
    try:
        database.create()
        setup_django()
        from django.core.management import call_command

        say(f"[scale] database {database.describe()}: migrating")
        call_command("migrate", verbosity=0, interactive=False)
        tick, ids = measure_tick(args)
        results["tick"] = {k: v for k, v in tick.items() if k != "due_ids"}
        if args.seconds > 0:
            results["workers"] = measure_workers(args, ids)
        if args.purge_rows > 0:
            results["retention"] = measure_retention(args)
    finally:
        database.drop()
    print(json.dumps(results), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=("sqlite", "postgres"))
    parser.add_argument("--database-url", help="for --backend postgres: a URL naming the server")
    parser.add_argument("--simulator", help="the simulator's base URL (default: start one)")
    parser.add_argument(
        "--due", type=int, default=20_000, help="integrations due at the tick (default 20000)"
    )
    parser.add_argument(
        "--workers", type=int, default=4, help="worker processes for the sustained rate (default 4)"
    )
    parser.add_argument(
        "--seconds", type=int, default=30, help="how long the workers run (default 30; 0 skips)"
    )
    parser.add_argument(
        "--purge-rows", type=int, default=1_000_000, help="old rows to purge (default 1000000; 0 skips)"
    )
    parser.add_argument(
        "--purge-sync-items", type=int, default=10_000, help="items of the sync run beside the purge"
    )
    parser.add_argument("--worker", metavar="FILE", help="child mode: run the sessions listed in FILE")
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--of", type=int, default=1)
    parser.add_argument("--start-at", type=float, default=0)
    parser.add_argument("--sync", type=int, metavar="N", help="child mode: one timed full sync of big-N")
    args = parser.parse_args(argv)

    base_environment()
    simulator = None
    if not args.simulator:
        from tests.plugins.simulator import SimulatorProcess

        simulator = SimulatorProcess().start()
        args.simulator = simulator.base_url
    try:
        if args.worker:
            run_worker(args)
        elif args.sync:
            run_sync_child(args)
        elif args.backend:
            if args.backend == "postgres" and not args.database_url:
                parser.error("--backend postgres needs --database-url")
            run_backend(args)
        else:
            parser.error("give --backend, --worker or --sync")
    finally:
        if simulator is not None:
            simulator.cleanup()


if __name__ == "__main__":
    main()
