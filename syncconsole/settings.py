"""SyncConsole settings: one module, everything from the environment.

Production is the default: unless DEBUG is explicitly on, SECRET_KEY,
ALLOWED_HOSTS, SITE_URL, CREDENTIALS_KEYS, DATABASE_URL and EMAIL_URL must be
given or the process refuses to start with ImproperlyConfigured naming what
is missing. Development (SQLite in the checkout, the django-q2 ORM broker, the
console email backend, keys derived from a published key, loopback vendors)
is switched on with DEBUG=on: `make demo`, `make test`, `make bench` and
`.ci/run` do it themselves, and a `.env` file beside manage.py is read too.
"""

import base64
import hashlib
import os
from datetime import timedelta
from pathlib import Path

import environ
from csp import constants as csp
from django.core.exceptions import ImproperlyConfigured

from syncconsole import logs as _logs

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=False)
PRODUCTION = not DEBUG
_PRODUCTION_NEEDS = ("SECRET_KEY", "ALLOWED_HOSTS", "SITE_URL", "CREDENTIALS_KEYS", "DATABASE_URL", "EMAIL_URL")
if PRODUCTION:
    _missing = [name for name in _PRODUCTION_NEEDS if not env.str(name, default="")]
    if _missing:
        raise ImproperlyConfigured(
            f"Production mode (DEBUG is not on) needs {', '.join(_missing)}. Set them in the environment, "
            "or switch development mode on with DEBUG=on (a .env file beside manage.py works too). "
            "See README.md, 'Running in production'."
        )

_DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me-in-production-0123456789"


def _required(name):
    """A value production cannot run without."""
    value = env.str(name, default="")
    if PRODUCTION and not value:
        raise ImproperlyConfigured(
            f"{name} must be set when DEBUG is off (production). "
            "See README.md, 'Running in production'."
        )
    return value


SECRET_KEY = _required("SECRET_KEY") or _DEV_SECRET_KEY
if PRODUCTION and SECRET_KEY == _DEV_SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY is the development key; set a real one.")
# Previous secret keys, comma-separated: what they signed (sessions, password-reset
# links, list cursors) stays valid while they are here (docs/DEPLOY.md, key rotation).
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
if PRODUCTION and not env.str("ALLOWED_HOSTS", default=""):
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DEBUG is off (production).")

SITE_URL = (_required("SITE_URL") or "http://127.0.0.1:8000").rstrip("/")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[SITE_URL])

INSTALLED_APPS = [
    "syncconsole.admin_site.ConsoleAdminConfig",
    "django.contrib.auth",
    "axes",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_q",
    "integrations",
    "issues",
    "alerts",
    "audit",
    "portal",
    # Above the apps, without models: commands that read every app (export_tenant, import_tenant).
    "syncconsole",
]

MIDDLEWARE = [
    # First: every line logged while answering carries the request's id; the time
    # measured is the whole answer's.
    "syncconsole.logs.RequestContextMiddleware",
    "syncconsole.metrics.HttpMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "audit.context.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "syncconsole.middleware.PermissionsPolicyMiddleware",
    "syncconsole.middleware.IdleSessionMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "syncconsole.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "syncconsole.outbox.outbox_link",
            ],
        },
    },
]

WSGI_APPLICATION = "syncconsole.wsgi.application"

# Database ---------------------------------------------------------------

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
_db = DATABASES["default"]
if PRODUCTION and _db["ENGINE"] == "django.db.backends.sqlite3":
    raise ImproperlyConfigured("DATABASE_URL is SQLite: production needs PostgreSQL (postgres://...).")
if _db["ENGINE"] == "django.db.backends.sqlite3":
    _db["ENGINE"] = "dbbackends.sqlite3"
    # WAL lets readers run beside the one writer; IMMEDIATE takes the write
    # lock at BEGIN so two writers queue on the busy timeout instead of one
    # failing with "database is locked" half-way (the ORM broker polls hard).
    _db.setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": env.int("SQLITE_BUSY_TIMEOUT", default=30),
            "init_command": (
                "PRAGMA journal_mode=WAL;"
                "PRAGMA synchronous=NORMAL;"
                f"PRAGMA busy_timeout={env.int('SQLITE_BUSY_TIMEOUT', default=30) * 1000};"
            ),
        }
    )
