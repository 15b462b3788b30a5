"""Fixtures for the portal tests: tenants with members, logged-in clients, integrations in a given status.

The simulator-backed fixtures of the engine tests (`error_catalog`,
`make_integration`, `sync`) are shared from tests/integrations/conftest.py.

At the end, what the tenant-isolation tests of the portal and the API share:
two tenants owning one of everything, every route of the URL resolver, and
the probes (requests aimed at the other tenant's objects) their tables hold.
"""

import json
from dataclasses import dataclass, field
from datetime import timedelta
from operator import attrgetter
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.core import mail
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.test import Client
from django.urls import URLResolver, get_resolver
from django.utils import timezone

from alerts import webhooks as hooks
from alerts.models import Alert, WebhookDelivery, WebhookEndpoint
from integrations import api_keys
from integrations import status as machine
from integrations.models import (
    AccountMapping,
    ApiKey,
    Integration,
    IntegrationEvent,
    Membership,
    ReauthLink,
    SyncedRecord,
    SyncSession,
    Tenant,
)
from integrations.services import facts_of
from issues.models import SupportMessage, SupportRequest, SyncIssue
from tests.factories import (
    IntegrationFactory,
    MembershipFactory,
    SyncedRecordFactory,
    SyncIssueFactory,
    SyncSessionFactory,
    TenantFactory,
    UserFactory,
)
from tests.integrations.conftest import (  # noqa: F401
    error_catalog,
    make_integration,
    simulator_settings,
    sync,
)

PASSWORD = "password"
Status = Integration.Status


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
        assert client.login(request=HttpRequest(), username=user.username, password=PASSWORD)
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
    if status == Status.SETUP:
        return {"mapping_complete": False, "status_changed_at": now - timedelta(hours=1)}
    if status == Status.ACTIVE:
        return ran
    if status == Status.WARNINGS:
        return {**ran, "last_outcome": Integration.Outcome.WARNINGS}
    if status == Status.FAILING:
        return {
            **ran,
            "last_outcome": Integration.Outcome.FAILED,
            "last_error_code": "VENDOR_UNAVAILABLE",
            "consecutive_unsuccessful": 2,
            "unsuccessful_since": now - timedelta(hours=1),
        }
    if status == Status.AUTH_FAILING:
        return {
            **ran,
            "last_outcome": Integration.Outcome.AUTH_FAILED,
            "last_error_code": "AUTH_EXPIRED",
            "consecutive_unsuccessful": 1,
            "unsuccessful_since": now - timedelta(hours=1),
            "auth_failing_since": now - timedelta(hours=1),
        }
    if status == Status.CREDENTIALS_INVALID:
        return {
            **ran,
            "last_outcome": Integration.Outcome.AUTH_FAILED,
            "last_error_code": "AUTH_EXPIRED",
            "consecutive_unsuccessful": 40,
            "unsuccessful_since": now - timedelta(days=4),
            "auth_failing_since": now - timedelta(days=4),
        }
    if status == Status.QUALITY_ASSURANCE:
        return {**ran, "quality_assurance_since": now - timedelta(days=1)}
    if status == Status.INACTIVE:
        return {**ran, "deactivated_at": now - timedelta(days=1)}
    raise ValueError(f"No facts for {status!r}")


@pytest.fixture
def integration_in(db, error_catalog):  # noqa: F811 (the imported fixture)
    """An integration (no vendor behind it) whose stored facts agree with the status asked for.

    The status is derived by the status machine from the facts, as every
    transition does, so the integration is one the product could really hold.
    """

    def make(tenant, status=Status.ACTIVE, **fields):
        now = timezone.now()
        integration = IntegrationFactory(tenant=tenant, **{**_facts_for(status, now), **fields})
        derived, reason = machine.derive(facts_of(integration), settings.CREDENTIALS_INVALID_AFTER)
        assert derived == status, f"the facts give {derived}, not {status}"
        Integration.objects.filter(pk=integration.pk).update(status=derived, status_reason=reason)
        integration.refresh_from_db()
        return integration

    return make


def bulk_integrations(tenant, specs):
    """Integrations of the tenant in one INSERT, each one's stored facts agreeing with its status.

    Each spec gives fields and `status` (active unless told); a spec with
    `deleted_at` makes a deleted integration. The status machine derives each
    status from the facts, as in `integration_in`, without a query per row.
    """
    now = timezone.now()
    rows = []
    for spec in specs:
        fields = dict(spec)
        status = fields.pop("status", Status.ACTIVE)
        row = Integration(tenant=tenant, **{"connector": "simulator", **_facts_for(status, now), **fields})
        row.status, row.status_reason = machine.derive(facts_of(row), settings.CREDENTIALS_INVALID_AFTER)
        assert row.status == (Status.DELETED if row.deleted_at else status), (spec, row.status)
        rows.append(row)
    return Integration.objects.bulk_create(rows, batch_size=500)


