"""Retention (integrations/retention.py, alerts/retention.py, manage.py purge_old): old rows go in
bounded batches; open issues, last sessions and whatever is still referenced stay."""

import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.utils import timezone
from django_q.models import Schedule

from alerts.models import Alert, EventReceipt, WebhookDelivery, WebhookEndpoint
from integrations import retention
from integrations.models import Integration, IntegrationEvent, SeenItem, SeenRange, SyncSession
from issues.models import SupportMessage, SupportRequest, SyncIssue
from tests.factories import (
    IntegrationEventFactory,
    IntegrationFactory,
    SyncIssueFactory,
    SyncSessionFactory,
    UserFactory,
)

State = SyncSession.State
IssueState = SyncIssue.State
DAYS = 90


@pytest.fixture(autouse=True)
def no_pause(settings):
    settings.RETENTION_BATCH_PAUSE_SECONDS = 0


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def old(now):
    return now - timedelta(days=DAYS + 10)


@pytest.fixture
def recent(now):
    return now - timedelta(days=DAYS - 10)


def finished(integration, at, **fields):
    return SyncSessionFactory(
        integration=integration, state=State.SUCCEEDED, queued_at=at, started_at=at, finished_at=at, **fields
    )


def exists(obj):
    return type(obj)._base_manager.filter(pk=obj.pk).exists()


def endpoint(tenant):
    return WebhookEndpoint.objects.create(
        tenant=tenant, url="https://hooks.example.com/in", secret_ciphertext="x"
    )


def alert(integration, rule, at, state=Alert.State.SENT, streak=None):
    return Alert.objects.create(
        integration=integration,
        tenant=integration.tenant,
        rule=rule,
        streak=streak or at.isoformat(),
        state=state,
        subject="s",
        created_at=at,
    )


