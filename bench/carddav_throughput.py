"""CardDAV throughput: a first full sync of N contacts from a real Radicale, against Radicale alone.

    python bench/carddav_throughput.py [--contacts 5000] [--page-size 200]

starts a Radicale server (tests.plugins.radicale.RadicaleProcess), writes N
contacts into one address book and lets Radicale build its caches (as it
would have, had they come one PUT at a time), migrates a temporary SQLite
database, then measures:

- the engine: `create_integration` (discovery, not timed), then a timed
  `run_session` of a full sync: discovery, the sync-collection listing and
  the addressbook-multiget pages, vCard parsing, item rules, page writes;
- Radicale alone: the very requests that sync sent (recorded as it ran),
  sent again with one requests Session, the answers read and not parsed,
  best of three.

It prints progress on stderr and one JSON object on stdout; bench/run.py
prints the figures.
"""

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.sync_throughput import BenchDatabase, say, setup_django  # noqa: E402

USER, PASSWORD, BOOK = "bench", "bench-password", "contacts"


def contacts(count):
    from tests.plugins.radicale import make_vcard

    for n in range(count):
        uid = f"bench-{n:06d}"
        yield f"{uid}.vcf", make_vcard(
            uid,
            given=f"Given{n}",
            family=f"Family{n}",
            emails=[f"person{n}@example.com"],
            phones=[f"+1 555 {n:07d}"],
            org="Example Corp",
            categories=["customers"],
        )


def record_requests(sent):
    """Make VendorHttp note each request it sends: (method, url, headers, body)."""
    from integrations.connectors.http import VendorHttp

    real = VendorHttp.request

    def request(self, method, url, **kwargs):
        sent.append((method, url, dict(kwargs.get("headers") or {}), kwargs.get("data")))
        return real(self, method, url, **kwargs)

    VendorHttp.request = request
    return lambda: setattr(VendorHttp, "request", real)


def engine_sync(server, page_size):
    """(seconds, finished session, requests it sent) of a first full sync through the engine."""
    from integrations.models import SyncSession, Tenant
    from integrations.onboarding import create_integration
    from integrations.sync.runner import run_session
    from integrations.sync.starting import start_sync

    slug = f"bench-{uuid.uuid4().hex[:10]}"
    integration = create_integration(
        Tenant.objects.create(name=f"Bench {slug}", slug=slug),
        "carddav",
        "Bench contacts",
        settings={"page_size": page_size},
        credentials={"url": server.url, "username": USER, "password": PASSWORD},
        queue_first_sync=False,
    )
    session = start_sync(integration, kind=SyncSession.Kind.FULL, enqueue=False)
    sent = []
    restore = record_requests(sent)
    try:
        started = time.perf_counter()
        finished = run_session(session.pk)
        seconds = time.perf_counter() - started
    finally:
        restore()
    return seconds, finished or SyncSession.objects.get(pk=session.pk), sent, integration


def radicale_alone(sent, rounds=3):
    """Seconds Radicale takes to answer these requests (best of `rounds`), bytes read."""
    import requests

    best, size = None, 0
    for _ in range(rounds):
        with requests.Session() as http:
            started = time.perf_counter()
            size = 0
            for method, url, headers, body in sent:
                response = http.request(
                    method, url, headers=headers, data=body, auth=(USER, PASSWORD), timeout=300
                )
                size += len(response.content)
                if response.status_code >= 400:
                    raise RuntimeError(f"{method} {url} answered {response.status_code}")
            seconds = time.perf_counter() - started
        best = seconds if best is None else min(best, seconds)
    return best, size


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=5000, help="contacts in the book (default 5000)")
    parser.add_argument("--page-size", type=int, default=200, help="contacts per multiget (default 200)")
    args = parser.parse_args(argv)

    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ.pop("DATABASE_URL", None)
    from tests.plugins.radicale import RadicaleProcess

    database = BenchDatabase("sqlite")
    server = RadicaleProcess(log_level="warning")
    try:
        server.start()
        server.add_user(USER, PASSWORD)
        started = time.perf_counter()
        server.seed_addressbook(USER, BOOK, contacts(args.contacts), displayname="Bench contacts")
        warm = time.perf_counter() - started
        say(f"[carddav] Radicale at {server.url}: {args.contacts:,} contacts stored, cached in {warm:.1f} s")

        database.create()
        setup_django()
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
        from integrations.models import SyncedRecord, SyncSession

        seconds, session, sent, integration = engine_sync(server, args.page_size)
        say(f"[carddav] first full sync: {args.contacts / seconds:,.0f} contacts/s ({seconds:.2f} s, "
            f"{len(sent)} requests)")
        alone, size = radicale_alone(sent)
        say(f"[carddav] Radicale alone, the same {len(sent)} requests: {alone:.2f} s, {size / 2**20:.1f} MiB")
        result = {
            "contacts": args.contacts,
            "page_size": args.page_size,
            "seconds": seconds,
            "contacts_per_s": args.contacts / seconds,
            "radicale_seconds": alone,
            "radicale_contacts_per_s": args.contacts / alone,
            "ratio": seconds / alone,
            "requests": len(sent),
            "reports": sum(1 for method, *_ in sent if method == "REPORT"),
            "bytes": size,
            "cache_build_seconds": warm,
            "records": SyncedRecord.objects.filter(integration=integration, deleted=False).count(),
            "session": {
                "state": session.state,
                "error_code": session.error_code_id or "",
                "error_message": session.error_message,
                **{name: getattr(session, name) for name in SyncSession.COUNTERS},
            },
        }
    finally:
        server.cleanup()
        database.drop()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