def snapshot(*tenants):
    """Every row a portal or API request could change, for the tenants given, and the mail sent.

    Two snapshots are equal when nothing changed: status, credentials,
    members, mappings, sessions, events, issues, help requests and their messages, keys, records,
    re-authentication links, alerts, webhook endpoints and their deliveries.
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
        "support_requests": rows(SupportRequest.objects.filter(integration__tenant__in=tenants)),
        "support_messages": rows(SupportMessage.objects.filter(request__integration__tenant__in=tenants)),
        "api_keys": rows(ApiKey.objects.filter(tenant__in=tenants)),
        "memberships": rows(Membership.objects.filter(tenant__in=tenants)),
        "reauth_links": rows(ReauthLink.objects.filter(integration__tenant__in=tenants)),
        "alerts": rows(Alert.objects.filter(tenant__in=tenants)),
        "webhooks": rows(WebhookEndpoint.objects.filter(tenant__in=tenants)),
        "webhook_deliveries": rows(WebhookDelivery.objects.filter(endpoint__tenant__in=tenants)),
        "mail": [(m.subject, tuple(m.to)) for m in mail.outbox],
    }


# -- tenant isolation: two tenants, every route, requests aimed at the other tenant ---------------


def _furnish(tenant, admin, integration_in, latency_ms):
    """One of every object a tenant owns; every text of it carries the tenant's name."""
    now = timezone.now()
    integration = integration_in(
        tenant, name=f"{tenant.name} billing", credentials={"api_key": f"{tenant.slug}-key"}
    )
    SyncSessionFactory(integration=integration, state=SyncSession.State.SUCCEEDED, items_seen=120)
    record = SyncedRecordFactory(
        integration=integration, external_id=f"item-{tenant.slug}-1", data={"name": f"{tenant.name} item"}
    )
    issue = SyncIssueFactory(integration=integration, record=record, item_label=f"{tenant.name} item")
    setup = integration_in(tenant, Status.SETUP, name=f"{tenant.name} mailbox")
    key, _ = api_keys.create_api_key(tenant, f"{tenant.name} monitoring")
    webhook, _ = hooks.create_endpoint(tenant, f"https://hooks.{tenant.slug}.example/syncconsole")
    return SimpleNamespace(
        tenant=tenant,
        admin=admin,
        integration=integration,
        record=record,
        issue=issue,
        help_request=SupportRequest.objects.create(
            integration=integration, issue=issue, user=admin, message=f"{tenant.name} needs help"
        ),
        setup=setup,
        mappings=[
            AccountMapping.objects.create(
                integration=setup,
                vendor_account_id=f"{tenant.slug}-{n}",
                vendor_account_name=f"{tenant.name} {n}",
            )
            for n in (1, 2)
        ],
        idle=integration_in(
            tenant, Status.INACTIVE, name=f"{tenant.name} sandbox", deactivated_for_inactivity=True
        ),
        key=key,
        webhook=webhook,
        delivery=WebhookDelivery.objects.create(
            endpoint=webhook,
            event=WebhookEndpoint.Event.SESSION_FINISHED,
            payload={"tenant": tenant.slug},
            state=WebhookDelivery.State.SUCCEEDED,
            attempts=1,
            response_code=200,
            latency_ms=latency_ms,
            created_at=now,
            delivered_at=now,
        ),
        # How the webhooks page shows the delivery: no other column names the tenant.
        delivery_shown=f"{latency_ms} ms",
    )


@pytest.fixture
def two_tenants(member, integration_in):
    """Acme (`us`, alice is its admin) and Globex (`them`), each owning one of everything.

    Integrations (one syncing, one in setup with account mappings, one switched
    off for inactivity), a session, a record, an issue with a help request, an
    API key, a webhook endpoint with a delivery.
    """
    acme = TenantFactory(name="Acme", slug="acme")
    globex = TenantFactory(name="Globex", slug="globex")
    return SimpleNamespace(
        us=_furnish(acme, member(acme, Membership.Role.ADMIN, username="alice"), integration_in, 1111),
        them=_furnish(globex, member(globex, Membership.Role.ADMIN, username="gerda"), integration_in, 7777),
    )


@dataclass(frozen=True)
class UrlRoute:
    key: str  # "portal:general"; an unnamed route goes by its path
    path: str  # "/portal/integrations/<int:integration_id>/"
    namespace: str  # "portal", "" at the top
    arguments: tuple  # what the URL carries: converter and group names, its includes' too


