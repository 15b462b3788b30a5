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


def state_before(executor, app, migration):
    """Targets: `app` at `migration`, every other app at its newest migration that does not need a later one of `app`."""
    graph = executor.loader.graph
    later = {node for node in graph.nodes if node[0] == app and node[1] > migration}
    targets = [(app, migration)]
    for leaf in latest(executor):
        if leaf[0] == app:
            continue
        node = leaf
        while node is not None and later & set(graph.forwards_plan(node)):
            own = [parent for parent in graph.node_map[node].parents if parent.key[0] == node[0]]
            node = own[0].key if own else None
        targets.append(node or (leaf[0], None))
    return targets


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


@migrating
def test_help_requests_become_conversations_and_go_back(back_to_latest):
    """issues 0007: open -> new, answered -> waiting on customer, closed -> resolved, each with its issue's
    integration; going back restores the old words and drops what the old schema cannot hold."""
    from issues.models import SupportRequest

    # Only issues goes back; the other apps stay at their newest state.
    before = [("issues", "0006_search_indexes")] + [n for n in latest(MigrationExecutor(connection)) if n[0] != "issues"]
    old = migrate(before)
    tenant = old.get_model("integrations", "Tenant").objects.create(name="Acme", slug="acme-help")
    integration = old.get_model("integrations", "Integration").objects.create(
        tenant=tenant, connector="simulator", name="Acme billing", sync_interval=timedelta(hours=1)
    )
    code, _ = old.get_model("issues", "ErrorCode").objects.get_or_create(
        code="ITEM_MISSING_FIELD",
        defaults={"title": "A required field is missing", "category": "data", "customer_advice": "Fill it in."},
    )
    now = timezone.now()
    issue = old.get_model("issues", "SyncIssue").objects.create(
        tenant=tenant, integration=integration, error_code=code, first_seen_at=now, last_seen_at=now
    )
    user = old.get_model("auth", "User").objects.create(username="grace-help", email="grace@acme.example")
    OldRequest = old.get_model("issues", "SupportRequest")
    ids = {
        state: OldRequest.objects.create(issue=issue, user=user, message=f"Help ({state})", state=state).pk
        for state in ("open", "in_progress", "answered", "closed")
    }

    migrate(latest(MigrationExecutor(connection)))

    upgraded = {r.pk: r for r in SupportRequest.objects.filter(pk__in=ids.values())}
    assert {state: upgraded[pk].state for state, pk in ids.items()} == {
        "open": "new",
        "in_progress": "in_progress",
        "answered": "waiting_on_customer",
        "closed": "resolved",
    }
    assert {r.integration_id for r in upgraded.values()} == {integration.pk}
    assert all(r.assignee_id is None and r.facts == [] and not r.messages.exists() for r in upgraded.values())
    about_the_integration = SupportRequest.objects.create(integration_id=integration.pk, user_id=user.pk, message="No issue")

    back = migrate(before)
    restored = dict(back.get_model("issues", "SupportRequest").objects.values_list("pk", "state"))
    assert restored == {ids["open"]: "open", ids["in_progress"]: "in_progress", ids["answered"]: "answered", ids["closed"]: "closed"}
    assert about_the_integration.pk not in restored


@migrating
def test_unknown_outcomes_advice_gives_the_first_steps_and_goes_back(back_to_latest):
    """issues 0008: the advice of SYNC_LEASE_LOST and SYNC_NOT_STARTED as shipped ("Nothing to do on your side")
    becomes the runbook's first steps; advice staff edited stays theirs; going back restores the shipped words."""
    import importlib

    shipped = {row[0]: row[5] for row in importlib.import_module("issues.migrations.0002_seed_error_codes").CATALOG}
    first_steps = importlib.import_module("issues.migrations.0008_unknown_first_steps").ADVICE
    assert {code: texts[0] for code, texts in first_steps.items()} == {code: shipped[code] for code in first_steps}

    before = [("issues", "0007_support_conversations")] + [
        n for n in latest(MigrationExecutor(connection)) if n[0] != "issues"
    ]
    old = migrate(before)
    OldCode = old.get_model("issues", "ErrorCode")
    for code, advice in (("SYNC_LEASE_LOST", shipped["SYNC_LEASE_LOST"]), ("SYNC_NOT_STARTED", "Call us on 555-0100.")):
        OldCode.objects.update_or_create(
            code=code, defaults={"title": code, "category": "engine", "customer_advice": advice}
        )

    migrate(latest(MigrationExecutor(connection)))

    advice = dict(ErrorCode.objects.filter(code__startswith="SYNC_").values_list("code", "customer_advice"))
    assert advice["SYNC_LEASE_LOST"] == first_steps["SYNC_LEASE_LOST"][1]
    for words in ("run a sync now", "re-authenticate it", "account mapping", "busy window"):
        assert words in advice["SYNC_LEASE_LOST"]
    assert "Nothing to do" not in advice["SYNC_LEASE_LOST"]
    assert advice["SYNC_NOT_STARTED"] == "Call us on 555-0100."  # edited by staff: left as it is

    back = migrate(before)
    restored = dict(back.get_model("issues", "ErrorCode").objects.values_list("code", "customer_advice"))
    assert restored["SYNC_LEASE_LOST"] == shipped["SYNC_LEASE_LOST"]
    assert restored["SYNC_NOT_STARTED"] == "Call us on 555-0100."


@pytest.mark.django_db
def test_the_seeded_catalog_gives_unknown_outcomes_the_first_steps(error_catalog):
    """What every test and a new database start from: the catalog migrations, 0008 included."""
    for code in ("SYNC_LEASE_LOST", "SYNC_NOT_STARTED"):
        advice = ErrorCode.objects.get(pk=code).customer_advice
        assert "Nothing to do on your side" not in advice
        assert "run a sync now" in advice and "busy window" in advice
