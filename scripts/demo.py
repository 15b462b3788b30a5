"""`make demo`: migrate, start the vendor simulator, seed, then serve.

Starts the vendor simulator, the web server, a qcluster for scheduled work
and a second one (Q_CLUSTER_NAME=urgent) for syncs people ask for; prints
the URLs and logins; Ctrl-C stops them all.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
HOST = os.environ.get("DEMO_HOST", "127.0.0.1")
WEB_PORT = int(os.environ.get("DEMO_PORT", "8000"))
SIMULATOR_PORT = int(os.environ.get("SIMULATOR_PORT", "8765"))
SIMULATOR_URL = f"http://127.0.0.1:{SIMULATOR_PORT}"


def port_free(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def manage(*args, env=None, **kwargs):
    # Each in its own process group, so stopping one stops its children too
    # (qcluster forks workers).
    return subprocess.Popen([PYTHON, "manage.py", *args], cwd=ROOT, env=env, start_new_session=True, **kwargs)


def signal_group(process, sig):
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def wait_for(url, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return True
        except requests.RequestException:
            time.sleep(0.3)
    return False


def main():
    # SIGTERM stops the demo the way Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    env = {**os.environ, "VENDOR_SIMULATOR_URL": SIMULATOR_URL, "PYTHONUNBUFFERED": "1"}
    for port in (WEB_PORT, SIMULATOR_PORT):
        if not port_free(port):
            sys.exit(f"Port {port} is in use: stop what runs there (or set DEMO_PORT / SIMULATOR_PORT).")

    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    processes = []

    def stop_all():
        for p in processes:
            signal_group(p, signal.SIGINT)
        deadline = time.monotonic() + 15
        for p in processes:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            signal_group(p, signal.SIGKILL)

    try:
        processes.append(manage("vendor_simulator", "--port", str(SIMULATOR_PORT), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        if not wait_for(f"{SIMULATOR_URL}/health"):
            sys.exit("The vendor simulator did not start.")
        print("Loading demo data through real syncs against the vendor simulator...", flush=True)
        subprocess.run([PYTHON, "manage.py", "seed_demo"], cwd=ROOT, env=env, check=True)
        processes.append(manage("runserver", "--noreload", f"{HOST}:{WEB_PORT}", env=env))
        processes.append(manage("qcluster", env=env))
        processes.append(manage("qcluster", env={**env, "Q_CLUSTER_NAME": "urgent"}))
        if not wait_for(f"http://{HOST}:{WEB_PORT}/admin/login/"):
            sys.exit("The web server did not start.")
        print(
            f"""
SyncConsole demo is running.

  Support console   http://{HOST}:{WEB_PORT}/admin/     login admin / admin
  Customer user     customer / customer (tenant admin of Acme), viewer / viewer
  Vendor simulator  {SIMULATOR_URL}/health

Press Ctrl-C to stop the web server, the simulator and the workers.
""",
            flush=True,
        )
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        sys.exit("A demo process stopped unexpectedly; stopping the others.")
    except KeyboardInterrupt:
        print("\nStopping...", flush=True)
    finally:
        stop_all()


if __name__ == "__main__":
    main()
