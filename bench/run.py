"""`make bench`: sync throughput on SQLite, and on PostgreSQL when DATABASE_URL names one.

Starts one vendor simulator, runs bench/sync_throughput.py once per backend
(each in its own process, on a database of its own), then prints the figures
and the ratios against the targets. The targets apply to PostgreSQL; the
SQLite figures are informational. Then bench/carddav_throughput.py measures a
CardDAV sync from a local Radicale against Radicale alone (--carddav-contacts
0 skips it). The exit status is 1 when a PostgreSQL target is missed, a
backend could not be measured, or a sync did not do what it should (wrong
counts, unsuccessful session).
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

WORKER = Path(__file__).resolve().parent / "sync_throughput.py"
CARDDAV_WORKER = Path(__file__).resolve().parent / "carddav_throughput.py"
SCALE_WORKER = Path(__file__).resolve().parent / "scale.py"
POSTGRES_SCHEMES = ("postgres", "postgresql", "pgsql", "psql")
LABELS = {"sqlite": "SQLite", "postgres": "PostgreSQL"}

TARGET_ITEMS_PER_S = 10_000
TARGET_VS_NAIVE = 20.0
TARGET_RESYNC_SPEEDUP = 3.0
TARGET_RSS_RATIO = 1.3
TARGET_VS_COPY = 0.5


def postgres_url():
    url = os.environ.get("DATABASE_URL", "")
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    return url if scheme in POSTGRES_SCHEMES else None


def run_backend(backend, simulator_url, args, database_url=None):
    command = [
        sys.executable, str(WORKER), "--backend", backend, "--simulator", simulator_url,
        "--items", str(args.items), "--small-items", str(args.small_items), "--naive-items", str(args.naive_items),
    ]
    if database_url:
        command += ["--database-url", database_url]
    if args.profile:
        command.append("--profile")
    if args.no_query_log:
        command.append("--no-query-log")
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)  # the worker points it at its own database
    started = time.monotonic()
    completed = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    elapsed = time.monotonic() - started
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        return {"error": f"exited with status {completed.returncode}", "elapsed": elapsed}
    result = json.loads(lines[-1])
    result["elapsed"] = elapsed
    return result


# -- reading the results -------------------------------------------------


def figures(result):
    big, small, naive = result["big"], result["small"], result["naive"]
    first = big["items_per_s"]
    copy = (result.get("copy") or {}).get("rows_per_s")
    return {
        "ceiling": result["ceiling"]["items_per_s"],
        "first": first,
        "resync": big["resync"]["items_per_s"],
        "naive": naive["items_per_s"],
        "small": small["items_per_s"],
        "rss_small": small["rss_kib"] / 1024,
        "rss_big": big["rss_kib"] / 1024,
        "log_small": small["query_log"]["sql_bytes"] / 2**20,
        "log_big": big["query_log"]["sql_bytes"] / 2**20,
        "vs_naive": first / naive["items_per_s"],
        "resync_speedup": big["seconds"] / big["quick_resync"]["seconds"],
        "full_resync_speedup": big["seconds"] / big["resync"]["seconds"],
        "quick_resync_s": big["quick_resync"]["seconds"],
        "rss_ratio": big["rss_kib"] / small["rss_kib"],
        "of_ceiling": first / result["ceiling"]["items_per_s"],
        "resync_of_ceiling": big["resync"]["items_per_s"] / result["ceiling"]["items_per_s"],
        "copy": copy,
        "vs_copy": first / copy if copy else None,
    }


def expect_sync(problems, what, run, items, created, unchanged):
    session = run["session"]
    if session["state"] != "succeeded":
        problems.append(f"{what}: session ended {session['state']} {session['error_code']} {session['error_message']}")
    for counter, want in (("items_seen", items), ("items_created", created), ("items_unchanged", unchanged),
                          ("items_updated", 0), ("items_failed", 0), ("items_warnings", 0)):
        if session[counter] != want:
            problems.append(f"{what}: {counter}={session[counter]}, expected {want}")


def check(result):
    """What the runs did wrong (counts, states, RSS readings); [] when all is well."""
    problems = []
    items, small_items, naive_items = result["items"], result["small_items"], result["naive_items"]
    if result["ceiling"]["items"] != items:
        problems.append(f"ceiling: read {result['ceiling']['items']} items, expected {items}")
    for what, run, count in (("first full sync", result["big"], items),
                             (f"full sync of {small_items:,}", result["small"], small_items)):
        expect_sync(problems, what, run, count, created=count, unchanged=0)
        if run["records"] != count:
            problems.append(f"{what}: {run['records']} records stored, expected {count}")
        hwm = run.get("vm_hwm_kib")
        if hwm and run["rss_kib"] > hwm * 1.05:
            problems.append(f"{what}: ru_maxrss {run['rss_kib']} KiB exceeds VmHWM {hwm} KiB (inherited peak?)")
    expect_sync(problems, "unchanged re-sync", result["big"]["resync"], items, created=0, unchanged=items)
    expect_sync(problems, "unchanged quick re-sync", result["big"]["quick_resync"], 0, created=0, unchanged=0)
    copy = result.get("copy")
    if copy and copy["stored"] != items:
        problems.append(f"raw COPY: {copy['stored']} records stored, expected {items}")
    naive = result["naive"]
    if naive["stored"] != naive_items:
        problems.append(f"naive baseline: {naive['stored']} records stored, expected {naive_items}")
    return problems


# -- printing ------------------------------------------------------------


def rate(value):
    return f"{value:,.0f} items/s"


def table(rows, widths):
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [str(cell).rjust(width) for cell, width in zip(row[1:], widths[1:])]
        print("  ".join(cells).rstrip())


def print_report(results, args, elapsed):
    backends = list(results)
    ok = {b: "error" not in results[b] for b in backends}
    figs = {b: figures(results[b]) for b in backends if ok[b]}

    def cells(fn):
        return [fn(figs[b]) if ok[b] else "n/a" for b in backends]

    print()
    print(f"Sync throughput: big-N accounts through the vendor simulator, page_size 1000, "
          f"DEBUG={os.environ.get('DEBUG', '1')}{', query log off' if args.no_query_log else ''}")
    header = ["", *(LABELS[b] for b in backends)]
    n, s, v = args.items, args.small_items, args.naive_items
    rows = [
        header,
        [f"Ceiling: fetch + parse {n:,}, no database", *cells(lambda f: rate(f["ceiling"]))],
        [f"Raw COPY of the same {n:,} rows (PostgreSQL)",
         *cells(lambda f: f"{f['copy']:,.0f} rows/s" if f["copy"] else "n/a")],
        [f"First full sync of {n:,}", *cells(lambda f: rate(f["first"]))],
        [f"Unchanged full re-sync of {n:,}", *cells(lambda f: rate(f["resync"]))],
        [f"Unchanged quick (incremental) re-sync of {n:,}", *cells(lambda f: f"{f['quick_resync_s']:.2f} s")],
        ["  speed-up of the full re-sync over the first", *cells(lambda f: f"{f['full_resync_speedup']:.2f}x")],
        [f"Naive baseline, one save() per item ({v:,})", *cells(lambda f: rate(f["naive"]))],
        [f"First full sync of {s:,}", *cells(lambda f: rate(f["small"]))],
        [f"Peak RSS, full sync of {s:,}", *cells(lambda f: f"{f['rss_small']:.1f} MiB")],
        [f"Peak RSS, full sync of {n:,}", *cells(lambda f: f"{f['rss_big']:.1f} MiB")],
        [f"  SQL text in Django's query log at {s:,}", *cells(lambda f: f"{f['log_small']:.1f} MiB")],
        [f"  SQL text in Django's query log at {n:,}", *cells(lambda f: f"{f['log_big']:.1f} MiB")],
        ["Backend run time", *(f"{results[b]['elapsed']:.0f} s" for b in backends)],
    ]
    table(rows, [46] + [18] * len(backends))

    print()
    print("Targets (they apply to PostgreSQL; SQLite is informational)")
    targets = [
        (f"First full sync >= {TARGET_ITEMS_PER_S:,} items/s", "first", lambda x: x >= TARGET_ITEMS_PER_S,
         lambda x: f"{x:,.0f}/s"),
        (f"First full sync vs naive >= {TARGET_VS_NAIVE:g}x", "vs_naive", lambda x: x >= TARGET_VS_NAIVE,
         lambda x: f"{x:.2f}x"),
        (f"First full sync vs raw COPY >= {TARGET_VS_COPY:g}x", "vs_copy", lambda x: x >= TARGET_VS_COPY,
         lambda x: f"{x:.2f}x"),
        (f"Unchanged full re-sync >= {TARGET_RESYNC_SPEEDUP:g}x faster", "full_resync_speedup",
         lambda x: x >= TARGET_RESYNC_SPEEDUP, lambda x: f"{x:.2f}x"),
        (f"Unchanged (quick) re-sync >= {TARGET_RESYNC_SPEEDUP:g}x faster", "resync_speedup",
         lambda x: x >= TARGET_RESYNC_SPEEDUP, lambda x: f"{x:.2f}x"),
        (f"RSS({n // 1000}k) <= {TARGET_RSS_RATIO:g} x RSS({s // 1000}k)", "rss_ratio",
         lambda x: x <= TARGET_RSS_RATIO, lambda x: f"{x:.2f}x"),
    ]
    failed = False
    rows = [["", *(LABELS[b] for b in backends)]]
    for label, key, passes, show in targets:
        row = [label]
        for b in backends:
            if not ok[b]:
                row.append("n/a")
                failed = failed or b == "postgres"
                continue
            value = figs[b][key]
            if value is None:  # not measured on this backend (the raw COPY is PostgreSQL's)
                row.append("n/a")
                failed = failed or b == "postgres"
                continue
            good = passes(value)
            if b == "postgres":
                row.append(f"{show(value)}  {'PASS' if good else 'FAIL'}")
                failed = failed or not good
            else:
                row.append(f"{show(value)}  (info: {'meets' if good else 'misses'})")
        rows.append(row)
    rows.append(["First full sync / ceiling (info)",
                 *cells(lambda f: f"{f['of_ceiling']:.0%} of ceiling")])
    # A full re-sync still reads and parses every page: the ceiling bounds it.
    rows.append(["Unchanged full re-sync / ceiling (info)",
                 *cells(lambda f: f"{f['resync_of_ceiling']:.0%} of ceiling")])
    table(rows, [40] + [26] * len(backends))
    for b in backends:
        resync = results[b]["big"]["resync"] if ok[b] else {}
        if resync.get("analyzed_before") is not None:
            before, after = resync["analyzed_before"], resync["analyzed_after"]
            when = (f"last analyzed {before}" if before else "never analyzed") + (
                f", analyzed during it ({after})" if after != before else "")
            print(f"  {LABELS[b]}: planner statistics of the records table at the re-sync: {when}.")
    if "postgres" not in results:
        print("  PostgreSQL: not measured (DATABASE_URL does not name a PostgreSQL server); no target decided.")

    print()
    for b in backends:
        if not ok[b]:
            print(f"{LABELS[b]}: NOT MEASURED, the benchmark {results[b]['error']} (see its output above).")
            failed = True
            continue
        problems = check(results[b])
        if problems:
            failed = True
            print(f"{LABELS[b]} checks: FAILED")
            for problem in problems:
                print(f"  - {problem}")
        else:
            print(f"{LABELS[b]} checks: ok (every sync succeeded with the expected counts; ru_maxrss matches VmHWM)")
    print(f"Total {elapsed:.0f} s.")
    return failed


def run_scale(backend, simulator_url, args, database_url=None, *, full=True):
    """bench/scale.py for one backend: the scheduler at scale; when `full`, sustained syncs and the purge too."""
    command = [
        sys.executable, str(SCALE_WORKER), "--backend", backend, "--simulator", simulator_url,
        "--due", str(args.scale_due), "--workers", str(args.scale_workers),
        "--seconds", str(args.scale_seconds if full else 0), "--purge-rows", str(args.purge_rows if full else 0),
    ]
    if database_url:
        command += ["--database-url", database_url]
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    started = time.monotonic()
    completed = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        return {"error": f"exited with status {completed.returncode}"}
    result = json.loads(lines[-1])
    result["elapsed"] = time.monotonic() - started
    return result


def scale_problems(result):
    """What the scale runs did wrong; [] when all is well."""
    problems = []
    tick = result["tick"]
    if tick["queued"] != tick["due"] or tick["queued_with_task"] != tick["due"]:
        problems.append(f"tick: {tick['queued']} queued ({tick['queued_with_task']} with a task) of {tick['due']} due")
    if tick["seconds"] > tick["budget_seconds"]:
        problems.append(f"tick: {tick['seconds']:.1f} s, over its budget of {tick['budget_seconds']:.0f} s")
    purge = result.get("retention")
    if purge:
        made = sum(purge["made"].values())
        if "error" in purge["purge"]:
            problems.append(f"purge: {purge['purge']['error']}")
        elif purge["purge"]["rows"] != made:
            problems.append(f"purge: {purge['purge']['rows']} rows purged of {made} made old")
        for what in ("sync_during", "sync_alone"):
            if purge[what]["session"]["state"] != "succeeded":
                problems.append(f"{what}: session ended {purge[what]['session']['state']}")
    return problems


def purge_cell(result):
    if "retention" not in result:
        return "-"
    purge = result["retention"]["purge"]
    if "error" in purge:
        return "failed"
    return f"{purge['seconds']:.1f} s ({purge['rows'] / purge['seconds']:,.0f} rows/s)"


def sync_cell(result, which):
    if "retention" not in result:
        return "-"
    sync = result["retention"][which]
    overlap = "" if sync.get("purge_still_running", True) else " (purge over first)"
    return f"{sync['seconds']:.2f} s{overlap}"


def print_scale(results, args):
    """Print the scale figures; True when a backend could not be measured or a check failed."""
    backends = list(results)
    ok = {b: "error" not in results[b] for b in backends}

    def cells(fn):
        return [fn(results[b]) if ok[b] else "n/a" for b in backends]

    print()
    print(f"Scale: one scheduler tick at {args.scale_due:,} due (planner statistics taken before they existed, "
          f"10,000 more integrations with an open session); {args.scale_workers} worker processes; "
          f"a retention purge of {args.purge_rows:,} old rows")
    rows = [
        ["", *(LABELS[b] for b in backends)],
        ["Due query (first batch of 1,000)", *cells(lambda r: f"{r['tick']['due_query_ms']:.1f} ms")],
        [f"Tick: {args.scale_due:,} due, all queued", *cells(lambda r: f"{r['tick']['seconds']:.2f} s")],
        ["  queries, enqueueing to the ORM broker included",
         *cells(lambda r: f"{r['tick']['queries']} in {r['tick']['batches']} batches")],
    ]
    if args.scale_seconds:
        rows.append([f"Sustained syncs, {args.scale_workers} workers, {args.scale_seconds} s (healthy, 120 items)",
                     *cells(lambda r: f"{r['workers']['per_minute']:,.0f}/min" if "workers" in r else "-")])
        rows.append([f"  needed for {args.scale_due:,} hourly syncs",
                     *cells(lambda r: f"{math.ceil(args.scale_due / 60):,}/min")])
    if args.purge_rows:
        rows += [
            [f"Purge of {args.purge_rows:,} old rows", *cells(purge_cell)],
            ["Full sync of 10,000 while the purge runs", *cells(lambda r: sync_cell(r, "sync_during"))],
            ["The same sync, no purge", *cells(lambda r: sync_cell(r, "sync_alone"))],
        ]
    rows.append(["Scale run time", *cells(lambda r: f"{r['elapsed']:.0f} s")])
    table(rows, [60] + [22] * len(backends))
    failed = False
    for b in backends:
        if not ok[b]:
            print(f"{LABELS[b]} scale: NOT MEASURED, bench/scale.py {results[b]['error']} (see its output above).")
            failed = True
            continue
        problems = scale_problems(results[b])
        if problems:
            failed = True
            print(f"{LABELS[b]} scale checks: FAILED")
            for problem in problems:
                print(f"  - {problem}")
        else:
            print(f"{LABELS[b]} scale checks: ok (every due integration queued with its task within the tick's "
                  "budget; where measured, every old row purged and both syncs succeeded)")
    return failed


def run_carddav(contacts):
    """bench/carddav_throughput.py in its own process (its own Radicale and SQLite database)."""
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    command = [sys.executable, str(CARDDAV_WORKER), "--contacts", str(contacts)]
    completed = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        return {"error": f"exited with status {completed.returncode}"}
    return json.loads(lines[-1])


def print_carddav(result, contacts):
    """Print the CardDAV figures; True when they could not be measured or the sync went wrong."""
    print()
    print(f"CardDAV: first full sync of {contacts:,} contacts from a local Radicale (SQLite)")
    if "error" in result:
        print(f"CardDAV: NOT MEASURED, the benchmark {result['error']} (see its output above).")
        return True
    session = result["session"]
    table([
        ["Engine: discovery, listing, multiget pages, vCard parsing, rules, writes",
         f"{result['contacts_per_s']:,.0f} contacts/s", f"{result['seconds']:.2f} s"],
        [f"Radicale alone: the same {result['requests']} requests, answers read, not parsed",
         f"{result['radicale_contacts_per_s']:,.0f} contacts/s", f"{result['radicale_seconds']:.2f} s"],
        ["Engine time / Radicale time", f"{result['ratio']:.2f}x", ""],
    ], [72, 18, 9])
    problems = []
    if session["state"] != "succeeded":
        problems.append(f"session ended {session['state']} {session['error_code']} {session['error_message']}")
    for counter in ("items_seen", "items_created"):
        if session[counter] != contacts:
            problems.append(f"{counter}={session[counter]}, expected {contacts}")
    if result["records"] != contacts:
        problems.append(f"{result['records']} records stored, expected {contacts}")
    if problems:
        print("CardDAV checks: FAILED")
        for problem in problems:
            print(f"  - {problem}")
        return True
    print(f"CardDAV checks: ok (the sync succeeded; {contacts:,} contacts seen, created and stored)")
    return False


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000, help="items of the big sync (default 100000)")
    parser.add_argument("--small-items", type=int, default=10_000, help="items of the small RSS sync (default 10000)")
    parser.add_argument("--naive-items", type=int, default=10_000, help="items of the naive baseline (default 10000)")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), action="append",
                        help="only this backend (repeatable; default: SQLite, and PostgreSQL when configured)")
    parser.add_argument("--profile", action="store_true",
                        help="print cProfile of the big syncs on stderr (slows them: figures are then not comparable)")
    parser.add_argument("--no-query-log", action="store_true",
                        help="diagnostic: turn off Django's DEBUG query log in the syncs (DEBUG stays 1 otherwise)")
    parser.add_argument("--carddav-contacts", type=int, default=5000,
                        help="contacts of the CardDAV (Radicale) sync (default 5000; 0 skips it)")
    parser.add_argument("--scale-due", type=int, default=20_000,
                        help="integrations due at the measured scheduler tick (default 20000)")
    parser.add_argument("--scale-workers", type=int, default=4,
                        help="worker processes for the sustained syncs per minute (default 4)")
    parser.add_argument("--scale-seconds", type=int, default=30,
                        help="how long the workers run (default 30; 0 skips)")
    parser.add_argument("--purge-rows", type=int, default=1_000_000,
                        help="old rows the retention purge removes (default 1000000; 0 skips)")
    parser.add_argument("--no-scale", action="store_true", help="skip bench/scale.py (scheduler, workers, purge)")
    parser.add_argument("--scale-everywhere", action="store_true",
                        help="workers and purge on every backend (default: only the last, PostgreSQL if measured)")
    args = parser.parse_args(argv)

    os.environ["DJANGO_SETTINGS_MODULE"] = "syncconsole.settings"
    os.environ.setdefault("DEBUG", "1")
    os.environ["LOG_LEVEL"] = "WARNING"

    pg_url = postgres_url()
    backends = args.backend or ["sqlite", *(["postgres"] if pg_url else [])]
    if "postgres" in backends and not pg_url:
        parser.error("--backend postgres needs DATABASE_URL pointing at a PostgreSQL server")

    from tests.plugins.simulator import SimulatorProcess

    started = time.monotonic()
    simulator = SimulatorProcess()
    # The simulator needs no database; keep it off the PostgreSQL one.
    saved_url = os.environ.pop("DATABASE_URL", None)
    try:
        simulator.start()
    finally:
        if saved_url is not None:
            os.environ["DATABASE_URL"] = saved_url
    print(f"Vendor simulator at {simulator.base_url}", file=sys.stderr, flush=True)
    results, scale = {}, {}
    try:
        for backend in backends:
            results[backend] = run_backend(backend, simulator.base_url, args, pg_url if backend == "postgres" else None)
        if not args.no_scale:
            # The tick on every backend; the workers and the purge (minutes) on the last one, PostgreSQL
            # when there is one, unless --scale-everywhere.
            for backend in backends:
                full = args.scale_everywhere or backend == backends[-1]
                url = pg_url if backend == "postgres" else None
                scale[backend] = run_scale(backend, simulator.base_url, args, url, full=full)
    finally:
        simulator.cleanup()
    failed = print_report(results, args, time.monotonic() - started)
    if scale:
        failed = print_scale(scale, args) or failed
    if args.carddav_contacts:
        failed = print_carddav(run_carddav(args.carddav_contacts), args.carddav_contacts) or failed
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