else:
    # Persistent connections: django-q2 workers otherwise open a connection
    # per task, which dominates a short task's cost.
    _db["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=600)
    _db["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Auth -------------------------------------------------------------------

AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out username and address before the password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# Limits against guessing --------------------------------------------------

# Proxies in front of the web process that append to X-Forwarded-For (0: use
# REMOTE_ADDR). Every limit below and the login lockout count by this address.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# Logins (admin and portal), django-axes: after LOGIN_FAILURE_LIMIT failures
# for one username from one address, that login is refused for
# LOGIN_LOCKOUT_MINUTES (staff can unlock it in the admin: Access attempts).
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=30)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("LOGIN_LOCKOUT_MINUTES", default=30))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "locked_out.html"
AXES_CLIENT_IP_CALLABLE = "syncconsole.limits.axes_client_address"
AXES_SENSITIVE_PARAMETERS = ["password", "password1", "password2", "new_password1", "new_password2", "old_password"]
AXES_VERBOSE = False


def _limit(name, count, seconds):
    """(count, seconds) from RATE_LIMIT_<NAME>=count/seconds, or the default."""
    raw = env.str(f"RATE_LIMIT_{name.upper()}", default="")
    if raw:
        count, _, seconds = raw.partition("/")
    return int(count), int(seconds)


# name: (attempts, per seconds). syncconsole/limits.py counts them.
RATE_LIMITS = {
    "api_key_failures": _limit("api_key_failures", 50, 900),  # per address
    "reauth_token_failures": _limit("reauth_token_failures", 20, 900),  # per address
    "help_requests": _limit("help_requests", 10, 3600),  # per user
    "help_replies": _limit("help_replies", 30, 3600),  # per user: answers to support in the portal
    "password_reset": _limit("password_reset", 5, 3600),  # per address and per email address
    "webhook_endpoints": _limit("webhook_endpoints", 20, 3600),  # per tenant
    "sync_triggers": _limit("sync_triggers", 6, 600),  # per integration, people and API keys
    "connection_tests": _limit("connection_tests", 6, 60),  # per integration, people and API keys
}

LOGIN_URL = "portal:login"
LOGIN_REDIRECT_URL = "portal:list"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# Static files -----------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# Email ------------------------------------------------------------------

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
if PRODUCTION and EMAIL_CONFIG["EMAIL_BACKEND"] in (
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
    "django.core.mail.backends.filebased.EmailBackend",
):
    raise ImproperlyConfigured("EMAIL_URL must name an SMTP server in production (smtp+tls://user:pass@host:587).")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="SyncConsole <syncconsole@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
SUPPORT_EMAIL = env.str("SUPPORT_EMAIL", default="support@localhost")
ENGINEERING_EMAIL = env.str("ENGINEERING_EMAIL", default="engineering@localhost")
# Where customers find help (a help centre or a contact form), shown with SUPPORT_EMAIL
# on the portal's General tab; empty: the email address alone.
SUPPORT_URL = env.str("SUPPORT_URL", default="")
# Development's local mailbox (EMAIL_URL=filemail:///var/outbox, what `make demo` sets; a
# relative path is under the checkout): one .eml file per message, which the console's
# "Outbox (development)" page lists (syncconsole/outbox.py). Production refuses it above.
if EMAIL_BACKEND == "django.core.mail.backends.filebased.EmailBackend":  # noqa: F821 (from EMAIL_CONFIG)
    EMAIL_BACKEND = "syncconsole.outbox.OutboxEmailBackend"
    EMAIL_FILE_PATH = str(BASE_DIR / (EMAIL_FILE_PATH or "var/outbox"))  # noqa: F821

# Credentials at rest ----------------------------------------------------