@pytest.mark.django_db
def test_old_rows_go_and_what_is_still_needed_stays(error_catalog, now, old, recent):
    integration = IntegrationFactory(status=Integration.Status.ACTIVE)
    user = UserFactory()

    # Sessions.
    old_session = finished(integration, old)
    recent_session = finished(integration, recent)
    queued_long_ago = SyncSessionFactory(
        integration=IntegrationFactory(), queued_at=old
    )  # open: not finished
    last = finished(integration, old - timedelta(days=1))
    Integration.objects.filter(pk=integration.pk).update(last_session=last)
    under_open_issue = finished(integration, old - timedelta(days=2))
    under_resolved_issue = finished(integration, old - timedelta(days=3))
    other_last = finished(IntegrationFactory(), old)
    Integration.objects.filter(pk=other_last.integration_id).update(last_session=other_last)

    # Issues.
    open_issue = SyncIssueFactory(
        integration=integration,
        first_session=under_open_issue,
        last_session=under_open_issue,
        first_seen_at=old,
        last_seen_at=old,
    )
    ignored = SyncIssueFactory(integration=integration, state=IssueState.IGNORED, resolved_at=old)
    old_resolved = SyncIssueFactory(integration=integration, state=IssueState.RESOLVED, resolved_at=old)
    recent_resolved = SyncIssueFactory(
        integration=integration,
        state=IssueState.RESOLVED,
        resolved_at=recent,
        first_session=under_resolved_issue,
    )
    awaiting_help = SyncIssueFactory(integration=integration, state=IssueState.RESOLVED, resolved_at=old)
    SupportRequest.objects.create(
        integration=integration,
        issue=awaiting_help,
        user=user,
        message="help",
        state=SupportRequest.State.WAITING_ON_CUSTOMER,
    )
    answered = SyncIssueFactory(integration=integration, state=IssueState.RESOLVED, resolved_at=old)
    answered_request = SupportRequest.objects.create(
        integration=integration, issue=answered, user=user, message="help", state=SupportRequest.State.RESOLVED
    )
    # Its conversation goes with it (a cascade two levels down).
    answered_reply = SupportMessage.objects.create(
        request=answered_request, from_support=True, body="Fixed on our side.", created_at=old
    )

    # Events (and their receipts, another app's rows).
    old_event = IntegrationEventFactory(integration=integration, created_at=old, session=old_session)
    receipt = EventReceipt.objects.create(event=old_event, consumer="alerts", handled_at=old)
    recent_event = IntegrationEventFactory(
        integration=integration, created_at=recent, session=under_resolved_issue
    )

    # Seen items: of a running sync, of one that finished lately, of one long finished, of one gone.
    running = SyncSessionFactory(
        integration=IntegrationFactory(), state=State.RUNNING, queued_at=old, started_at=old
    )
    seen = {
        "running": SeenItem.objects.create(session_id=running.pk, external_id="a"),
        "recent": SeenItem.objects.create(session_id=recent_session.pk, external_id="b"),
        "old": SeenItem.objects.create(session_id=old_session.pk, external_id="c"),
        "gone": SeenItem.objects.create(session_id=10**9, external_id="d"),
    }
    ranges = {
        when: SeenRange.objects.create(session_id=session_id, item_type="item", low="a", high="b")
        for when, session_id in (("running", running.pk), ("recent", recent_session.pk), ("old", old_session.pk), ("gone", 10**9))
    }

    # Alerts: an old one with a newer one of its rule goes; the newest of a rule stays however old.
    R = Alert.Rule
    superseded = alert(integration, R.REPEATED_FAILURES, old - timedelta(days=30))
    newest_failures = alert(integration, R.REPEATED_FAILURES, old)
    newest_stale = alert(integration, R.STALE, old)
    pending = alert(integration, R.AUTH_FAILING, old - timedelta(days=1), state=Alert.State.PENDING)
    alert(integration, R.AUTH_FAILING, old)

    # Webhook deliveries.
    hook = endpoint(integration.tenant)

    def delivery(at, state):
        return WebhookDelivery.objects.create(
            endpoint=hook, event="session.finished", payload={}, state=state, created_at=at
        )

    delivered_old = delivery(old, WebhookDelivery.State.SUCCEEDED)
    failed_old = delivery(old, WebhookDelivery.State.FAILED)
    pending_old = delivery(old, WebhookDelivery.State.PENDING)
    delivered_recent = delivery(recent, WebhookDelivery.State.SUCCEEDED)

    results = {r.kind.name: r for r in retention.purge(now=now)}

    gone = [
        old_session,
        under_resolved_issue,
        old_resolved,
        answered,
        answered_request,
        answered_reply,
        old_event,
        receipt,
        seen["old"],
        seen["gone"],
        ranges["old"],
        ranges["gone"],
        superseded,
        delivered_old,
        failed_old,
    ]
    kept = [
        recent_session,
        queued_long_ago,
        last,
        under_open_issue,
        other_last,
        open_issue,
        ignored,
        recent_resolved,
        awaiting_help,
        recent_event,
        running,
        seen["running"],
        seen["recent"],
        ranges["running"],
        ranges["recent"],
        newest_failures,
        newest_stale,
        pending,
        pending_old,
        delivered_recent,
        integration,
    ]
    assert [obj for obj in gone if exists(obj)] == []
    assert [obj for obj in kept if not exists(obj)] == []

    integration.refresh_from_db()
    assert integration.last_session_id == last.pk
    recent_resolved.refresh_from_db()
    assert recent_resolved.first_session_id is None  # a resolved issue keeps no session alive
    assert {name: r.rows for name, r in results.items()} == {
        "resolved issues": 2,
        "timeline events": 1,
        "finished sessions": 2,
        "seen items": 2,
        "seen ranges": 2,
        "alerts": 1,
        "webhook deliveries": 2,
    }
    assert results["timeline events"].cascaded == {"alerts.EventReceipt": 1}
    assert results["resolved issues"].cascaded == {"issues.SupportRequest": 1, "issues.SupportMessage": 1}


@pytest.mark.django_db
def test_references_to_a_purged_session_are_cleared_not_cascaded(error_catalog, now, old, recent):
    integration = IntegrationFactory()
    session = finished(integration, old)
    issue = SyncIssueFactory(
        integration=integration,
        state=IssueState.RESOLVED,
        resolved_at=recent,
        first_session=session,
        last_session=session,
    )
    event = IntegrationEventFactory(integration=integration, created_at=recent, session=session)

    retention.purge(now=now)

    assert not exists(session)
    issue.refresh_from_db()
    event.refresh_from_db()
    assert (issue.first_session_id, issue.last_session_id, event.session_id) == (None, None, None)


