"""A tenant with a row of every exported kind, and a portrait of a tenant that ignores ids.

`portrait` describes every row of a tenant kind by kind, in id order, with
each relation written as the position of the row it points at among the
tenant's rows of that kind (a user by username, an error code by code): two
tenants with equal portraits hold the same rows related the same way,
whatever their ids. A relation to a row outside the tenant fails it.
"""

import io
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.utils import timezone

from alerts.models import Alert, Incident
from audit import services as audit
from audit.models import AuditRecord
from integrations.models import AccountMapping, Integration, IntegrationEvent, SyncSession
from issues.models import SupportMessage, SupportRequest, SyncIssue
from syncconsole.tenant_transfer import catalog
from syncconsole.tenant_transfer.exporting import export_tenant
from syncconsole.tenant_transfer.importing import import_tenant
from tests.conftest import error_catalog  # noqa: F401
from tests.factories import (
    IntegrationEventFactory,
    IntegrationFactory,
    MembershipFactory,
    SyncedRecordFactory,
    SyncIssueFactory,
    SyncSessionFactory,
    TenantFactory,
    UserFactory,
)

# What an import changes on purpose (integrations switched off without credentials,
# open sessions cancelled, unsent alerts failed): checked by their own tests.
LANDING_CHANGES = {
    "tenant": {"slug"},
    "integration": {
        "status",
        "status_changed_at",
        "status_reason",
        "deactivated_at",
        "deactivated_for_inactivity",
        "next_sync_at",
        "credentials_set_at",
        "credentials_expire_at",
    },
    "sync_session": {"state", "finished_at", "lease_expires_at", "error_message"},
    "alert": {"state", "last_error", "next_attempt_at", "lease_expires_at", "digest_window_ends_at", "incident"},
}

PLAINTEXT_KEY = "PLAINTEXT-api-key-4f9c2e"


def build_tenant(slug, marker):
    """A tenant with two members, three integrations (one failing with credentials, one synced, one
    deleted) and every kind of row around them."""
    now = timezone.now()
    tenant = TenantFactory(slug=slug, name=f"{marker} Corp", alert_emails=f"alerts@{slug}.example")
    admin_user = UserFactory(username=f"{slug}-admin", first_name="Ada", email=f"ada@{slug}.example")
    viewer = UserFactory(username=f"{slug}-viewer")
    staff = UserFactory(username=f"{slug}-staff", is_staff=True)
    MembershipFactory(user=admin_user, tenant=tenant, role="admin", receives_alerts=True)
    MembershipFactory(user=viewer, tenant=tenant)

    failing = IntegrationFactory(
        tenant=tenant,
        name=f"{marker} Pax8",
        credentials={"api_key": f"{marker}-{PLAINTEXT_KEY}"},
        status=Integration.Status.FAILING,
        quality_assurance_owner=staff,
        settings={"account": f"{marker}-account"},
        last_outcome=Integration.Outcome.FAILED,
        first_sync_finished_at=now - timedelta(days=3),
        next_sync_at=now + timedelta(minutes=5),
    )
    synced = IntegrationFactory(tenant=tenant, name=f"{marker} Contacts", status=Integration.Status.ACTIVE)
    IntegrationFactory(tenant=tenant, name=f"{marker} Old", status=Integration.Status.DELETED, deleted_at=now)
    AccountMapping.objects.create(integration=failing, vendor_account_id="v-1", tenant_account="t-1")
    AccountMapping.objects.create(integration=failing, vendor_account_id="v-2", ignored=True)

    failed = SyncSessionFactory(
        integration=failing,
        state=SyncSession.State.FAILED,
        error_code_id="AUTH_INVALID",
        error_message=f"{marker} the vendor said 401",
        trigger=SyncSession.Trigger.CUSTOMER,
        requested_by=admin_user,
        started_at=now,
        finished_at=now,
        log=[{"level": "error", "message": f"{marker} log line"}],
    )
    SyncSessionFactory(integration=failing, state=SyncSession.State.QUEUED, trigger=SyncSession.Trigger.STAFF, requested_by=staff)
    done = SyncSessionFactory(
        integration=synced, state=SyncSession.State.SUCCEEDED, kind=SyncSession.Kind.FULL, finished_at=now, items_seen=3
    )
    Integration.objects.filter(pk=failing.pk).update(last_session=failed)
    Integration.objects.filter(pk=synced.pk).update(last_session=done)
    records = [
        SyncedRecordFactory(integration=synced, seen_session_id=done.pk, data={"name": f"{marker} contact {n}"})
        for n in range(3)
    ]

    IntegrationEventFactory(
        integration=failing,
        kind=IntegrationEvent.Kind.STATUS_CHANGED,
        from_status="active",
        to_status="failing",
        session=failed,
        data={"note": f"{marker} facts"},
    )
    IntegrationEventFactory(integration=failing, kind=IntegrationEvent.Kind.SESSION_FINISHED, session=failed)
    IntegrationEventFactory(integration=failing, kind=IntegrationEvent.Kind.SYNC_REQUESTED, actor=staff)

    open_issue = SyncIssueFactory(
        integration=synced, first_session=done, last_session=done, record=records[0], message=f"{marker} no last name"
    )
    SyncIssueFactory(
        integration=failing,
        error_code_id="AUTH_INVALID",
        item_type="",
        external_id="",
        state=SyncIssue.State.RESOLVED,
        resolved_by=staff,
        resolved_at=now,
        first_session=failed,
        last_session=failed,
    )
    request = SupportRequest.objects.create(
        integration=synced, issue=open_issue, user=admin_user, message=f"{marker} please help", assignee=staff
    )
    SupportMessage.objects.create(request=request, author=staff, from_support=True, body=f"{marker} on it", created_at=now)

    incident, _ = Incident.objects.get_or_create(
        connector="simulator", error_code_id="AUTH_INVALID", resolved_at=None, defaults={"opened_at": now}
    )
    Alert.objects.create(
        integration=failing,
        tenant=tenant,
        rule=Alert.Rule.REPEATED_FAILURES,
        streak="streak-1",
        state=Alert.State.PENDING,
        recipients=[f"alerts@{slug}.example"],
        subject=f"{marker} keeps failing",
        context={"integration": failing.name},
        created_at=now,
        next_attempt_at=now,
    )
    Alert.objects.create(
        integration=failing,
        tenant=tenant,
        rule=Alert.Rule.AUTH_FAILING,
        streak="streak-1",
        state=Alert.State.SENT,
        recipients=[f"alerts@{slug}.example"],
        subject=f"{marker} authentication failing",
        created_at=now,
        sent_at=now,
        incident=incident,
    )
    for action in (AuditRecord.Action.STAFF_ACTION, AuditRecord.Action.CREDENTIALS_CHANGED):
        audit.record(action, tenant=tenant, target=f"{marker} integration", actor=staff, changes={"note": marker})
    return tenant


