"""/metrics: the Prometheus text format, behind a bearer token.

Two kinds of numbers, for two reasons:

- What the engine, alerts and webhooks count is true across every process on
  every machine, because it is read from the database: tallies written in
  the transaction of the fact they count (`integrations.tallies`) and cheap
  gauges (stored counts, capped or indexed queries). Apps hand their
  collectors to `register` at start-up; `integrations` and `alerts` do it in
  their AppConfig.ready.
- HTTP latency by route is measured where the request is served and kept by
  prometheus_client. With PROMETHEUS_MULTIPROC_DIR set in the environment of
  the web processes (gunicorn workers), every worker writes its samples to
  files there and whichever worker answers /metrics adds them all up
  (prometheus_client's multiprocess mode). Without it, each process keeps
  its own numbers and /metrics shows the answering process's only: fine for
  one process, wrong for several. Prometheus scrapes each web machine.

A collector that fails (the database is down) does not take /metrics with
it: its metrics are left out and `syncconsole_metrics_collector_up` says 0.
"""

import hmac
import logging
import os
import time

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger(__name__)

# A `_created` series beside every counter and histogram says when this process
# started counting: noise for a scrape that may reach any worker.
disable_created_metrics()

MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")

# Web requests are quick or a problem: the buckets stop at 30 s.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

# This process's own metrics (in multiprocess mode they go to files instead,
# and the registry stays empty).
PROCESS_REGISTRY = CollectorRegistry(auto_describe=True)
HTTP_REQUEST_SECONDS = Histogram(
    "syncconsole_http_request_duration_seconds",
    "Time to answer a web request, by method, URL route (the pattern, never the path) and status.",
    ["method", "route", "status"],
    buckets=HTTP_BUCKETS,
    registry=None if MULTIPROCESS_DIR else PROCESS_REGISTRY,
)

# name -> collector: what /metrics reads besides the HTTP latency.
_COLLECTORS = {}


def register(name, collector):
    """Add a collector (an object with `collect()` yielding metric families) to /metrics, once per name."""
    _COLLECTORS[name] = collector


def process_collector():
    """The HTTP metrics: from every process's files in multiprocess mode, else this process's registry."""
    if MULTIPROCESS_DIR:
        from prometheus_client import multiprocess

        return multiprocess.MultiProcessCollector(None, path=MULTIPROCESS_DIR)
    return PROCESS_REGISTRY


class Exposition:
    """Everything /metrics shows, for `generate_latest` (it only calls `collect`)."""

    def collect(self):
        up = GaugeMetricFamily(
            "syncconsole_metrics_collector_up",
            "1 if the collector's metrics could be read for this scrape, 0 if it failed (see the log).",
            labels=["collector"],
        )
        yield from process_collector().collect()
        for name in sorted(_COLLECTORS):
            try:
                # Read whole before yielding: a failure half-way leaves nothing half-written.
                families = list(_COLLECTORS[name].collect())
            except DatabaseError:
                logger.exception("metrics collector %s failed", name)
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1)
            yield from families
        yield up


def token_refusal(request):
    """None if the request may read /metrics, else the answer to give it."""
    expected = settings.METRICS_TOKEN
    if not expected:
        if settings.PRODUCTION:
            return HttpResponse(
                "Metrics are switched off: set METRICS_TOKEN and scrape with "
                "'Authorization: Bearer <token>' (docs/OPERATIONS.md).\n",
                status=403,
                content_type="text/plain; charset=utf-8",
            )
        return None  # development without a token: open, as the demo's Prometheus expects
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode()):
        return None
    response = HttpResponse(
        "A valid 'Authorization: Bearer <METRICS_TOKEN>' header is needed to read the metrics.\n",
        status=401,
        content_type="text/plain; charset=utf-8",
    )
    response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


@require_GET
def metrics_view(request):
    refusal = token_refusal(request)
    if refusal is not None:
        return refusal
    return HttpResponse(generate_latest(Exposition()), content_type=CONTENT_TYPE_LATEST)


def route_of(request):
    """The label for a request's URL: its route pattern, never the path (which holds ids and tokens)."""
    match = getattr(request, "resolver_match", None)
    if match is not None and match.route:
        return "/" + match.route
    if request.path_info.startswith("/" + settings.STATIC_URL.lstrip("/")):
        return "static"
    return "unmatched"


class HttpMetricsMiddleware:
    """Times every request by method, route and status; runs no query."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        method = request.method if request.method in KNOWN_METHODS else "other"
        HTTP_REQUEST_SECONDS.labels(method, route_of(request), str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return response


# Anything else a client sends is "other": label values stay few.
KNOWN_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
