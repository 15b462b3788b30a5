"""`manage.py doctor`: a configuration checked before it goes live, each problem with its fix.

The settings module already refuses what production cannot run with
(SECRET_KEY, ALLOWED_HOSTS, SITE_URL, CREDENTIALS_KEYS, DATABASE_URL or
EMAIL_URL missing; the development key, SQLite or console email in
production): such settings stop every command before it starts. manage.py
asks `settings_refusal` first, so that doctor reports that refusal as its
finding instead of a traceback. Once the settings load, `examine` looks at:

    settings    Django's system checks, the deployment ones in production (a short or
                weak SECRET_KEY, cookies, HSTS, ...), and what neither covers:
                CREDENTIALS_KEYS that are not Fernet keys, ALLOWED_HOSTS "*", an http
                SITE_URL in production, DEBUG on with a public SITE_URL
    database    reachable
    migrations  all applied
    broker      Redis (REDIS_URL) or the ORM broker's table reachable
    cache       a value written and read back
    workers     a live worker per cluster (heartbeats)
    clock       the database's clock within MAX_CLOCK_SKEW_SECONDS of this machine's

The reachability checks are `syncconsole.health`'s, the ones /readyz runs.
Django and the apps are imported inside the functions: manage.py imports this
module before Django is set up.
"""

import sys
from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# Heartbeats, leases and schedules compare times written by different machines.
MAX_CLOCK_SKEW_SECONDS = 5

OK, PROBLEM, SKIPPED, NOTE = "ok", "PROBLEM", "skipped", "note"

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "testserver")