@pytest.fixture
def acme(error_catalog):  # noqa: F811
    return build_tenant("acme", "ACME")


@pytest.fixture
def other(error_catalog):  # noqa: F811
    return build_tenant("globex", "OTHER-TENANT-MARKER")


def export_text(slug, **options):
    stream = io.StringIO()
    export_tenant(slug, stream, **options)
    return stream.getvalue()


def import_text(text, **options):
    return import_tenant(io.BytesIO(text.encode()), **options)


def move_users_aside():
    """Give every user here another username and address: as in another installation, none of the exported people exist."""
    get_user_model().objects.update(username=Concat(Value("here-"), F("username")), email=Concat(Value("here-"), F("email")))


def portrait(tenant, skip=LANDING_CHANGES):
    User = get_user_model()
    rows = {kind.name: list(kind.rows(tenant).order_by("pk")) for kind in catalog.exported()}
    positions = {name: {row.pk: n for n, row in enumerate(objs)} for name, objs in rows.items()}

    def reference(target, value):
        if target == "user":
            return User.objects.get(pk=value).username
        if target == "error_code":
            return value
        return (target, positions[target][value])

    def describe(kind, row):
        relations = {relation.field: relation.target for relation in catalog.relations(kind)}
        targets = {**relations, **kind.id_columns}
        described = {}
        for field in kind.model._meta.concrete_fields:
            if field.primary_key or field.name in kind.leave_out or field.name in skip.get(kind.name, ()):
                continue
            value = getattr(row, field.attname)
            if field.name in targets and value is not None:
                value = reference(targets[field.name], value)
            described[field.name] = value
        return described

    return {name: [describe(catalog.BY_NAME[name], row) for row in objs] for name, objs in rows.items()}


def row_counts():
    """Rows of every model an import may write, and the users: to show that a refused import wrote nothing."""
    from alerts.models import EventReceipt
    from issues.models import ErrorCode

    models = [kind.model for kind in catalog.KINDS] + [EventReceipt, ErrorCode]
    return {model._meta.label: model._default_manager.count() for model in models}
