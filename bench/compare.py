"""The first full sync of two checkouts of the engine, in turn, against one PostgreSQL database.

    python bench/compare.py --database-url postgres://postgres@127.0.0.1:5432/postgres /path/to/other/checkout [--rounds 3]

On a shared 2-core machine the figures of `bench/run.py` move by a fifth
from one run to the next; two engines are compared best in turn, round
after round, on the same database. Each round runs, for this checkout and
the other one (in alternating order), a first full sync of big-N in a fresh
process of that checkout (`bench/sync_throughput.py --rss N`, against that
checkout's own simulator), then a raw COPY of the same rows; it prints each
sync's time, its process's CPU time (where that checkout's bench reports
it) and its ratio to the COPY, then the medians. The other checkout uses
this checkout's virtualenv and must have the same migrations. Exit status 0.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import sync_throughput as throughput  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("other", help="another checkout of the project (e.g. a git worktree of an earlier commit)")
    parser.add_argument("--database-url", required=True, help="a URL naming the PostgreSQL server (its database is untouched)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--items", type=int, default=100_000)
    args = parser.parse_args(argv)
    checkouts = [str(ROOT), str(Path(args.other).resolve())]

    throughput.base_environment()
    from tests.plugins.simulator import SimulatorProcess

    simulators = {}
    for checkout in checkouts:
        os.chdir(checkout)
        simulators[checkout] = SimulatorProcess().start()
    os.chdir(ROOT)
    database = throughput.BenchDatabase("postgres", args.database_url)
    results = {checkout: [] for checkout in checkouts}
    try:
        database.create()
        throughput.setup_django()
        from django.core.management import call_command
        from django.db import connections

        call_command("migrate", verbosity=0, interactive=False)
        for round_number in range(args.rounds):
            for checkout in checkouts if round_number % 2 == 0 else checkouts[::-1]:
                connections.close_all()
                simulator = simulators[checkout].base_url
                command = [sys.executable, "bench/sync_throughput.py", "--rss", str(args.items), "--simulator", simulator]
                completed = subprocess.run(command, cwd=checkout, env=dict(os.environ), stdout=subprocess.PIPE, text=True, check=True)
                sync = json.loads(completed.stdout.strip().splitlines()[-1])
                copy = throughput.measure_copy(simulator, args.items)
                ratio = sync["items_per_s"] / copy["rows_per_s"]
                cpu = sync.get("cpu_seconds")
                results[checkout].append((ratio, sync["seconds"], cpu))
                cpu_text = f"{cpu:.2f} s" if cpu is not None else "-"
                print(f"round {round_number + 1} {checkout}: sync {sync['seconds']:.2f} s (CPU {cpu_text}), "
                      f"raw COPY {copy['seconds']:.2f} s, ratio {ratio:.2f}x", flush=True)
        for checkout, rows in results.items():
            cpus = [cpu for _ratio, _seconds, cpu in rows if cpu is not None]
            print(f"{checkout}: median ratio {statistics.median(r for r, _s, _c in rows):.2f}x, "
                  f"median sync {statistics.median(s for _r, s, _c in rows):.2f} s"
                  + (f", median CPU {statistics.median(cpus):.2f} s" if cpus else ""))
    finally:
        from django.db import connections

        connections.close_all()
        database.drop()
        for simulator in simulators.values():
            simulator.cleanup()


if __name__ == "__main__":
    main()
