"""gunicorn for SyncConsole's web process: `gunicorn --config deploy/gunicorn.conf.py syncconsole.wsgi`.

Every value can be changed from the environment (GUNICORN_*), so one file
serves one machine and many; docs/DEPLOY.md says when to change which.
"""

import os
import shutil
import tempfile


def _int(name, default):
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


# Comma-separated: "127.0.0.1:8000" behind a proxy on the same machine,
# "0.0.0.0:8000" behind a load balancer, "unix:/run/syncconsole-web/web.sock".
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000").split(",")

# Sync workers: a request holds one worker for as long as it takes; the
# longest are a person's credential check or connection test, which wait for
# the vendor up to WEB_VENDOR_BUDGET_SECONDS (15). gunicorn's rule of thumb,
# two per CPU and one more. Each worker keeps one PostgreSQL connection open.
workers = _int("GUNICORN_WORKERS", 2 * (os.cpu_count() or 1) + 1)

# A worker silent this long is killed and replaced: above any request's budget.
timeout = _int("GUNICORN_TIMEOUT", 60)
# On SIGTERM or a reload (SIGHUP), requests in flight get this long to finish.
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)

# Workers are replaced after this many requests (spread by the jitter), so
# that memory a request leaves behind does not pile up.
max_requests = _int("GUNICORN_MAX_REQUESTS", 2000)
max_requests_jitter = max_requests // 10

# The workers' heartbeat files in memory: on a disk a slow fsync can make
# the arbiter think a worker hangs.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# Addresses whose X-Forwarded-Proto gunicorn believes (the proxy or load
# balancer; "*" when only it can reach this port). Django reads the header
# itself (SECURE_PROXY_SSL_HEADER) and the client's address from
# X-Forwarded-For by TRUSTED_PROXY_COUNT: the proxy must overwrite both.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# One line per request on stdout (the journal, under systemd): client and
# forwarded-for addresses, request, status, bytes, milliseconds, referrer,
# user agent, and the X-Request-ID that the application's own log lines carry.
# The logger class masks the tokens of re-authentication and password-reset
# links wherever they appear (path, referrer).
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
access_log_format = (
    '%(h)s "%({x-forwarded-for}i)s" "%(r)s" %(s)s %(b)s %(M)sms "%(f)s" "%(a)s" request_id=%({x-request-id}o)s'
)
logger_class = "syncconsole.access_log.AccessLogger"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
proc_name = "syncconsole-web"

# Under systemd (RuntimeDirectory=), the unit's runtime directory: emptied at
# each start, removed at each stop.
RUNTIME = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0] or None

# gunicorn's control socket (`gunicornc`) there, not in the service user's home.
if RUNTIME:
    control_socket = os.path.join(RUNTIME, "gunicorn.ctl")

# prometheus_client's multiprocess mode (docs/OPERATIONS.md): every worker
# writes its HTTP latency samples to files in PROMETHEUS_MULTIPROC_DIR, and
# whichever worker answers /metrics adds them all up. Unless the environment
# names that directory, each start makes an empty one (in the runtime
# directory under systemd) and removes it at exit.
MADE_METRICS_DIR = "SYNCCONSOLE_MADE_PROMETHEUS_DIR"


def on_starting(server):
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        directory = tempfile.mkdtemp(prefix="prometheus-", dir=RUNTIME)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.environ[MADE_METRICS_DIR] = directory


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if os.environ.get(MADE_METRICS_DIR):
        shutil.rmtree(os.environ[MADE_METRICS_DIR], ignore_errors=True)
