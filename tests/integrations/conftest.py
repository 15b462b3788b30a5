"""Fixtures for the sync engine tests: simulator-backed integrations (the error catalog is in tests/conftest.py)."""

import itertools
import os

import pytest

from integrations.models import SyncSession
from integrations.onboarding import create_integration
from integrations.sync.starting import start_sync
from tests.conftest import error_catalog  # noqa: F401 (re-exported to the other apps' conftests)
from tests.factories import TenantFactory

_labels = itertools.count(1)


@pytest.fixture
def simulator_settings(vendor_simulator):
    """Integration settings for a simulator account (`scenario.label`) that no other test shares."""

    def settings_for(scenario, **settings):
        account = f"{scenario}.t{os.getpid()}-{next(_labels)}"
        return {"account": account, "base_url": vendor_simulator.base_url, **settings}

    return settings_for


@pytest.fixture
def make_integration(simulator_settings, error_catalog):
    """Create a simulator integration through onboarding; the first sync is left to the test."""

    def make(scenario, *, tenant=None, name=None, credentials=None, **settings):
        settings = simulator_settings(scenario, **settings)
        integration = create_integration(
            tenant or TenantFactory(),
            "simulator",
            name or f"Simulator {settings['account']}",
            settings=settings,
            credentials={"api_key": "good-key"} if credentials is None else credentials,
            queue_first_sync=False,
        )
        return integration

    return make


@pytest.fixture
def sync():
    """Start a sync the way the portal and admin do; the inline broker runs it before this returns.

    Needs a transactional test: start_sync queues the task on commit.
    """

    def run(integration, kind=SyncSession.Kind.FULL, trigger=SyncSession.Trigger.STAFF):
        session = start_sync(integration, kind=kind, trigger=trigger)
        session.refresh_from_db()
        integration.refresh_from_db()
        assert session.state in SyncSession.FINISHED_STATES, f"session {session.pk} is still {session.state}"
        return session

    return run
