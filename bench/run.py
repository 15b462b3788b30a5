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
POSTGRES_SCHEMES = ("postgres", "postgresql", "pgsql", "psql")
LABELS = {"sqlite": "SQLite", "postgres": "PostgreSQL"}

TARGET_ITEMS_PER_S = 10_000
TARGET_VS_NAIVE = 20.0
TARGET_RESYNC_SPEEDUP = 3.0
TARGET_RSS_RATIO = 1.3


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
            good = passes(value)
            if b == "postgres":
                row.append(f"{show(value)}  {'PASS' if good else 'FAIL'}")
                failed = failed or not good
            else:
                row.append(f"{show(value)}  (info: {'meets' if good else 'misses'})")
        rows.append(row)
    rows.append(["First full sync / ceiling (info)",
                 *cells(lambda f: f"{f['of_ceiling']:.0%} of ceiling")])
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
    results = {}
    try:
        for backend in backends:
            results[backend] = run_backend(backend, simulator.base_url, args, pg_url if backend == "postgres" else None)
    finally:
        simulator.cleanup()
    failed = print_report(results, args, time.monotonic() - started)
    if args.carddav_contacts:
        failed = print_carddav(run_carddav(args.carddav_contacts), args.carddav_contacts) or failed
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
