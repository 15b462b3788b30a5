"""How long a person's sync waits to start under load, and how many requests answer 409.

    python bench/urgent_load.py --seconds 60
    python bench/urgent_load.py --database-url postgres://... --redis-url redis://.../12 --clients 50 --rate 3.3

The project as it runs in production, on one machine: gunicorn (4 workers),
PostgreSQL, the Redis broker, a main qcluster and an urgent qcluster, the
vendor simulator with a tenth of the accounts `slow` (their items answer after
--slow-seconds, 5). The database the URL names is migrated and used (created
if it does not exist); the Redis database is flushed first. Then --clients
threads POST `/api/v1/integrations/<id>/sync` for random integrations, --rate
requests per second in all, for --seconds. Scheduled syncs are kept out of the
way (next_sync_at a day ahead) and the per-integration trigger limit is lifted,
so every answer is a 202 or a 409.

It prints one JSON object: the answers by status, the 409 share, and the
time-to-start (started_at - queued_at) of the sessions the 202s queued: p50,
p95 and max of those that started, how many had not started when the load
ended plus --drain seconds (counted in `p50/p95_with_waiting` at their wait
so far, a lower bound).
"""

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


def say(message):
    print(message, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ensure_database(url):
    import psycopg
    from psycopg import sql

    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def percentile(values, share):
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 2)


def prepare(args, simulator_url):
    """Tenant, API key and integrations (a tenth slow), all active and not due; returns (raw key, ids)."""
    import django

    django.setup()
    from django.utils import timezone

    from integrations.api_keys import create_api_key
    from integrations.models import Integration, Tenant
    from integrations.onboarding import create_integration

    stamp = f"{os.getpid()}-{int(time.time())}"
    tenant = Tenant.objects.create(name=f"Urgent load {stamp}", slug=f"urgent-load-{stamp}")
    _, raw = create_api_key(tenant, "urgent load")
    ids = []
    for index in range(args.integrations):
        scenario = "slow" if index < args.integrations * args.slow_share else "healthy"
        integration = create_integration(
            tenant,
            "simulator",
            f"{scenario} {index}",
            settings={"account": f"{scenario}.{stamp}-{index}", "base_url": simulator_url},
            credentials={"api_key": "good-key"},
            queue_first_sync=False,
        )
        ids.append(integration.pk)
    Integration.objects.filter(pk__in=ids).update(
        status=Integration.Status.ACTIVE,
        mapping_complete=True,
        first_sync_finished_at=timezone.now(),  # not a first sync: its outcome would not move it to QA
        next_sync_at=timezone.now() + timedelta(days=1),
    )
    return raw, ids