def url_routes(patterns=None, prefix="/", namespace="", arguments=()):
    """Every route of the URL configuration, through every include()."""
    if patterns is None:
        patterns = get_resolver().url_patterns
    for entry in patterns:
        regex = entry.pattern.regex
        named = tuple(regex.groupindex)
        carried = arguments + named + tuple(f"<group {n}>" for n in range(regex.groups - len(named)))
        path = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            inner = ":".join(filter(None, [namespace, entry.namespace]))
            yield from url_routes(entry.url_patterns, path, inner, carried)
        else:
            key = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name or path
            yield UrlRoute(key, path, namespace, carried)


NOT_FOUND = "404"  # a JSON 404 on the API; nothing of either tenant changes
OWN_ONLY = "own only"  # a listing: ours are shown, nothing of theirs
IGNORED = "ignored"  # a request about our own object naming theirs in the body: nothing of theirs changes


@dataclass
class Probe:
    """A request aimed at the other tenant's objects, and the answer expected.

    `url` and `data` map names to values; "them.issue" stands for the pk of the
    other tenant's issue, "us.integration" for our integration's. A callable
    `data(us, them)` builds a body whose field names carry ids. `shows`, for a
    listing: the attributes of a tenant whose text the page shows.
    """

    method: str
    url: dict = field(default_factory=dict)
    data: object = None
    expect: str = NOT_FOUND
    shows: tuple = ()
    label: str = ""

    def kwargs(self, us, them):
        return {name: _value(value, us, them) for name, value in self.url.items()}

    def body(self, us, them):
        if callable(self.data):
            return self.data(us, them)
        if self.data is None:
            return None
        return {name: _value(value, us, them) for name, value in self.data.items()}

    def shown(self, side):
        return [str(attrgetter(attribute)(side)) for attribute in self.shows]


def _value(value, us, them):
    if isinstance(value, str) and value.startswith(("us.", "them.")):
        side, path = value.split(".", 1)
        return attrgetter(path)(us if side == "us" else them).pk
    return value


@dataclass
class Route:
    serves: tuple  # the HTTP methods the view answers; any other is refused with 405
    probes: tuple


HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def assert_probes_cover(table, routes):
    """Each route of the table is tried with every method it serves, the other tenant's ids in every URL argument."""
    for key, route in table.items():
        arguments = set(routes[key].arguments)
        assert set(route.serves) <= set(HTTP_METHODS), key
        assert {p.method for p in route.probes} == set(route.serves), f"{key}: probe every method it serves"
        for method in route.serves:
            expected = {p.expect for p in route.probes if p.method == method}
            assert NOT_FOUND in expected or (not arguments and expected == {OWN_ONLY}), (
                f"{key}: {method} with the other tenant's ids is never tried"
            )
        for probe in route.probes:
            assert set(probe.url) == arguments, (
                f"{key}: the probe fills {sorted(probe.url)}, the URL takes {sorted(arguments)}"
            )
            if probe.expect == OWN_ONLY:
                assert probe.method == "GET" and probe.shows and not probe.url and probe.data is None, key


def probe_params(routes, *, aimed_only=False):
    """(route, probe) parameters; `aimed_only` leaves out the listings, which name no id."""
    return [
        pytest.param(key, probe, id=f"{probe.method} {key}" + (f" ({probe.label})" if probe.label else ""))
        for key, route in routes.items()
        for probe in route.probes
        if not (aimed_only and probe.expect == OWN_ONLY)
    ]


def unserved_params(routes):
    return [
        pytest.param(key, method, id=f"{method} {key}")
        for key, route in routes.items()
        for method in HTTP_METHODS
        if method not in route.serves
    ]


def send(client, method, url, data=None, *, as_json=False):
    """The request as a browser form (or a program's JSON body) would send it."""
    if data is None:
        return client.generic(method, url)
    if as_json:
        return client.generic(method, url, json.dumps(data), content_type="application/json")
    return client.post(url, data)


def owners_in_context(response):
    """The tenant ids owning the model instances the page's templates were given."""
    owners, seen = set(), set()

    def visit(value, depth=0):
        if id(value) in seen or depth > 6:
            return
        seen.add(id(value))
        if isinstance(value, Tenant):
            owners.add(value.pk)
        elif isinstance(value, Model):
            owner = _owner(value)
            if owner is not None:
                owners.add(owner)
        elif isinstance(value, (list, tuple, set, QuerySet)):
            for item in value:
                visit(item, depth + 1)
        elif isinstance(value, dict):
            for item in value.values():
                visit(item, depth + 1)

    contexts = response.context if isinstance(response.context, list) else [response.context]
    for context in filter(None, contexts):
        visit(context.flatten())
    return owners


def _owner(instance):
    for path in ("tenant_id", "integration.tenant_id", "endpoint.tenant_id", "issue.tenant_id"):
        try:
            return attrgetter(path)(instance)
        except AttributeError:
            continue
    return None
