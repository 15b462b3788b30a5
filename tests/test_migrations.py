"""Migrations: upgrading a database that holds data, and the data migrations run as migrations.

The upgrade test rolls the test database back to the previous release's
migration state (syncconsole/releases.py), writes data through that state's
historical models (what a database of that release holds), migrates forward
to the newest migrations and reads the data back through today's models.
It runs on SQLite and on PostgreSQL (the second CI pass). `.ci/run` also
runs `makemigrations --check`, so a model change without its migration fails.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from integrations import crypto
from integrations.models import Integration, SyncedRecord, SyncSession
from issues.models import ErrorCode, SyncIssue
from syncconsole.releases import PREVIOUS_RELEASE, RELEASES

OUR_APPS = ("integrations", "issues", "alerts", "audit")
migrating = pytest.mark.django_db(transaction=True)


def latest(executor):
    return [node for node in executor.loader.graph.leaf_nodes() if node[0] in OUR_APPS]


def migrate(targets):
    """Migrate to `targets`; the historical apps of that state."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state([node for node in targets if node[1] is not None]).apps


@pytest.fixture
def back_to_latest(transactional_db):
    """Whatever the test does, the database ends at the newest migrations for the tests after it."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(latest(executor))


@pytest.mark.django_db
def test_the_release_names_every_app_and_migrations_that_exist():
    executor = MigrationExecutor(connection)
    for release, state in RELEASES.items():
        assert set(state) == set(OUR_APPS), release
        for app, name in state.items():
            assert name is None or (app, name) in executor.loader.graph.nodes, f"{release}: {app}.{name} does not exist"


@migrating
def test_upgrade_from_the_previous_release_keeps_the_data(back_to_latest):
    release = [(app, name) for app, name in RELEASES[PREVIOUS_RELEASE].items()]
    old = migrate(release)
    now = timezone.now()

    Tenant = old.get_model("integrations", "Tenant")
    OldIntegration = old.get_model("integrations", "Integration")
    OldSession = old.get_model("integrations", "SyncSession")
    OldRecord = old.get_model("integrations", "SyncedRecord")
    OldCode = old.get_model("issues", "ErrorCode")
    OldIssue = old.get_model("issues", "SyncIssue")
    OldAlert = old.get_model("alerts", "Alert")

    tenant = Tenant.objects.create(name="Acme", slug="acme-upgrade", alert_emails="ops@acme.example")
    code, _ = OldCode.objects.get_or_create(
        code="ITEM_MISSING_FIELD",
        defaults={"title": "A required field is missing", "category": "data", "customer_advice": "Fill it in."},
    )
    integration = OldIntegration.objects.create(
        tenant=tenant,
        connector="simulator",
        name="Acme billing",
        settings={"account": "healthy"},
        credentials_ciphertext=crypto.encrypt_json({"api_key": "secret-upgrade-key"}),
        status="warnings",
        mapping_complete=True,
        first_sync_finished_at=now - timedelta(days=2),
        last_outcome="warnings",
        last_outcome_at=now - timedelta(hours=1),
        consecutive_unsuccessful=0,
        sync_interval=timedelta(hours=1),
    )
    session = OldSession.objects.create(
        integration=integration,
        kind="full",
        trigger="schedule",
        state="warnings",
        queued_at=now - timedelta(hours=1, minutes=2),
        started_at=now - timedelta(hours=1, minutes=1),
        finished_at=now - timedelta(hours=1),
        items_seen=2,
        items_created=2,
        items_warnings=1,
        log=[{"at": "", "level": "info", "message": "Full sync started."}],
    )
    OldIntegration.objects.filter(pk=integration.pk).update(last_session=session)
    for n in (1, 2):
        OldRecord.objects.create(
            integration=integration,
            item_type="item",
            external_id=f"item-{n}",
            content_hash=f"{n:064d}",
            data={"name": f"Item {n}"},
            first_synced_at=now,
            last_synced_at=now,
        )
    OldIssue.objects.create(
        tenant=tenant,
        integration=integration,
        first_session=session,
        last_session=session,
        error_code=code,
        severity="warning",
        source="vendor",
        item_type="item",
        external_id="item-2",
        message="Required field 'email' is missing.",
        first_seen_at=now,
        last_seen_at=now,
        occurrences=3,
    )
    OldAlert.objects.create(
        integration=integration,
        tenant=tenant,
        rule="repeated_failures",
        streak="2026-01-01T00:00:00+00:00",
        state="sent",
        recipients=["ops@acme.example"],
        subject="Acme billing keeps failing",
        created_at=now,
    )

    migrate(latest(MigrationExecutor(connection)))

    upgraded = Integration.objects.select_related("tenant", "last_session").get(pk=integration.pk)
    # Apps added since the release are created by the upgrade and work at once.
    from audit.models import AuditRecord

    AuditRecord.objects.create(created_at=now, action=AuditRecord.Action.LOGIN, tenant_id=upgraded.tenant_id)
    assert ErrorCode.objects.filter(code="DESTINATION_REFUSED").exists()
    assert ErrorCode.objects.filter(code="VENDOR_TLS_INVALID").exists()
    assert (upgraded.tenant.slug, upgraded.name, upgraded.status) == ("acme-upgrade", "Acme billing", "warnings")
    assert upgraded.get_credentials() == {"api_key": "secret-upgrade-key"}
    assert upgraded.last_session.state == SyncSession.State.WARNINGS
    assert upgraded.last_session.items_warnings == 1
    assert upgraded.last_session.log[0]["message"] == "Full sync started."
    assert upgraded.sync_interval == timedelta(hours=1)
    assert sorted(SyncedRecord.objects.filter(integration=upgraded).values_list("external_id", flat=True)) == [
        "item-1",
        "item-2",
    ]
    issue = SyncIssue.objects.get(integration=upgraded)
    assert (issue.state, issue.occurrences, issue.error_code_id) == (SyncIssue.State.OPEN, 3, "ITEM_MISSING_FIELD")
    assert upgraded.alerts.get().subject == "Acme billing keeps failing"


@migrating
def test_the_data_migrations_run_forward_and_back(back_to_latest):
    """The catalog, the periodic schedules and the staff groups come from migrations, not from fixtures."""
    from django.contrib.auth.models import Group
    from django_q.models import Schedule

    before_data = [("issues", "0001_initial"), ("integrations", "0002_initial")]
    old = migrate(before_data)
    assert not old.get_model("issues", "ErrorCode").objects.exists()
    assert not Schedule.objects.filter(name="sync-reaper").exists()
    assert not Group.objects.filter(name="Support").exists()

    migrate(latest(MigrationExecutor(connection)))

    codes = set(ErrorCode.objects.values_list("code", flat=True))
    assert {"AUTH_EXPIRED", "VENDOR_BAD_RESPONSE", "MAPPING_INCOMPLETE", "SYNC_LEASE_LOST", "INTERNAL_ERROR"} <= codes
    assert len(codes) >= 16
    assert all(ErrorCode.objects.values_list("customer_advice", flat=True))
    assert set(Schedule.objects.values_list("name", "func")) >= {
        ("sync-reaper", "integrations.tasks.reap_sessions"),
        ("sync-scheduler", "integrations.tasks.schedule_due_syncs"),
        ("alerts-delivery", "alerts.tasks.deliver_due_alerts"),
    }
    support = Group.objects.get(name="Support")
    assert support.permissions.filter(codename="view_integration").exists()
    assert Group.objects.get(name="Engineering").permissions.filter(codename="revoke_credentials").exists()


@migrating
def test_settings_stored_as_typed_words_are_typed_and_old_rest_names_renamed(back_to_latest):
    from integrations.connectors.base import get_connector_class

    old = migrate([("integrations", "0010_connection_tested")])
    Tenant = old.get_model("integrations", "Tenant")
    OldIntegration = old.get_model("integrations", "Integration")
    tenant = Tenant.objects.create(name="Acme", slug="acme-typed")
    words = OldIntegration.objects.create(
        tenant=tenant,
        connector="carddav",
        name="Contacts",
        settings={"addressbook": "/a/", "mark_source_items": "false", "page_size": "50"},
    )
    rest = OldIntegration.objects.create(
        tenant=tenant,
        connector="rest",
        name="Vendor",
        settings={"base_url": "https://api.vendor.example", "items_key": "data", "pagination": "cursor", "required_fields": "name"},
    )

    migrate(latest(MigrationExecutor(connection)))

    assert Integration.objects.get(pk=words.pk).settings == {"addressbook": "/a/", "mark_source_items": False, "page_size": 50}
    settings = Integration.objects.get(pk=rest.pk).settings
    assert settings["items.path"] == "data" and settings["pagination.type"] == "cursor"
    assert settings["rules.required_fields"] == ["name"]
    # The old defaults are written out, so the integration reads the vendor as before.
    assert settings["items.endpoint"] == "/items" and settings["auth.type"] == "api_key_header"
    assert settings["rules.email_fields"] == ["email"] and settings["incremental.type"] == "cursor"
    _, problems = get_connector_class("rest").clean_settings(settings)
    assert problems == []
    assert Integration.objects.get(pk=words.pk).tenant.new_vendor_accounts == "map"
