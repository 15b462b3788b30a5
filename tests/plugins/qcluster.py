"""Pytest plugin: real django-q2 clusters (``manage.py qcluster``) as subprocesses.

``QCluster`` starts ``manage.py qcluster`` in its own process group with an
environment built for the test: the real settings module (the test settings
run tasks inline), DATABASE_URL pointing at the test database this process
uses, REDIS_URL set (Redis broker) or removed (ORM broker), Q_CLUSTER_NAME
for an ALT_CLUSTERS queue such as ``urgent``, and any extra variables
(SYNC_LEASE_SECONDS, Q_WORKERS, Q_RETRY, ...). ``stop()`` ends it politely
and then by force; ``kill()`` SIGKILLs the whole group at once, the way a
worker machine dies.

The ``qcluster_factory`` fixture starts clusters on demand and stops every
one of them at teardown, also when the test failed. Tests that use it must
be ``django_db(transaction=True)`` so that the subprocess sees committed rows.
"""

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The sentinel logs "Q Cluster <name> [<queue>] running." once its pusher,
# workers and monitor are up.
READY_RE = re.compile(r"Q Cluster \S+ \[[^\]]*\] running\.")


def database_url(settings_dict):
    """A DATABASE_URL (django-environ syntax) for the database described by a settings dict.

    Pass ``django.db.connection.settings_dict``: during a test its NAME is
    the test database (``test_<name>``), which is what a subprocess must use.
    """
    engine = settings_dict["ENGINE"]
    if "postgresql" not in engine:
        raise ValueError(f"Real clusters need PostgreSQL, not {engine}.")
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(str(settings_dict.get("PASSWORD") or ""), safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    if host.startswith("/"):  # a Unix socket directory
        host = quote(host, safe="")
    port = settings_dict.get("PORT") or "5432"
    return f"postgres://{auth}{host}:{port}/{quote(settings_dict['NAME'], safe='')}"


def redis_url_with_db(url, db):
    """The same Redis server with another database number."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{int(db)}", parts.query, parts.fragment))


class QCluster:
    """One ``manage.py qcluster`` process (and its sentinel, pusher, workers and monitor)."""

    def __init__(self, *, database_url, redis_url=None, cluster_name=None, env=None, startup_timeout=30):
        self.database_url = database_url
        self.redis_url = redis_url
        self.cluster_name = cluster_name
        self.extra_env = {key: str(value) for key, value in (env or {}).items()}
        self.startup_timeout = startup_timeout
        self.process = None
        self._log_path = None
        self._log_file = None

    @property
    def label(self):
        broker = "redis" if self.redis_url else "orm"
        return f"qcluster[{self.cluster_name or 'default'}/{broker}]"

    def environment(self):
        env = dict(os.environ)
        # The real settings (sync off), then exactly what this cluster needs.
        env["DJANGO_SETTINGS_MODULE"] = "syncconsole.settings"
        env["DATABASE_URL"] = self.database_url
        env["PYTHONUNBUFFERED"] = "1"
        env["Q_SYNC"] = "false"
        for name in ("REDIS_URL", "Q_CLUSTER_NAME"):
            env.pop(name, None)
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        if self.cluster_name:
            env["Q_CLUSTER_NAME"] = self.cluster_name
        env.update(self.extra_env)
        return env

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self):
        return None if self.process is None else self.process.pid

    def start(self, wait=True):
        if self.running:
            return self
        fd, self._log_path = tempfile.mkstemp(prefix="qcluster-", suffix=".log")
        os.close(fd)
        self._log_file = open(self._log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=REPO_ROOT,
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            # Its own process group: kill() takes the workers down with it.
            start_new_session=True,
        )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.startup_timeout)
        while time.monotonic() < deadline:
            if READY_RE.search(self.log()):
                return self
            if not self.running:
                break
            time.sleep(0.1)
        log = self.log()
        self.stop()
        raise RuntimeError(f"{self.label} did not start. Its log:\n{log}")

    def _signal_group(self, signum):
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            return False
        return True

    def kill(self):
        """SIGKILL the whole process group, no clean-up possible; returns once every member is dead."""
        if self.process is None:
            return None
        self._signal_group(signal.SIGKILL)
        self.process.wait(10)
        self._wait_group_gone()
        return self.process.returncode

    def stop(self, timeout=10):
        """SIGTERM the cluster (it stops its children); SIGKILL what is left after `timeout`. Idempotent."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left of the group (the main process may have died
        # before its children) goes too.
        self._signal_group(signal.SIGKILL)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a process that survives SIGKILL
            pass
        self._wait_group_gone()
        return self.process.returncode

    def _group_alive(self):
        """Whether a member of the process group still runs (zombies waiting to be reaped do not count)."""
        pgid = self.process.pid
        if not os.path.isdir("/proc"):
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return False
            return True
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    stat = handle.read().decode("ascii", "replace")
            except OSError:
                continue
            # pid (comm) state ppid pgrp ...; comm may contain spaces and parentheses.
            fields = stat.rsplit(")", 1)[-1].split()
            if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                return True
        return False

    def _wait_group_gone(self, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._group_alive():
                return True
            time.sleep(0.05)
        return False

    def cleanup(self):
        code = self.stop()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._log_path:
            try:
                os.unlink(self._log_path)
            except FileNotFoundError:
                pass
            self._log_path = None
        return code

    def log(self):
        if not self._log_path or not os.path.exists(self._log_path):
            return ""
        with open(self._log_path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.cleanup()


@pytest.fixture
def qcluster_factory():
    """``qcluster_factory(redis_url=None, cluster_name=None, env=None, start=True)`` -> a QCluster.

    The database is the test database of the default connection. Every
    cluster is stopped at teardown and the end of its log goes to stderr,
    which pytest shows only when the test failed.
    """
    from django.db import connection

    url = database_url(connection.settings_dict)
    clusters = []

    def make(*, redis_url=None, cluster_name=None, env=None, start=True, **kwargs):
        cluster = QCluster(
            database_url=url, redis_url=redis_url, cluster_name=cluster_name, env=env, **kwargs
        )
        clusters.append(cluster)
        if start:
            cluster.start()
        return cluster

    try:
        yield make
    finally:
        for cluster in reversed(clusters):
            cluster.stop()
            sys.stderr.write(f"\n----- {cluster.label} log (end) -----\n{cluster.log()[-8000:]}\n")
        for cluster in clusters:
            cluster.cleanup()
