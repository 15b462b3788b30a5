"""Fixtures for the JSON API tests: API keys and clients that behave like a tenant's program.

A program sends no CSRF cookie, so the clients enforce CSRF checks the way
a real request meets them. The portal fixtures (members, logged-in clients,
integrations in a given status) and the simulator-backed engine fixtures
are shared.
"""

import pytest
from django.test import Client

from integrations import api_keys
from tests.integrations.conftest import (  # noqa: F401
    error_catalog,
    make_integration,
    simulator_settings,
    sync,
)
from tests.portal.conftest import integration_in, log_in, member, two_tenants  # noqa: F401


@pytest.fixture
def api_key(db):
    """A new key of the tenant: (ApiKey, raw key)."""

    def make(tenant, name="monitoring"):
        return api_keys.create_api_key(tenant, name)

    return make


@pytest.fixture
def api_client(api_key):
    """A client sending `Authorization: Bearer <a new key of the tenant>` (or the raw key given)."""

    def make(tenant=None, raw_key=None):
        if raw_key is None:
            _, raw_key = api_key(tenant)
        return Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Bearer {raw_key}")

    return make
