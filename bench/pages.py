"""`make bench-pages`: how fast the console, the portal and the API answer on a big dataset.

    .venv/bin/python bench/pages.py [--scale 0.1] [--runs 20] [--keep | --reuse NAME]

Creates a scratch PostgreSQL database `syncconsole_pages_<pid>` on the server
BENCH_DATABASE_URL names (default postgres://postgres@127.0.0.1:5432/postgres;
the database that URL names is only used to create and drop the scratch one),
migrates it, fills it with SQL (bench/pages_data.py), then asks every page in
this process through Django's test Client with production settings (DEBUG
off) and prints one table (bench/pages_measure.py). The scratch database is
dropped at the end, on errors and on Ctrl-C too, unless --keep; --reuse NAME
measures a kept one (migrating it first, generating nothing, dropping nothing).

The exit status is 0 whatever the figures (the last line counts the pages
that miss a target); it is not 0 when the run itself fails.
"""

import argparse
import base64
import hashlib
import os
import signal
import sys
import time
import warnings
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import pages_data, pages_measure  # after the path is set

DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432/postgres"
# Never created, reused or dropped by this bench, whatever --reuse says.
PROTECTED = {"postgres", "template0", "template1", "test", "test_test"}
# Fixed, so that a kept database (its encrypted credentials, signed cursors) reads the same on --reuse.
# They protect nothing: the database is a scratch copy of generated data.
SECRET_KEY = "bench-pages-scratch-data-only-" + hashlib.sha256(b"syncconsole bench pages secret").hexdigest()
CREDENTIALS_KEY = base64.urlsafe_b64encode(hashlib.sha256(b"syncconsole bench pages credentials").digest()).decode()


def say(message):
    print(message, file=sys.stderr, flush=True)


def with_database(url, name):
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


class ScratchDatabase:
    def __init__(self, server_url, name):
        self.server_url = server_url
        self.name = name
        self.url = with_database(server_url, name)
        self.created = False

    def create(self):
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
        self.created = True

    def drop(self):
        import psycopg
        from django.conf import settings
        from django.db import connections

        if settings.configured:  # not yet when the run stopped before django.setup()
            connections.close_all()
        from psycopg import sql

        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name)))
        self.created = False

    def describe(self):
        parts = urlsplit(self.url)
        return f"{parts.hostname}:{parts.port or 5432}/{self.name}"


def production_environment(database_url):
    """What syncconsole/settings.py needs to start with DEBUG off, set before django.setup()."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "syncconsole.settings"
    os.environ.update(
        {
            "DEBUG": "off",
            "DATABASE_URL": database_url,
            "SECRET_KEY": SECRET_KEY,
            "ALLOWED_HOSTS": "testserver,localhost,127.0.0.1",
            "SITE_URL": "https://testserver",
            "CREDENTIALS_KEYS": CREDENTIALS_KEY,
            "EMAIL_URL": "smtp://127.0.0.1:2525",  # nothing is sent; production refuses console backends
            "LOG_LEVEL": "WARNING",
        }
    )


def measurement_settings():
    """What the measurement overrides: the bench URLconf (stock admin beside ours), static files without a manifest.

    Production serves hashed names from collectstatic's manifest; without
    running collectstatic the manifest storage would refuse every {% static %}.
    """
    from django.test import override_settings

    return override_settings(
        ROOT_URLCONF="bench.stock_urls",
        STORAGES={
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        },
    )


def interrupted(signum, frame):
    raise KeyboardInterrupt


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full dataset (default 1)")
    parser.add_argument("--runs", type=int, default=20, help="timed requests per page (default 20)")
    parser.add_argument("--warmups", type=int, default=2, help="untimed requests first (default 2)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--keep", action="store_true", help="keep the scratch database for inspection")
    group.add_argument("--reuse", metavar="NAME", help="measure an existing kept database; generate nothing")
    args = parser.parse_args(argv)
    if args.scale <= 0 or args.runs < 1 or args.warmups < 1:
        parser.error("--scale must be positive, --runs and --warmups at least 1")
    if args.reuse in PROTECTED:
        parser.error(f"--reuse {args.reuse}: that database is not the bench's")
    return args


def run(args, database):
    import django
    from django.core.management import call_command

    production_environment(database.url)
    warnings.filterwarnings("ignore", message="No directory at")
    django.setup()
    from django.conf import settings

    assert not settings.DEBUG, "the pages are measured with DEBUG off"
    started = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    timings = [("migrate", time.perf_counter() - started)]
    if args.reuse:
        dataset = pages_data.find()
    else:
        dataset, generated = pages_data.generate(args.scale)
        timings += generated
    say(f"Measuring {args.runs} requests per page after {args.warmups} warm-ups (DEBUG off, in-process)…")
    load_before = os.getloadavg()[0]
    with measurement_settings():
        rows = pages_measure.measure(dataset, args.runs, args.warmups, say)
    return dataset, timings, rows, (load_before, os.getloadavg()[0])


def main(argv=None):
    args = parse(argv)
    started = time.monotonic()
    server = os.environ.get("BENCH_DATABASE_URL", DEFAULT_SERVER)
    database = ScratchDatabase(server, args.reuse or f"syncconsole_pages_{os.getpid()}")
    # Ctrl-C, kill, a closed terminal: all end in the finally below. SIGINT too, explicitly: a shell
    # starts background jobs with it ignored, and Python then never raises KeyboardInterrupt.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupted)
    try:
        if not args.reuse:
            say(f"Creating {database.describe()}")
            database.create()
        dataset, timings, rows, load = run(args, database)
    except KeyboardInterrupt:
        say("Interrupted.")
        return 130
    finally:
        if database.created and not args.keep:
            say(f"Dropping {database.describe()}")
            database.drop()
        elif database.created:
            say(f"Kept {database.describe()}: measure it again with --reuse {database.name}; "
                f"drop it with: psql {server} -c 'DROP DATABASE {database.name}'")  # fmt: skip
    total = sum(seconds for what, seconds in timings if what != "migrate")
    print(f"Dataset on {database.describe()} (scale {args.scale if not args.reuse else 'as kept'}):")
    if dataset.written:
        print(f"  {dataset.written}")
    for what, seconds in timings:
        print(f"  {what:<40} {seconds:8.1f} s")
    if not args.reuse:
        print(f"  {'generated in':<40} {total:8.1f} s")
    print()
    print(
        f"Pages, measured in-process with DEBUG off; load average {load[0]:.1f} before, {load[1]:.1f} after, "
        f"on {os.cpu_count()} CPUs:"
    )
    print(pages_measure.table(rows))
    print(f"Total {time.monotonic() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