def load(args, base_url, key, ids):
    """--clients threads, --rate requests per second in all; returns [(status, session id or None)]."""
    import requests

    answers, lock = [], threading.Lock()
    counter = iter(range(10**9))
    start = time.monotonic() + 0.5
    end = start + args.seconds

    def client():
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {key}"
        while True:
            with lock:
                due = start + next(counter) / args.rate
            if due >= end:
                return
            time.sleep(max(0.0, due - time.monotonic()))
            try:
                response = http.post(f"{base_url}/api/v1/integrations/{random.choice(ids)}/sync", json={}, timeout=30)
                body = response.json()
                if response.status_code == 202:
                    answer = (202, body["session"]["id"])
                else:
                    answer = (f"{response.status_code} {body.get('error', {}).get('code', '')}".strip(), None)
            except requests.RequestException as exc:
                answer = (type(exc).__name__, None)
            with lock:
                answers.append(answer)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def report(answers, drain_end):
    from django.utils import timezone

    from integrations.models import SyncSession

    now = timezone.now()
    started, waiting = [], []
    session_ids = [pk for status, pk in answers if status == 202]
    for queued_at, started_at in SyncSession.objects.filter(pk__in=session_ids).values_list(
        "queued_at", "started_at"
    ):
        if started_at is None:
            waiting.append((now - queued_at).total_seconds())
        else:
            started.append((started_at - queued_at).total_seconds())
    by_status = {}
    for status, _ in answers:
        by_status[str(status)] = by_status.get(str(status), 0) + 1
    return {
        "requests": len(answers),
        "answers": by_status,
        "share_409": round(by_status.get("409 already_syncing", 0) / len(answers), 3) if answers else None,
        "sessions_queued": len(session_ids),
        "started": len(started),
        "not_started": len(waiting),
        "time_to_start_p50": percentile(started, 0.5),
        "time_to_start_p95": percentile(started, 0.95),
        "time_to_start_max": round(max(started), 2) if started else None,
        "p50_with_waiting": percentile(started + waiting, 0.5),
        "p95_with_waiting": percentile(started + waiting, 0.95),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/sc_urgent")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--drain", type=float, default=10, help="seconds to let started syncs catch up afterwards")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rate", type=float, default=3.3)
    parser.add_argument("--integrations", type=int, default=100)
    parser.add_argument("--slow-share", type=float, default=0.1)
    parser.add_argument("--slow-seconds", type=float, default=5)
    parser.add_argument("--gunicorn-workers", type=int, default=4)
    parser.add_argument("--urgent-workers", type=int, help="Q_URGENT_WORKERS (default: the setting's)")
    parser.add_argument("--max-per-connector", type=int, help="SYNC_MAX_RUNNING_PER_CONNECTOR")
    args = parser.parse_args(argv)

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "syncconsole.settings",
        "DEBUG": "1",
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "RATE_LIMIT_SYNC_TRIGGERS": "1000000/600",
    }
    if args.urgent_workers:
        env["Q_URGENT_WORKERS"] = str(args.urgent_workers)
    if args.max_per_connector is not None:
        env["SYNC_MAX_RUNNING_PER_CONNECTOR"] = str(args.max_per_connector)
    os.environ.update(env)

    import redis

    from tests.plugins.simulator import SimulatorProcess

    ensure_database(args.database_url)
    redis.Redis.from_url(args.redis_url).flushdb()
    subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)

    processes = []
    logs = Path(os.environ.get("TMPDIR", "/tmp")) / f"urgent-load-{os.getpid()}"
    logs.mkdir(exist_ok=True)

    def spawn(name, command, **extra):
        out = open(logs / f"{name}.log", "w")  # noqa: SIM115 (closed with the process)
        process = subprocess.Popen(
            command, cwd=ROOT, env={**env, **extra}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        processes.append((name, process, out))
        return process

    simulator = SimulatorProcess(slow_seconds=args.slow_seconds)
    simulator.start()
    try:
        key, ids = prepare(args, simulator.base_url)
        port = free_port()
        spawn(
            "gunicorn",
            [GUNICORN, "syncconsole.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(args.gunicorn_workers)],
        )
        spawn("qcluster-main", [PYTHON, "manage.py", "qcluster"])
        spawn("qcluster-urgent", [PYTHON, "manage.py", "qcluster"], Q_CLUSTER_NAME="urgent")
        base_url = f"http://127.0.0.1:{port}"
        import requests

        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base_url}/api/v1/openapi.json", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"gunicorn did not answer; see {logs}")
            time.sleep(0.5)
        time.sleep(3)  # the clusters' workers start
        say(f"load: {args.clients} clients, {args.rate}/s for {args.seconds} s on {len(ids)} integrations")
        answers = load(args, base_url, key, ids)
        say(f"drain: {args.drain} s")
        time.sleep(args.drain)
        result = report(answers, args.drain)
        from django.conf import settings

        result["urgent_workers"] = int(env.get("Q_URGENT_WORKERS") or settings.Q_CLUSTER["ALT_CLUSTERS"]["urgent"]["workers"])
        result["max_running_per_connector"] = settings.SYNC_MAX_RUNNING_PER_CONNECTOR
        result["logs"] = str(logs)
        print(json.dumps(result, indent=2))
    finally:
        for _, process, out in reversed(processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for _, process, out in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            out.close()
        simulator.stop()


if __name__ == "__main__":
    main()
