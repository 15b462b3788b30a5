"""`make demo`: migrate, start the vendor simulator and Radicale, seed, then serve.

Starts the vendor simulator, a Radicale CardDAV server (its configuration,
users and address books under var/radicale/), the web server, a qcluster for
scheduled work and a second one (Q_CLUSTER_NAME=urgent) for syncs people ask
for; prints the URLs and logins; Ctrl-C stops them all.
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
RADICALE_PORT = int(os.environ.get("RADICALE_PORT", "5232"))
RADICALE_URL = f"http://127.0.0.1:{RADICALE_PORT}"
RADICALE_DIR = ROOT / "var" / "radicale"
CARDDAV_USER, CARDDAV_PASSWORD = "demo", "demo"


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


def start_radicale():
    """Radicale on RADICALE_PORT with one htpasswd user; its data stays in var/radicale/ between demos."""
    from passlib.hash import sha256_crypt  # Radicale's own dependency

    RADICALE_DIR.mkdir(parents=True, exist_ok=True)
    users = RADICALE_DIR / "users"
    users.write_text(f"{CARDDAV_USER}:{sha256_crypt.using(rounds=5000).hash(CARDDAV_PASSWORD)}\n")
    config = RADICALE_DIR / "config"
    config.write_text(
        f"""[server]
hosts = 127.0.0.1:{RADICALE_PORT}

[auth]
type = htpasswd
htpasswd_filename = {users}
htpasswd_encryption = sha256

[rights]
type = owner_only

[storage]
filesystem_folder = {RADICALE_DIR / "collections"}

[logging]
level = warning
"""
    )
    with open(RADICALE_DIR / "radicale.log", "ab") as log:
        # Its own process group, like the others, so that stopping it stops it all.
        return subprocess.Popen(
            [PYTHON, "-m", "radicale", "--config", str(config)],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )


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
    for port in (WEB_PORT, SIMULATOR_PORT, RADICALE_PORT):
        if not port_free(port):
            sys.exit(
                f"Port {port} is in use: stop what runs there (or set DEMO_PORT / SIMULATOR_PORT / RADICALE_PORT)."
            )

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
        processes.append(start_radicale())
        if not wait_for(f"{RADICALE_URL}/"):
            sys.exit(f"Radicale did not start; see {RADICALE_DIR / 'radicale.log'}.")
        print("Loading demo data through real syncs against the vendor simulator and Radicale...", flush=True)
        carddav = ["--carddav-url", RADICALE_URL, "--carddav-user", CARDDAV_USER, "--carddav-password", CARDDAV_PASSWORD]
        subprocess.run([PYTHON, "manage.py", "seed_demo", *carddav], cwd=ROOT, env=env, check=True)
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
  CardDAV server    {RADICALE_URL}/  login {CARDDAV_USER} / {CARDDAV_PASSWORD} (Radicale)

Press Ctrl-C to stop the web server, the simulator, Radicale and the workers.
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
