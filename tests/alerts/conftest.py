"""Fixtures for the alert, incident and webhook tests.

The simulator-backed integrations and the `sync` helper come from the sync
engine tests; the SMTP server from tests/plugins/smtp.py.
"""

import itertools

import pytest

from integrations.models import Integration, SyncSession
from tests.factories import MembershipFactory, TenantFactory, UserFactory
from tests.integrations.conftest import (  # noqa: F401
    error_catalog,
    make_integration,
    simulator_settings,
    sync,
)
from tests.plugins.smtp import smtp_server  # noqa: F401

_tenants = itertools.count(1)


@pytest.fixture
def alert_tenant(db):
    """A tenant with an alert address (and no opted-in members)."""

    def make(**fields):
        n = next(_tenants)
        fields.setdefault("alert_emails", f"ops{n}@tenant{n}.example")
        return TenantFactory(**fields)

    return make


@pytest.fixture
def member(db):
    """A portal user of a tenant: member(tenant, role="admin")."""

    def make(tenant, role="viewer", **fields):
        user = UserFactory()
        MembershipFactory(user=user, tenant=tenant, role=role, **fields)
        return user

    return make


@pytest.fixture
def healthy_then_failing(make_integration, sync, vendor_simulator, alert_tenant):
    """An integration that synced cleanly once; then its simulator account answers 503."""

    def make(tenant=None, **kwargs):
        integration = make_integration("healthy", tenant=tenant or alert_tenant(), **kwargs)
        first = sync(integration)
        assert first.state == SyncSession.State.SUCCEEDED
        assert integration.status == Integration.Status.ACTIVE
        vendor_simulator.control(integration.settings["account"], fail=True)
        return integration

    return make


@pytest.fixture
def fail_times(sync):
    """Run n quick syncs that fail; returns the sessions."""

    def run(integration, n):
        sessions = []
        for _ in range(n):
            session = sync(integration, kind=SyncSession.Kind.QUICK)
            assert session.state == SyncSession.State.FAILED, (session.state, session.error_code_id)
            sessions.append(session)
        return sessions

    return run