def capture_deletes():
    """A connection wrapper recording (table, rows deleted) of every DELETE statement."""
    deletes = []

    def wrapper(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if sql.lstrip().upper().startswith("DELETE"):
            table = sql.split("FROM", 1)[1].split()[0].strip('"`')
            deletes.append((table, context["cursor"].rowcount))
        return result

    return deletes, wrapper


@pytest.mark.django_db
def test_batches_are_bounded(error_catalog, now, old):
    integration = IntegrationFactory()
    events = IntegrationEvent.objects.bulk_create(
        [IntegrationEvent(integration=integration, kind="created", created_at=old) for _ in range(25)]
    )
    EventReceipt.objects.bulk_create(
        [EventReceipt(event=e, consumer=c, handled_at=old) for e in events for c in ("alerts", "webhooks")]
    )
    sessions = SyncSession.objects.bulk_create(
        [
            SyncSession(integration=integration, state=State.FAILED, queued_at=old, finished_at=old)
            for _ in range(23)
        ]
    )

    deletes, wrapper = capture_deletes()
    with connection.execute_wrapper(wrapper):
        results = {r.kind.name: r for r in retention.purge(now=now, batch_size=10)}

    assert deletes, "nothing was deleted"
    assert max(rows for _, rows in deletes) <= 10, deletes
    by_table = {}
    for table, rows in deletes:
        by_table.setdefault(table, []).append(rows)
    assert by_table[IntegrationEvent._meta.db_table] == [10, 10, 5]
    assert sum(by_table[EventReceipt._meta.db_table]) == 50
    assert by_table[SyncSession._meta.db_table] == [10, 10, 3]
    assert results["timeline events"].batches == 3
    assert not SyncSession.objects.filter(pk__in=[s.pk for s in sessions]).exists()


@pytest.mark.django_db
def test_purging_twice_purges_nothing_more(error_catalog, now, old, recent):
    integration = IntegrationFactory()
    for at in (old, recent):
        finished(integration, at)
        IntegrationEventFactory(integration=integration, created_at=at)
        SyncIssueFactory(integration=integration, state=IssueState.RESOLVED, resolved_at=at)

    first = sum(r.rows for r in retention.purge(now=now))
    counts = (SyncSession.objects.count(), IntegrationEvent.objects.count(), SyncIssue.objects.count())
    second = sum(r.rows for r in retention.purge(now=now))

    assert (first, second) == (3, 0)
    assert (
        (SyncSession.objects.count(), IntegrationEvent.objects.count(), SyncIssue.objects.count())
        == counts
        == (1, 1, 1)
    )


@pytest.mark.django_db
def test_a_dry_run_counts_and_changes_nothing(error_catalog, old):
    integration = IntegrationFactory()
    finished(integration, old)
    IntegrationEventFactory.create_batch(3, integration=integration, created_at=old)
    out = StringIO()

    call_command("purge_old", "--dry-run", stdout=out)

    text = out.getvalue()
    assert "timeline events: 3 would go" in text
    assert "finished sessions: 1 would go" in text
    assert "RETENTION_DAYS_SESSIONS" in text
    assert "Dry run: nothing was deleted." in text
    assert IntegrationEvent.objects.count() == 3
    assert SyncSession.objects.count() == 1

    out = StringIO()
    call_command("purge_old", stdout=out)
    assert "timeline events: 3 purged" in out.getvalue()
    assert IntegrationEvent.objects.count() == 0


@pytest.mark.django_db
def test_a_setting_of_zero_keeps_that_kind_forever(error_catalog, settings, now):
    settings.RETENTION_DAYS_EVENTS = 0
    settings.RETENTION_DAYS_SESSIONS = 1
    integration = IntegrationFactory()
    event = IntegrationEventFactory(integration=integration, created_at=now - timedelta(days=3000))
    session = finished(integration, now - timedelta(days=2))

    results = {r.kind.name: r for r in retention.purge(now=now)}

    assert results["timeline events"].cutoff is None
    assert exists(event)
    assert not exists(session)


@pytest.mark.django_db
def test_the_purge_is_scheduled_daily():
    schedule = Schedule.objects.get(name="purge-old-rows")
    assert (schedule.func, schedule.minutes) == ("integrations.tasks.purge_old_rows", 24 * 60)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_rows_a_running_transaction_holds_are_skipped_not_waited_for(error_catalog, now, old):
    """A row another transaction has locked (a sync updating it) is left for the next run; the purge never waits."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL=postgres://...): row locks between two connections")
    integration = IntegrationFactory()
    held, free = (
        SyncIssueFactory(integration=integration, state=IssueState.RESOLVED, resolved_at=old)
        for _ in range(2)
    )
    locked, release, done = threading.Event(), threading.Event(), threading.Event()

    def holder():
        try:
            with transaction.atomic():
                SyncIssue.objects.select_for_update().get(pk=held.pk)
                locked.set()
                release.wait(30)
        finally:
            connections.close_all()
            done.set()

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert locked.wait(10)
        results = {r.kind.name: r for r in retention.purge(now=now)}
        assert results["resolved issues"].rows == 1
        assert exists(held) and not exists(free)
    finally:
        release.set()
        thread.join(30)
    assert done.is_set()
    assert {r.kind.name: r.rows for r in retention.purge(now=now)}["resolved issues"] == 1
    assert not exists(held)
