"""Fixtures for the support console tests: staff users in their groups, logged-in clients.

The simulator-backed fixtures of the engine tests (`error_catalog`,
`make_integration`, `sync`) are shared from tests/integrations/conftest.py.
"""

import importlib

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from django.http import HttpRequest

from tests.factories import UserFactory
from tests.integrations.conftest import (  # noqa: F401
    error_catalog,
    make_integration,
    simulator_settings,
    sync,
)

PASSWORD = "password"


@pytest.fixture
def staff_groups(db):
    """The "Support" and "Engineering" groups of migration 0005.

    A transactional test flushes the groups with every other table, so the
    migration's function puts them back. It marks the app configs as having
    models for create_permissions; the real values are restored afterwards.
    """
    migration = importlib.import_module("integrations.migrations.0005_staff_groups")
    configs = [apps.get_app_config(label) for label in ("integrations", "issues")]
    saved = [config.models_module for config in configs]
    try:
        migration.create_groups(apps, None)
    finally:
        for config, models_module in zip(configs, saved):
            config.models_module = models_module
    return {group.name: group for group in Group.objects.filter(name__in=migration.GROUPS)}


def _staff(username, group=None):
    user = UserFactory(username=username, first_name=username.title(), is_staff=True)
    if group is not None:
        user.groups.add(group)
    return user


@pytest.fixture
def support_user(staff_groups):
    return _staff("support", staff_groups["Support"])


@pytest.fixture
def engineering_user(staff_groups):
    return _staff("engineering", staff_groups["Engineering"])


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(client):
    """Log the test client in as a staff user through the login form's backend."""

    def login(user):
        assert client.login(request=HttpRequest(), username=user.username, password=PASSWORD)
        return client

    return login


@pytest.fixture
def support_client(staff_client, support_user):
    return staff_client(support_user)


@pytest.fixture
def engineering_client(staff_client, engineering_user):
    return staff_client(engineering_user)


@pytest.fixture
def users(support_user, engineering_user, superuser):
    return {"support": support_user, "engineering": engineering_user, "superuser": superuser}
