"""/healthz and /readyz, for load balancers and orchestrators.

`/healthz`: the process answers; it touches neither the database nor the
broker. `/readyz`: every check below passes (200) or not (503), answered as
each check's name and "ok" or "failing", nothing more:

    database            SELECT 1
    migrations          every migration applied: read from the migration files and the
                        database until it is true once, then remembered by the process
                        (a deploy that adds migrations starts new processes)
    broker              Redis PING when REDIS_URL is set, else one row of the ORM broker's table
    cache               a value written and read back
    workers:<cluster>   a worker of that cluster beat within WORKER_DEAD_AFTER_SECONDS

No login, no session, no count over a table. A failing check is logged with
its reason; the answer never shows it. `manage.py doctor` runs the same
checks and says why and what to do (`syncconsole.doctor`).
"""

import logging
import uuid

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from django_q.models import OrmQ

from integrations.sync import heartbeats

logger = logging.getLogger(__name__)

# Seconds a readiness probe waits for Redis before calling it down.
REDIS_TIMEOUT = 2.0

_fully_migrated = False


def check_database():
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def pending_migrations():
    """The migrations not applied yet, as (app, name) in the order migrate applies them; [] once all are."""
    global _fully_migrated
    if _fully_migrated:
        return []
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    pending = [(migration.app_label, migration.name) for migration, backwards in plan if not backwards]
    _fully_migrated = not pending
    return pending


def check_migrations():
    pending = pending_migrations()
    if pending:
        raise RuntimeError(f"{len(pending)} migration(s) not applied")


def check_broker():
    """Redis answers PING (REDIS_URL), or the ORM broker's table can be read."""
    if settings.REDIS_URL:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT
        )
        try:
            client.ping()
        finally:
            client.close()
        return
    OrmQ.objects.using(settings.Q_CLUSTER.get("orm", DEFAULT_DB_ALIAS)).order_by().values_list("pk").first()


def check_cache():
    key, value = f"readyz:{uuid.uuid4().hex}", uuid.uuid4().hex
    cache.set(key, value, timeout=10)
    try:
        if cache.get(key) != value:
            raise RuntimeError("the cache did not return what was written")
    finally:
        cache.delete(key)


def worker_checks(now):
    """{"workers:<cluster>": "ok" or "failing"} for every configured cluster, from one query."""
    clusters = heartbeats.liveness(now)
    return {f"workers:{cluster.name}": "ok" if cluster.alive else "failing" for cluster in clusters}


CHECKS = {
    "database": check_database,
    "migrations": check_migrations,
    "broker": check_broker,
    "cache": check_cache,
}


def readiness(now=None):
    """{check name: "ok" or "failing"}; every check runs, whatever the others answered."""
    now = now or timezone.now()
    results = {name: run(name, check) for name, check in CHECKS.items()}
    try:
        results.update(worker_checks(now))
    except Exception as exc:  # the database is down: no heartbeat to read
        logger.warning("readiness check workers failing: %s: %s", type(exc).__name__, exc)
        results.update({f"workers:{name}": "failing" for name in heartbeats.cluster_names()})
    return results


def run(name, check):
    try:
        check()
    except Exception as exc:
        logger.warning("readiness check %s failing: %s: %s", name, type(exc).__name__, exc)
        return "failing"
    return "ok"


@never_cache
@require_safe
def healthz(request):
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request):
    checks = readiness()
    ready = all(result == "ok" for result in checks.values())
    body = {"status": "ok" if ready else "failing", "checks": checks}
    response = JsonResponse(body, status=200 if ready else 503)
    # Each failing check was logged with its reason above: no second, reasonless ERROR line from
    # django.request for every probe while a peer is down.
    response._has_been_logged = True
    return response