FERNET_KEY_HELP = (
    "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)


@dataclass(frozen=True)
class Finding:
    check: str
    status: str  # OK, PROBLEM, SKIPPED or NOTE
    message: str
    fix: str = ""


def settings_refusal(argv):
    """For `manage.py doctor`: the settings' own refusal printed as doctor's finding, exit 1; else nothing."""
    if argv[1:2] != ["doctor"]:
        return
    try:
        settings.INSTALLED_APPS
    except ImproperlyConfigured as exc:
        sys.stdout.write(render([Finding("settings", PROBLEM, f"the settings refuse to load: {exc}")]))
        sys.stdout.write("The other checks need settings that load; fix this first.\n")
        sys.exit(1)


def examine(now=None):
    """Every finding, in the order above."""
    from django.utils import timezone

    from syncconsole import health

    now = now or timezone.now()
    findings = [*settings_findings()]
    database = reached("database", health.check_database, "reachable", database_fix())
    findings.append(database)
    if database.status == OK:
        migrations = migrations_finding()
        findings.append(migrations)
        if migrations.status == OK:
            findings += guarded("workers", worker_findings, now)
        else:
            findings.append(Finding("workers", SKIPPED, "not checked: the database is not migrated"))
        findings += guarded("clock", lambda: [clock_finding()])
    else:
        findings += [
            Finding(name, SKIPPED, "not checked: no database") for name in ("migrations", "workers", "clock")
        ]
    findings.append(reached("broker", health.check_broker, f"{broker_label()} reachable", broker_fix()))
    findings.append(reached("cache", health.check_cache, "a value written and read back", cache_fix()))
    return findings


def problems(findings):
    return [finding for finding in findings if finding.status == PROBLEM]


def render(findings):
    lines = []
    for finding in findings:
        lines.append(f"{finding.status:<8} {finding.check}: {finding.message}")
        if finding.fix:
            lines.append(f"{'':<8} fix: {finding.fix}")
    return "\n".join(lines) + "\n"


# -- settings -----------------------------------------------------------------------------------


def settings_findings():
    """Production as the settings module decided it (PRODUCTION), not DEBUG: test runners change that."""
    from django.core import checks

    production = settings.PRODUCTION
    findings = []
    if not production:
        findings.append(
            Finding(
                "settings",
                NOTE,
                "development mode (DEBUG on): SQLite, console or local-mailbox email and derived keys are "
                "allowed; never for real data",
            )
        )
    for message in checks.run_checks(include_deployment_checks=production):
        if message.is_serious(checks.WARNING) and not message.is_silenced():
            findings.append(Finding("settings", PROBLEM, f"{message.id}: {message.msg}", message.hint or ""))
    findings += credentials_key_findings()
    hosts = urlsplit(settings.SITE_URL)
    if not production and hosts.hostname not in LOCAL_HOSTS:
        findings.append(
            Finding(
                "settings",
                PROBLEM,
                f"DEBUG is on although SITE_URL is {settings.SITE_URL}: development mode serves error pages "
                "with settings and allows development backends",
                "unset DEBUG (production is the default) and give the production settings (README.md)",
            )
        )
    if production and hosts.scheme != "https":
        findings.append(
            Finding(
                "settings",
                PROBLEM,
                f"SITE_URL is {settings.SITE_URL}: links in emails (re-authentication) would travel "
                "unencrypted",
                "set SITE_URL to the public https:// address",
            )
        )
    if production and "*" in settings.ALLOWED_HOSTS:
        findings.append(
            Finding(
                "settings",
                PROBLEM,
                'ALLOWED_HOSTS contains "*": any Host header is accepted (password-reset links can be '
                "poisoned)",
                "list the host names the console is served under",
            )
        )
    if not [finding for finding in findings if finding.status == PROBLEM]:
        passed = "Django's checks pass" + (", the deployment ones too" if production else "")
        findings.append(Finding("settings", OK, passed))
    return findings


def credentials_key_findings():
    from cryptography.fernet import Fernet

    keys = settings.CREDENTIALS_KEYS
    bad = []
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            bad.append(position)
    if not bad:
        return []
    which = ", ".join(str(position) for position in bad)
    return [
        Finding(
            "settings",
            PROBLEM,
            f"CREDENTIALS_KEYS entry {which} of {len(keys)} is not a Fernet key "
            "(32 url-safe base64-encoded bytes)",
            f"generate one with {FERNET_KEY_HELP}; a replaced key must stay listed until "
            "`manage.py rotate_credentials` has run",
        )
    ]


# -- peers --------------------------------------------------------------------------------------


def reached(name, check, success, fix):
    try:
        check()
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return Finding(name, PROBLEM, f"unreachable ({type(exc).__name__}: {reason})", fix)
    return Finding(name, OK, success)


def guarded(name, produce, *args):
    """The findings `produce` makes, or one problem saying why it could not look."""
    try:
        return produce(*args)
    except Exception as exc:
        return [Finding(name, PROBLEM, f"could not be checked ({type(exc).__name__}: {exc})")]


def database_fix():
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"check that {db['NAME']} can be opened and written by this user"
    where = f"{db.get('HOST') or 'localhost'}:{db.get('PORT') or 5432}/{db.get('NAME')}"
    return f"check DATABASE_URL ({where}) and that PostgreSQL runs and accepts this machine and user"


def broker_label():
    if not settings.REDIS_URL:
        return "the ORM broker's table"
    parts = urlsplit(settings.REDIS_URL)
    return f"Redis at {parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"


def broker_fix():
    if settings.REDIS_URL:
        return (
            f"start {broker_label()} or correct REDIS_URL; qclusters cannot take tasks and syncs people ask "
            "for are not queued until it answers"
        )
    return "run `python manage.py migrate` (the ORM broker's table is django_q_ormq)"


def cache_fix():
    if settings.REDIS_URL:
        return f"start {broker_label()} or correct REDIS_URL (the cache holds the rate limits' counters)"
    return "the in-process cache should always answer: check CACHES"


def migrations_finding():
    from syncconsole import health

    pending = health.pending_migrations()
    if not pending:
        return Finding("migrations", OK, "all applied")
    names = ", ".join(f"{app}.{name}" for app, name in pending[:5]) + (" ..." if len(pending) > 5 else "")
    return Finding(
        "migrations",
        PROBLEM,
        f"{len(pending)} not applied: {names}",
        "run `python manage.py migrate` before starting the new code's web and qcluster processes",
    )


def worker_findings(now):
    from integrations.sync.heartbeats import liveness

    findings = []
    for cluster in liveness(now):
        command = "python manage.py qcluster"
        if cluster.name != settings.Q_CLUSTER["name"]:
            command = f"Q_CLUSTER_NAME={cluster.name} {command}"
        last = "none in the last day"
        if cluster.last_beat_at is not None:
            last = f"last at {cluster.last_beat_at:%Y-%m-%d %H:%M:%S} UTC"
        if cluster.alive:
            findings.append(Finding(f"workers:{cluster.name}", OK, f"{cluster.live_workers} live ({last})"))
            continue
        consequence = ""
        if cluster.falls_back:
            consequence = "; people's syncs go to the default cluster meanwhile"
        findings.append(
            Finding(
                f"workers:{cluster.name}",
                PROBLEM,
                f"no live worker (heartbeats: {last}){consequence}",
                f"start `{command}` (and keep it running: systemd, a Procfile)",
            )
        )
    return findings


def clock_finding():
    skew = clock_skew_seconds()
    if abs(skew) <= MAX_CLOCK_SKEW_SECONDS:
        return Finding("clock", OK, f"the database's clock is {skew:+.1f} s from this machine's")
    return Finding(
        "clock",
        PROBLEM,
        f"the database's clock is {skew:+.1f} s from this machine's (more than {MAX_CLOCK_SKEW_SECONDS} s)",
        "synchronise both machines' clocks (NTP, e.g. systemd-timesyncd or chrony): heartbeats, leases and "
        "schedules compare times written by different machines",
    )


def clock_skew_seconds():
    """The database's clock minus this machine's, in seconds, corrected by half the round trip."""
    from django.db import connection
    from django.utils import timezone

    sql = {
        "postgresql": "SELECT clock_timestamp()",
        "sqlite": "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')",
    }.get(connection.vendor, "SELECT CURRENT_TIMESTAMP")
    with connection.cursor() as cursor:
        before = timezone.now()
        cursor.execute(sql)
        value = cursor.fetchone()[0]
        after = timezone.now()
    if isinstance(value, str):  # SQLite: UTC as text
        value = datetime.fromisoformat(value).replace(tzinfo=dt_timezone.utc)
    elif timezone.is_naive(value):
        value = value.replace(tzinfo=dt_timezone.utc)
    return (value - (before + (after - before) / 2)).total_seconds()
