"""`make demo`: migrate, start the vendor simulator and Radicale, seed, then serve.

Starts the vendor simulator, a Radicale CardDAV server (its configuration,
users and address books under var/radicale/), the web server, a qcluster for
scheduled work and a second one (Q_CLUSTER_NAME=urgent) for syncs people ask
for; prints the URLs and logins; Ctrl-C stops them all.

Every process gets SITE_URL from DEMO_HOST and DEMO_PORT (links in emails
lead to this web server) and EMAIL_URL=filemail:///var/outbox: emails are
kept in var/outbox/ and shown by the console's "Outbox (development)" page
instead of filling the terminal (`demo_environment`).
"""

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
RADICALE_DIR = ROOT / "var" / "radicale"
# Where emails go instead of the terminal: the console's "Outbox (development)" page lists them.
OUTBOX_DIR = "var/outbox"
CARDDAV_USER, CARDDAV_PASSWORD = "demo", "demo"


@dataclass(frozen=True)
class DemoConfig:
    """Where the demo's servers listen, from DEMO_HOST, DEMO_PORT, SIMULATOR_PORT and RADICALE_PORT."""

    host: str
    web_port: int
    simulator_port: int
    radicale_port: int

    @classmethod
    def from_environment(cls, environ):
        return cls(
            host=environ.get("DEMO_HOST", "127.0.0.1"),
            web_port=int(environ.get("DEMO_PORT", "8000")),
            simulator_port=int(environ.get("SIMULATOR_PORT", "8765")),
            radicale_port=int(environ.get("RADICALE_PORT", "5232")),
        )

    @property
    def site_url(self):
        """The address links in emails point to: the web server's, reachable from this machine."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.web_port}"

    @property
    def simulator_url(self):
        return f"http://127.0.0.1:{self.simulator_port}"

    @property
    def radicale_url(self):
        return f"http://127.0.0.1:{self.radicale_port}"


def demo_environment(config, environ):
    """The environment of every demo process: the simulator's address, links that follow DEMO_PORT, the outbox.

    SITE_URL, EMAIL_URL and LOG_LEVEL given by the caller win: a demo pointed at a real mail catcher keeps it.
    """
    env = {**environ, "VENDOR_SIMULATOR_URL": config.simulator_url, "PYTHONUNBUFFERED": "1"}
    env.setdefault("SITE_URL", config.site_url)
    env.setdefault("EMAIL_URL", f"filemail:///{OUTBOX_DIR}")
    # Warnings and errors only: the workers' and the seed's routine lines would push the
    # addresses out of sight within seconds (LOG_LEVEL=INFO brings them back).
    env.setdefault("LOG_LEVEL", "WARNING")
    return env


def banner(config, env):
    """What the terminal shows once everything runs: addresses, logins, where the emails are."""
    site = env.get("SITE_URL", config.site_url).rstrip("/")
    if env.get("EMAIL_URL", "").startswith("filemail:"):
        emails = f"{site}/admin/outbox/  (emails are kept there, not sent)"
    else:
        emails = f"sent through EMAIL_URL ({env['EMAIL_URL'].split('://', 1)[0]}://...)"
    return f"""
SyncConsole demo is running.

  Support console   {site}/admin/          login admin / admin
  Customer portal   {site}/portal/         login customer / customer (tenant admin of Acme), viewer / viewer
  Outbox            {emails}
  JSON API          {site}/api/v1/openapi.json   (a key from the portal's "API keys")
  Vendor simulator  {config.simulator_url}/health   API key good-key
  CardDAV server    {config.radicale_url}/   login {CARDDAV_USER} / {CARDDAV_PASSWORD} (Radicale)

  Ingram Micro (authentication failing) and Proofpoint (new credentials needed) sign in
  again with the API key good-key: Re-authenticate in the portal, or a link from the console.

Press Ctrl-C to stop the web server, the simulator, Radicale and the workers.
"""


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


def start_radicale(port):
    """Radicale on the port with one htpasswd user; its data stays in var/radicale/ between demos."""
    from passlib.hash import sha256_crypt  # Radicale's own dependency

    RADICALE_DIR.mkdir(parents=True, exist_ok=True)
    users = RADICALE_DIR / "users"
    users.write_text(f"{CARDDAV_USER}:{sha256_crypt.using(rounds=5000).hash(CARDDAV_PASSWORD)}\n")
    config = RADICALE_DIR / "config"
    config.write_text(
        f"""[server]
hosts = 127.0.0.1:{port}

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
    config = DemoConfig.from_environment(os.environ)
    env = demo_environment(config, os.environ)
    for port in (config.web_port, config.simulator_port, config.radicale_port):
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
        simulator = ["vendor_simulator", "--port", str(config.simulator_port)]
        processes.append(manage(*simulator, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        if not wait_for(f"{config.simulator_url}/health"):
            sys.exit("The vendor simulator did not start.")
        processes.append(start_radicale(config.radicale_port))
        if not wait_for(f"{config.radicale_url}/"):
            sys.exit(f"Radicale did not start; see {RADICALE_DIR / 'radicale.log'}.")
        print("Loading demo data through real syncs against the vendor simulator and Radicale...", flush=True)
        carddav = [
            "--carddav-url", config.radicale_url, "--carddav-user", CARDDAV_USER, "--carddav-password", CARDDAV_PASSWORD
        ]
        subprocess.run([PYTHON, "manage.py", "seed_demo", *carddav], cwd=ROOT, env=env, check=True)
        processes.append(manage("runserver", "--noreload", f"{config.host}:{config.web_port}", env=env))
        processes.append(manage("qcluster", env=env))
        processes.append(manage("qcluster", env={**env, "Q_CLUSTER_NAME": "urgent"}))
        if not wait_for(f"{config.site_url}/admin/login/"):
            sys.exit("The web server did not start.")
        print(banner(config, env), flush=True)
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        sys.exit("A demo process stopped unexpectedly; stopping the others.")
    except KeyboardInterrupt:
        print("\nStopping...", flush=True)
    finally:
        stop_all()

if __name__ == "__main__":
    main()