def _dev_credentials_key():
    digest = hashlib.sha256(("credentials:" + SECRET_KEY).encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


# Fernet keys, newest first. Rotation: put a new key first, keep the old ones,
# run `manage.py rotate_credentials`, then drop the old keys.
CREDENTIALS_KEYS = env.list("CREDENTIALS_KEYS", default=[])
if not CREDENTIALS_KEYS:
    if PRODUCTION:
        raise ImproperlyConfigured(
            "CREDENTIALS_KEYS must be set when DEBUG is off: one or more Fernet keys, "
            "newest first (python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')."
        )
    CREDENTIALS_KEYS = [_dev_credentials_key()]

# Usernames that look like a shared or admin mailbox: saving such credentials warns
# and advises a dedicated service account (integrations/credential_checks.py).
# "admin@" is that mailbox at any domain; other entries are shell-style patterns.
SHARED_MAILBOX_PATTERNS = env.list(
    "SHARED_MAILBOX_PATTERNS",
    default=[
        "admin@", "administrator@", "info@", "support@", "it@", "office@", "helpdesk@", "help@",
        "noreply@", "no-reply@", "billing@", "accounts@", "sales@", "contact@", "hello@", "postmaster@",
    ],
)

# Sync thresholds --------------------------------------------------------

ALERT_AFTER_UNSUCCESSFUL = env.int("ALERT_AFTER_UNSUCCESSFUL", default=10)
CREDENTIALS_INVALID_AFTER = timedelta(days=env.float("CREDENTIALS_INVALID_AFTER_DAYS", default=3))
DEVELOPMENT_INACTIVE_AFTER = timedelta(days=env.float("DEVELOPMENT_INACTIVE_AFTER_DAYS", default=14))
REAUTH_LINK_VALID_FOR = timedelta(hours=env.float("REAUTH_LINK_VALID_HOURS", default=72))
DELETED_RETENTION = timedelta(days=env.float("DELETED_RETENTION_DAYS", default=30))
DEFAULT_SYNC_INTERVAL = timedelta(minutes=env.float("DEFAULT_SYNC_INTERVAL_MINUTES", default=60))
SESSION_LOG_MAX_ENTRIES = env.int("SESSION_LOG_MAX_ENTRIES", default=200)

# Alerts ---------------------------------------------------------------------

CREDENTIALS_EXPIRING_WARNING = timedelta(days=env.float("CREDENTIALS_EXPIRING_WARNING_DAYS", default=7))
STALE_AFTER_INTERVALS = env.float("STALE_AFTER_INTERVALS", default=3)
# Alerts that can wait (credentials expiring, stale, vendor incidents) are
# grouped per tenant: the first opens a window this long, the alerts raised
# within it go out in one email when it ends. Alerts that need action
# (authentication failing, credentials invalid, repeated failures) never wait.
ALERT_DIGEST_WINDOW = timedelta(minutes=env.float("ALERT_DIGEST_WINDOW_MINUTES", default=5))
ALERT_RETRY_MAX = timedelta(minutes=env.float("ALERT_RETRY_MAX_MINUTES", default=30))
INCIDENT_MIN_TENANTS = env.int("INCIDENT_MIN_TENANTS", default=3)
INCIDENT_WINDOW = timedelta(minutes=env.float("INCIDENT_WINDOW_MINUTES", default=30))
WEBHOOK_TIMEOUT = env.float("WEBHOOK_TIMEOUT", default=10)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=8)
WEBHOOK_BACKOFF_SECONDS = env.float("WEBHOOK_BACKOFF_SECONDS", default=30)
WEBHOOK_DISABLE_AFTER = timedelta(hours=env.float("WEBHOOK_DISABLE_AFTER_HOURS", default=24))

# Outbound requests (syncconsole/outbound.py) -------------------------------

# CIDRs that customer- and vendor-supplied URLs may reach although they are
# internal. Empty in production; loopback in development (the simulator, the
# demo's address book).
OUTBOUND_ALLOWED_NETWORKS = env.list(
    "OUTBOUND_ALLOWED_NETWORKS", default=[] if PRODUCTION else ["127.0.0.0/8", "::1/128"]
)
VENDOR_MAX_RESPONSE_BYTES = env.int("VENDOR_MAX_RESPONSE_BYTES", default=50 * 1024 * 1024)
# One request, retries and waits included, never takes longer than this.
VENDOR_REQUEST_BUDGET_SECONDS = env.float("VENDOR_REQUEST_BUDGET_SECONDS", default=300)
# A person waiting on a page: no Retry-After sleeps, one retry, this in all.
WEB_VENDOR_BUDGET_SECONDS = env.float("WEB_VENDOR_BUDGET_SECONDS", default=15)

# The sync engine --------------------------------------------------------

