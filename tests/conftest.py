import importlib

import pytest
from django.apps import apps

pytest_plugins = [
    "tests.plugins.simulator",
    "tests.plugins.json_server",
    "tests.plugins.tls_server",
    "tests.plugins.chromium",
]


@pytest.fixture(autouse=True)
def fresh_limits():
    """Each test starts with no attempts counted (the limits' counters live in the cache)."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(autouse=True)
def fresh_log_context():
    """Each test starts with no log context bound: a test client's streamed answer left unread never ends its request."""
    from syncconsole import logs

    logs.clear()
    yield
    logs.clear()


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_superuser("staff", "staff@example.com", "password")


@pytest.fixture
def error_catalog(db):
    """The seeded error codes.

    A transactional test flushes every table when it ends, data migrations'
    rows included, so the catalog is put back before each test that needs it.
    """
    seed_catalog()


CATALOG_MIGRATIONS = (
    "issues.migrations.0002_seed_error_codes",
    "issues.migrations.0003_destination_refused",
    "issues.migrations.0004_vendor_tls_invalid",
    "issues.migrations.0005_new_vendor_account",
    "issues.migrations.0008_unknown_first_steps",
)


def seed_catalog():
    """Every code the catalog migrations add."""
    for name in CATALOG_MIGRATIONS:
        importlib.import_module(name).seed(apps, None)


# -- tests that must not skip ------------------------------------------------------------

REQUIRABLE = ("postgres", "redis", "browser", "jsonserver")


def pytest_addoption(parser):
    parser.addoption(
        "--require",
        default="",
        metavar="MARKERS",
        help=(
            "comma-separated markers among postgres, redis, browser, jsonserver: a test carrying one of "
            "them that skips fails the run instead (CI passes say which peers they provide)"
        ),
    )


def pytest_configure(config):
    required = {name.strip() for name in config.getoption("--require").split(",") if name.strip()}
    unknown = required - set(REQUIRABLE)
    if unknown:
        raise pytest.UsageError(f"--require: unknown marker(s) {', '.join(sorted(unknown))}; use {', '.join(REQUIRABLE)}")
    config.required_markers = required


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A skipped test whose peers this run promised to provide is a failure, with the skip's reason.

    Every peer it is marked for: a test that needs PostgreSQL and a browser
    may skip in a run that promises the browser alone (the SQLite pass).
    """
    report = yield
    required = item.config.required_markers
    if report.skipped and not hasattr(report, "wasxfail"):
        needs = {name for name in REQUIRABLE if item.get_closest_marker(name)}
        missing = sorted(needs) if needs and needs <= required else []
        if missing:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            report.outcome = "failed"
            report.longrepr = (
                f"skipped, but this run requires every test marked {', '.join(missing)} to run "
                f"(--require): {reason}"
            )
    return report
