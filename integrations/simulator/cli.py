"""The vendor simulator's command line: the help text, built from the
scenarios, the options, and ``serve``.

Standard library only, and no Django: ``python -m integrations.simulator``
starts in a few milliseconds. ``python manage.py vendor_simulator`` runs the
same server with the same options. The API is described in ``HELP_TEXT``
(shown by --help).
"""

import argparse
import signal
import sys
import textwrap
import threading

from . import profiles
from . import scenarios as sc
from .state import (
    DEFAULT_MAX_PAGE_SIZE,
    DEFAULT_PAGE_SIZE,
    DEFAULT_SEED,
    DEFAULT_SLOW_SECONDS,
    DEFAULT_TOKEN_TTL,
    SimulatorServer,
)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def _scenario_lines():
    lines = []
    for name, text in sc.SCENARIOS.items():
        wrapped = textwrap.wrap(text, width=56) or [""]
        lines.append("  %-15s %s" % (name, wrapped[0]))
        lines.extend("  %-15s %s" % ("", more) for more in wrapped[1:])
    return "\n".join(lines)


HELP_TEXT = """\
Run the vendor simulator: an HTTP server that imitates a SaaS vendor's
paginated JSON API, with faults chosen per account. The demo and the tests
sync against it. The first line on stdout is
"Vendor simulator listening on http://HOST:PORT" (the real port, also with
--port 0); it then serves until SIGTERM or Ctrl-C.

Accounts are named SCENARIO or SCENARIO.LABEL (LABEL: letters, digits, _ and
-), so that independent copies of a scenario can coexist, e.g. healthy.demo.
Unless a scenario says otherwise an account has 120 items.

Scenarios:
{scenarios}

Authentication (every /v1 call), one of:
  X-API-Key: good-key
  POST /oauth/token with grant_type=client_credentials, client_id=ACCOUNT,
  client_secret=KEY (form body or HTTP Basic), then
  Authorization: Bearer TOKEN. Tokens are HMAC-signed and expire after
  --token-ttl seconds (401 token_expired); a bad one is 401 invalid_token.
  A wrong key is 401 invalid_key (invalid_client at /oauth/token), no
  credentials 401 missing_credentials. In every scenario the key
  expired-key answers 401 token_expired ('The API key has expired') and
  revoked-key 401 invalid_key ('The API key has been revoked'): stored
  credentials the vendor no longer takes. Re-authenticating with the key
  the scenario takes (good-key unless it says otherwise) fixes them.

Endpoints:
  GET /health
  GET /v1/ACCOUNT/me              credential check
  GET /v1/ACCOUNT/accounts        vendor accounts (discovery): acct-1, acct-2
  GET /v1/ACCOUNT/items?page=P&page_size=S[&updated_since=ISO]
  GET /v1/ACCOUNT/items?cursor=C&page_size=S[&updated_since=ISO]
  GET /v1/ACCOUNT/items/ITEM_ID
  Listings answer {{items, page, page_size, next_page, next_cursor, total,
  server_time}}; page_size defaults to --page-size and is capped at
  --max-page-size. updated_since returns only items updated strictly after
  it; every item is dated 2026-01-01T00:00:00Z until changed.

Control API, for tests and the demo (no authentication):
  POST   /_control/accounts/ACCOUNT  JSON object, merged into the overrides:
           {{"drop": ["item-0000003"]}}   the vendor no longer has these items
           {{"change": ["item-0000005"]}} new version: name gets " (v2)", " (v3)",
                                        ..., updated_at becomes now
           {{"recover": true}}            behave like healthy from now on
           {{"fail": true}}               behave like outage until recover
           {{"api_key": "k"}}             accept only this key from now on
  GET    /_control/accounts/ACCOUNT  request counters and overrides
  DELETE /_control/accounts/ACCOUNT  reset overrides and counters

Vendor profiles: real vendors' APIs as their public documentation describes
them (paths, answer shapes, pagination, auth, error bodies, rate-limit
headers), one per manifest in integrations/connectors/manifests/. An account
is /profiles/KEY/SCENARIO[.LABEL]; every profile has the scenarios healthy,
rate-limited, expired and server-error. An OAuth access token answers the
vendor's 401 "expired" once 2 API requests were answered with it (whatever
expires_in says), so a client must fetch a new one mid-run. A 429 to a
request sent before the Retry-After the profile had given ran out counts
as ignored_limit_429.
  GET    /profiles                       every profile, its scenarios and URLs
  GET    /profiles/KEY/ACCOUNT/_control  the account's counters: api_requests,
           token_requests, tokens_issued, expired_token_answers, answered_429,
           ignored_limit_429, server_errors, refresh_rotations,
           stale_refresh_tokens
  DELETE /profiles/KEY/ACCOUNT/_control  forget the account's state
{profiles}
""".format(scenarios=_scenario_lines(), profiles=profiles.help_text())


class RawDescriptionFormatter(argparse.RawDescriptionHelpFormatter):
    pass


def add_arguments(parser):
    """The server's options, shared by this module's parser and the
    management command's."""
    parser.add_argument("--host", default=DEFAULT_HOST, help="Address to bind (default %(default)s).")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT,
        help="Port to bind; 0 picks a free one (default %(default)s).",
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED,
        help="Seed for item data and the token signing secret (default %(default)s).",
    )
    parser.add_argument(
        "--slow-seconds", type=float, default=DEFAULT_SLOW_SECONDS,
        help="How long the 'slow' scenario's /items waits (default %(default)s).",
    )
    parser.add_argument(
        "--token-ttl", type=int, default=DEFAULT_TOKEN_TTL,
        help="Lifetime of OAuth access tokens in seconds (default %(default)s).",
    )
    parser.add_argument(
        "--page-size", type=int, default=DEFAULT_PAGE_SIZE,
        help="Default page size of /items (default %(default)s).",
    )
    parser.add_argument(
        "--max-page-size", type=int, default=DEFAULT_MAX_PAGE_SIZE,
        help="Largest page size /items accepts; larger ones are capped (default %(default)s).",
    )
    return parser


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m integrations.simulator",
        description=HELP_TEXT,
        formatter_class=RawDescriptionFormatter,
    )
    return add_arguments(parser)


def serve(host=DEFAULT_HOST, port=DEFAULT_PORT, seed=DEFAULT_SEED,
          slow_seconds=DEFAULT_SLOW_SECONDS, token_ttl=DEFAULT_TOKEN_TTL,
          page_size=DEFAULT_PAGE_SIZE, max_page_size=DEFAULT_MAX_PAGE_SIZE,
          stdout=None):
    """Bind, announce the address on stdout, and serve until SIGTERM/SIGINT.

    Returns 0 after a clean shutdown."""
    # Not at the top: server.py imports this module to re-export its names.
    from .server import SimulatorHandler

    server = SimulatorServer(
        (host, port), SimulatorHandler, seed=seed, slow_seconds=slow_seconds,
        token_ttl=token_ttl, page_size=page_size, max_page_size=max_page_size,
    )
    bound_port = server.server_address[1]

    def stop(signum, frame):
        raise KeyboardInterrupt

    # Handlers first: whoever reads the first line may signal at once.
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, stop)
    try:
        out = stdout or sys.stdout
        out.write("Vendor simulator listening on http://%s:%d\n" % (host, bound_port))
        out.flush()
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    return serve(
        host=args.host, port=args.port, seed=args.seed, slow_seconds=args.slow_seconds,
        token_ttl=args.token_ttl, page_size=args.page_size, max_page_size=args.max_page_size,
    )