SYNC_LEASE_SECONDS = env.int("SYNC_LEASE_SECONDS", default=120)
SYNC_QUEUED_TIMEOUT_SECONDS = env.int("SYNC_QUEUED_TIMEOUT_SECONDS", default=3600)
SYNC_SESSION_TIMEOUT_SECONDS = env.int("SYNC_SESSION_TIMEOUT_SECONDS", default=3 * 3600)
# A running session reads the next pages while it writes one (at most
# SYNC_PREFETCH_PAGES wait), and writes the pages already read together, in one
# transaction of at most SYNC_BATCH_PAGES pages or SYNC_BATCH_SECONDS.
SYNC_PREFETCH_PAGES = env.int("SYNC_PREFETCH_PAGES", default=2)
SYNC_BATCH_PAGES = env.int("SYNC_BATCH_PAGES", default=20)
SYNC_BATCH_SECONDS = env.float("SYNC_BATCH_SECONDS", default=1.0)
# At most this many running sessions per connector (0: no cap). A worker that
# picks up a session of a connector at its cap does not run it: it puts the
# task back at the end of its cluster's queue after SYNC_CONNECTOR_BUSY_DELAY_SECONDS,
# so one slow vendor cannot hold every worker.
SYNC_MAX_RUNNING_PER_CONNECTOR = env.int("SYNC_MAX_RUNNING_PER_CONNECTOR", default=0)
SYNC_CONNECTOR_BUSY_DELAY_SECONDS = env.float("SYNC_CONNECTOR_BUSY_DELAY_SECONDS", default=1.0)
SYNC_REAPER_INTERVAL_MINUTES = env.int("SYNC_REAPER_INTERVAL_MINUTES", default=1)
SYNC_SCHEDULER_INTERVAL_MINUTES = env.int("SYNC_SCHEDULER_INTERVAL_MINUTES", default=1)
# A tick queues every due integration, this many per batch (a few queries each),
# and starts no new batch after SYNC_SCHEDULER_TICK_SECONDS, so it ends before
# the next tick begins (default: three quarters of the interval).
SYNC_SCHEDULER_BATCH = env.int("SYNC_SCHEDULER_BATCH", default=1000)
SYNC_SCHEDULER_TICK_SECONDS = env.float(
    "SYNC_SCHEDULER_TICK_SECONDS", default=SYNC_SCHEDULER_INTERVAL_MINUTES * 60 * 0.75
)
SYNC_BACKOFF_MAX = timedelta(hours=env.float("SYNC_BACKOFF_MAX_HOURS", default=6))
VENDOR_CONNECT_TIMEOUT = env.float("VENDOR_CONNECT_TIMEOUT", default=5)
VENDOR_READ_TIMEOUT = env.float("VENDOR_READ_TIMEOUT", default=30)
VENDOR_MAX_RETRIES = env.int("VENDOR_MAX_RETRIES", default=3)
VENDOR_BACKOFF_SECONDS = env.float("VENDOR_BACKOFF_SECONDS", default=0.5)
VENDOR_MAX_RETRY_AFTER = env.float("VENDOR_MAX_RETRY_AFTER", default=60)
VENDOR_SIMULATOR_URL = env.str("VENDOR_SIMULATOR_URL", default="http://127.0.0.1:8765")

# Retention (integrations/retention.py, daily) ------------------------------

# Days each kind of row is kept; 0 keeps them forever. Open issues, each
# integration's last session and what open issues still point at are kept
# whatever their age. Rows go RETENTION_BATCH_SIZE at a time, each batch its
# own short transaction.
RETENTION_DAYS_ISSUES = env.float("RETENTION_DAYS_ISSUES", default=90)  # resolved issues
RETENTION_DAYS_SESSIONS = env.float("RETENTION_DAYS_SESSIONS", default=90)  # finished sessions and their logs
RETENTION_DAYS_EVENTS = env.float("RETENTION_DAYS_EVENTS", default=90)  # the timeline (and its receipts)
RETENTION_DAYS_SEEN_ITEMS = env.float("RETENTION_DAYS_SEEN_ITEMS", default=90)  # full syncs' leftovers
RETENTION_DAYS_ALERTS = env.float("RETENTION_DAYS_ALERTS", default=90)  # sent or failed alerts
RETENTION_DAYS_WEBHOOK_DELIVERIES = env.float("RETENTION_DAYS_WEBHOOK_DELIVERIES", default=90)
RETENTION_BATCH_SIZE = env.int("RETENTION_BATCH_SIZE", default=1000)
# A pause after each batch. SQLite has one writer at a time, and a writer
# waiting on the busy timeout only retries now and then: back to back, the
# batches would keep a sync's page writes waiting until the purge is over
# (a 10,000-item sync took 6 s instead of 0.8 s; with 20 ms pauses, 1 s).
# PostgreSQL locks rows, not the database: no pause.
RETENTION_BATCH_PAUSE_SECONDS = env.float(
    "RETENTION_BATCH_PAUSE_SECONDS", default=0.02 if DATABASES["default"]["ENGINE"] == "dbbackends.sqlite3" else 0
)

# Background work (django-q2) ---------------------------------------------

