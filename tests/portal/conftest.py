"""Fixtures for the portal tests: tenants with members, logged-in clients, integrations in a given status.

The simulator-backed fixtures of the engine tests (`error_catalog`,
`make_integration`, `sync`) are shared from tests/integrations/conftest.py.
"""

from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client
from django.utils import timezone

from integrations import status as machine
from integrations.models import (
    AccountMapping,
    ApiKey,
    Integration,
    IntegrationEvent,
    Membership,
    SyncedRecord,
    SyncSession,
    Tenant,
)
from integrations.services import facts_of
from issues.models import SupportRequest, SyncIssue
from tests.factories import IntegrationFactory, MembershipFactory, UserFactory
from tests.integrations.conftest import error_catalog, make_integration, simulator_settings, sync  # noqa: F401

PASSWORD = "password"
S = Integration.Status


@pytest.fixture
def member(db):
    """A user belonging to a tenant with a role (viewer unless told)."""

    def make(tenant, role=Membership.Role.VIEWER, username=None, **user_fields):
        user = UserFactory(username=username, **user_fields) if username else UserFactory(**user_fields)
        MembershipFactory(user=user, tenant=tenant, role=role)
        return user

    return make


@pytest.fixture
def log_in(db):
    """A new test client logged in as the user (one client per user, so tests can hold several)."""

    def login(user):
        client = Client()
        assert client.login(username=user.username, password=PASSWORD)
        return client

    return login


def _facts_for(status, now):
    """Stored facts from which the status machine derives `status`."""
    ran = {
        "mapping_complete": True,
        "first_sync_finished_at": now - timedelta(days=10),
        "last_outcome": Integration.Outcome.SUCCEEDED,
        "last_outcome_at": now - timedelta(minutes=5),
        "last_success_at": now - timedelta(minutes=5),
        "next_sync_at": now + timedelta(minutes=12, seconds=30),
        "status_changed_at": now - timedelta(days=1),
    }
    if status == S.SETUP:
        return {"mapping_complete": False, "status_changed_at": now - timedelta(hours=1)}
    if status == S.ACTIVE:
        return ran
    if status == S.WARNINGS:
        return {**ran, "last_outcome": Integration.Outcome.WARNINGS}
    if status == S.FAILING:
        return {
            **ran,
            "last_outcome": Integration.Outcome.FAILED,
            "last_error_code": "VENDOR_UNAVAILABLE",
            "consecutive_unsuccessful": 2,
            "unsuccessful_since": now - timedelta(hours=1),
        }
    if status == S.AUTH_FAILING:
        return {
            **ran,
            "last_outcome": Integration.Outcome.AUTH_FAILED,
            "last_error_code": "AUTH_EXPIRED",
            "consecutive_unsuccessful": 1,
            "unsuccessful_since": now - timedelta(hours=1),
            "auth_failing_since": now - timedelta(hours=1),
        }
    if status == S.CREDENTIALS_INVALID:
        return {
            **ran,
            "last_outcome": Integration.Outcome.AUTH_FAILED,
            "last_error_code": "AUTH_EXPIRED",
            "consecutive_unsuccessful": 40,
            "unsuccessful_since": now - timedelta(days=4),
            "auth_failing_since": now - timedelta(days=4),
        }
    if status == S.QUALITY_ASSURANCE:
        return {**ran, "quality_assurance_since": now - timedelta(days=1)}
    if status == S.INACTIVE:
        return {**ran, "deactivated_at": now - timedelta(days=1)}
    raise ValueError(f"No facts for {status!r}")


@pytest.fixture
def integration_in(db, error_catalog):  # noqa: F811 (the imported fixture)
    """An integration (no vendor behind it) whose stored facts agree with the status asked for.

    The status is derived by the status machine from the facts, as every
    transition does, so the integration is one the product could really hold.
    """

    def make(tenant, status=S.ACTIVE, **fields):
        now = timezone.now()
        integration = IntegrationFactory(tenant=tenant, **{**_facts_for(status, now), **fields})
        derived, reason = machine.derive(facts_of(integration), settings.CREDENTIALS_INVALID_AFTER)
        assert derived == status, f"the facts give {derived}, not {status}"
        Integration.objects.filter(pk=integration.pk).update(status=derived, status_reason=reason)
        integration.refresh_from_db()
        return integration

    return make


def snapshot(*tenants):
    """Every row a portal or API request could change, for the tenants given, and the mail sent.

    Two snapshots are equal when nothing changed: status, credentials,
    mappings, sessions, events, issues, help requests, keys, records.
    """

    def rows(queryset):
        return list(queryset.order_by("pk").values())

    return {
        "tenants": rows(Tenant.objects.filter(pk__in=[t.pk for t in tenants])),
        "integrations": rows(Integration.objects.filter(tenant__in=tenants)),
        "mappings": rows(AccountMapping.objects.filter(integration__tenant__in=tenants)),
        "sessions": rows(SyncSession.objects.filter(integration__tenant__in=tenants)),
        "events": rows(IntegrationEvent.objects.filter(integration__tenant__in=tenants)),
        "records": rows(SyncedRecord.objects.filter(integration__tenant__in=tenants)),
        "issues": rows(SyncIssue.objects.filter(tenant__in=tenants)),
        "support_requests": rows(SupportRequest.objects.filter(issue__tenant__in=tenants)),
        "api_keys": rows(ApiKey.objects.filter(tenant__in=tenants)),
        "mail": [(m.subject, tuple(m.to)) for m in mail.outbox],
    }