REDIS_URL = env.str("REDIS_URL", default="")
# The engine stops a session itself at SYNC_SESSION_TIMEOUT_SECONDS; the
# cluster's hard timeout is a little later, for a worker that hangs.
Q_TIMEOUT = env.int("Q_TIMEOUT", default=SYNC_SESSION_TIMEOUT_SECONDS + 300)
Q_CLUSTER = {
    "name": "syncconsole",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": Q_TIMEOUT,
    # retry must exceed timeout, or the ORM broker hands a running task to a
    # second worker.
    "retry": env.int("Q_RETRY", default=Q_TIMEOUT + 60),
    "max_attempts": env.int("Q_MAX_ATTEMPTS", default=2),
    "catch_up": False,
    "save_limit": env.int("Q_SAVE_LIMIT", default=500),
    "ack_failures": True,
    "poll": env.float("Q_POLL", default=0.5),
    "label": "Background tasks",
    "sync": env.bool("Q_SYNC", default=False),
    # Syncs a person asked for go to their own queue, worked by a second
    # qcluster started with Q_CLUSTER_NAME=urgent, so they never wait behind
    # the scheduled backlog.
    # Sized for the machine unless Q_URGENT_WORKERS says: one worker per CPU,
    # at least two, so that one slow vendor does not stop every person's sync.
    "ALT_CLUSTERS": {"urgent": {"workers": env.int("Q_URGENT_WORKERS", default=max(2, os.cpu_count() or 1))}},
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

URGENT_CLUSTER = "urgent"

# Worker liveness (integrations/sync/heartbeats.py): every qcluster worker
# process writes a heartbeat each WORKER_HEARTBEAT_SECONDS; a cluster whose
# workers have all been silent for WORKER_DEAD_AFTER_SECONDS has no live worker
# (/readyz, the dashboard, `manage.py doctor`). When no urgent worker has beaten
# for URGENT_FALLBACK_SECONDS, people's syncs go to the default cluster and
# those waiting on the urgent queue are moved there (0: never fall back).
WORKER_HEARTBEAT_SECONDS = env.float("WORKER_HEARTBEAT_SECONDS", default=5)
WORKER_DEAD_AFTER_SECONDS = env.float("WORKER_DEAD_AFTER_SECONDS", default=30)
URGENT_FALLBACK_SECONDS = env.float("URGENT_FALLBACK_SECONDS", default=60)
# Either window shorter than two heartbeats would call a live worker dead now and then.
if WORKER_HEARTBEAT_SECONDS <= 0 or WORKER_DEAD_AFTER_SECONDS < 2 * WORKER_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured(
        "WORKER_DEAD_AFTER_SECONDS must be at least twice WORKER_HEARTBEAT_SECONDS (which must be more than 0)."
    )
if 0 < URGENT_FALLBACK_SECONDS < 2 * WORKER_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured("URGENT_FALLBACK_SECONDS must be 0 (never) or at least twice WORKER_HEARTBEAT_SECONDS.")

# Cache: the counters of the limits. Shared through Redis when there is one.
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": "syncconsole"}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "syncconsole"}
    )
}

# Security ---------------------------------------------------------------

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # Load balancers probe the process itself over plain HTTP (syncconsole/health.py).
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)

# No inline script anywhere (pages load theirs from static files); inline
# styles stay allowed for the emails shown in a browser and the SVG charts.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp.SELF],
        "script-src": [csp.SELF],
        "style-src": [csp.SELF, csp.UNSAFE_INLINE],
        "img-src": [csp.SELF, "data:"],
        "font-src": [csp.SELF],
        "connect-src": [csp.SELF],
        "object-src": [csp.NONE],
        "base-uri": [csp.SELF],
        "form-action": [csp.SELF],
        "frame-ancestors": [csp.NONE],
    }
}

# Sessions end after this long without a request: staff sooner than customers.
STAFF_SESSION_IDLE_SECONDS = int(env.float("STAFF_SESSION_IDLE_MINUTES", default=30) * 60)
PORTAL_SESSION_IDLE_SECONDS = int(env.float("PORTAL_SESSION_IDLE_MINUTES", default=8 * 60) * 60)

# Logging (syncconsole/logs.py): never log credentials; the engine logs ids and codes only.
# Production writes one JSON object a line, development readable text; every
# line carries the request, tenant, integration and session ids it is about.
LOG_FORMAT = env.str("LOG_FORMAT", default="json" if PRODUCTION else "text")
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured(f"LOG_FORMAT is {LOG_FORMAT!r}: use json or text.")
LOGGING = _logs.logging_config(fmt=LOG_FORMAT, level=env.str("LOG_LEVEL", default="INFO").upper())

# Metrics (/metrics, syncconsole/metrics.py): read with "Authorization: Bearer
# <METRICS_TOKEN>". Without a token production refuses every scrape (403);
# development serves them openly.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
