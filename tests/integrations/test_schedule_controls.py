"""integrations/schedule_controls.py: a tenant admin pauses, resumes and sets the interval within the tenant's bounds.

Each change is on the timeline and in the audit trail; each refusal says why
with its HTTP status and changes nothing (the row, the timeline, the audit).
"""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import AuditRecord
from integrations import schedule_controls, services
from integrations.models import Integration, IntegrationEvent, Membership, Tenant
from integrations.schedule_controls import Refused
from tests.factories import IntegrationFactory, MembershipFactory, TenantFactory, UserFactory

Status = Integration.Status
Kind = IntegrationEvent.Kind


@pytest.fixture
def acme(db):
    tenant = TenantFactory(name="Acme", slug="acme")
    alice = UserFactory(username="alice")
    victor = UserFactory(username="victor")
    now = timezone.now()
    integration = IntegrationFactory(
        tenant=tenant,
        name="Billing",
        status=Status.ACTIVE,
        last_outcome="succeeded",
        last_outcome_at=now - timedelta(minutes=10),
        first_sync_finished_at=now - timedelta(days=2),
        next_sync_at=now + timedelta(minutes=50),
        sync_interval=timedelta(hours=1),
    )
    return type(
        "Acme",
        (),
        {
            "tenant": tenant,
            "alice": alice,
            "admin": MembershipFactory(user=alice, tenant=tenant, role=Membership.Role.ADMIN),
            "viewer": MembershipFactory(user=victor, tenant=tenant, role=Membership.Role.VIEWER),
            "victor": victor,
            "integration": integration,
        },
    )


def state(integration):
    """Everything a refusal must leave as it was."""
    row = Integration.objects.filter(pk=integration.pk).values().get()
    return (
        row,
        list(IntegrationEvent.objects.filter(integration=integration).values_list("pk", flat=True)),
        AuditRecord.objects.count(),
    )


def refused(call, status):
    with pytest.raises(Refused) as caught:
        call()
    assert caught.value.status == status, caught.value.message
    assert "nothing was changed" in caught.value.message.lower() or status in (400, 404)
    return caught.value.message


def customer_actions(tenant):
    return list(AuditRecord.objects.filter(tenant=tenant, action=AuditRecord.Action.CUSTOMER_ACTION).order_by("pk"))


@pytest.mark.django_db
def test_a_tenant_admin_pauses_and_resumes(acme):
    done = schedule_controls.pause(acme.integration.pk, membership=acme.admin, actor=acme.alice)

    acme.integration.refresh_from_db()
    assert "paused" in done
    assert acme.integration.paused and acme.integration.paused_by_customer
    assert acme.integration.paused_reason == "by Acme's admin alice in the portal"
    schedule_controls.resume(acme.integration.pk, membership=acme.admin, actor=acme.alice)

    acme.integration.refresh_from_db()
    assert not acme.integration.paused and not acme.integration.paused_by_customer
    events = IntegrationEvent.objects.filter(integration=acme.integration).order_by("pk")
    assert [(e.kind, e.actor) for e in events] == [(Kind.PAUSED, acme.alice), (Kind.RESUMED, acme.alice)]
    assert [(r.actor, r.changes["action"], r.changes["integration_id"]) for r in customer_actions(acme.tenant)] == [
        (acme.alice, "pause", acme.integration.pk),
        (acme.alice, "resume", acme.integration.pk),
    ]


@pytest.mark.django_db
def test_a_pause_by_support_is_lifted_by_support_only(acme):
    support = UserFactory(username="sam", is_staff=True)
    services.set_paused(acme.integration.pk, True, actor=support, reason="vendor migration this weekend")
    before = state(acme.integration)

    message = refused(lambda: schedule_controls.resume(acme.integration.pk, membership=acme.admin, actor=acme.alice), 409)

    assert "Contact support" in message and "vendor migration this weekend" in message
    assert state(acme.integration) == before
    assert not Integration.objects.get(pk=acme.integration.pk).paused_by_customer
    # Support can lift a customer's pause too.
    services.set_paused(acme.integration.pk, False, actor=support)
    schedule_controls.pause(acme.integration.pk, membership=acme.admin, actor=acme.alice)
    services.set_paused(acme.integration.pk, False, actor=support)
    assert not Integration.objects.get(pk=acme.integration.pk).paused


@pytest.mark.django_db
def test_pausing_twice_or_resuming_what_runs_is_refused(acme):
    before = state(acme.integration)
    refused(lambda: schedule_controls.resume(acme.integration.pk, membership=acme.admin, actor=acme.alice), 409)
    assert state(acme.integration) == before
    schedule_controls.pause(acme.integration.pk, membership=acme.admin, actor=acme.alice)
    before = state(acme.integration)
    refused(lambda: schedule_controls.pause(acme.integration.pk, membership=acme.admin, actor=acme.alice), 409)
    assert state(acme.integration) == before


@pytest.mark.django_db
def test_the_interval_changes_and_the_next_sync_follows_it(acme):
    last_end = acme.integration.last_outcome_at
    done = schedule_controls.set_interval(acme.integration.pk, 30, membership=acme.admin, actor=acme.alice)

    acme.integration.refresh_from_db()
    assert done == "Billing now syncs every 30 minutes."
    assert acme.integration.sync_interval == timedelta(minutes=30)
    # 30 minutes after the last sync ended, plus up to 10% jitter (the engine's rule), not the old 50 minutes away.
    assert last_end + timedelta(minutes=30) <= acme.integration.next_sync_at <= last_end + timedelta(minutes=33)
    event = IntegrationEvent.objects.get(integration=acme.integration, kind=Kind.INTERVAL_CHANGED)
    assert (event.actor, event.note) == (acme.alice, "Sync interval: every 1 hour \u2192 every 30 minutes.")
    assert event.data == {"from_seconds": 3600, "to_seconds": 1800}
    (record,) = customer_actions(acme.tenant)
    assert (record.actor, record.changes["from_minutes"], record.changes["to_minutes"]) == (acme.alice, 60, 30)


@pytest.mark.django_db
def test_a_shorter_interval_already_overdue_is_due_now_never_in_the_past(acme):
    Integration.objects.filter(pk=acme.integration.pk).update(last_outcome_at=timezone.now() - timedelta(hours=5))
    before_call = timezone.now()
    schedule_controls.set_interval(acme.integration.pk, 15, membership=acme.admin, actor=acme.alice)
    acme.integration.refresh_from_db()
    assert before_call <= acme.integration.next_sync_at <= timezone.now()


@pytest.mark.django_db
def test_a_failing_integration_keeps_its_back_off_on_the_new_interval(acme):
    Integration.objects.filter(pk=acme.integration.pk).update(status=Status.FAILING, consecutive_unsuccessful=3)
    last_end = acme.integration.last_outcome_at
    schedule_controls.set_interval(acme.integration.pk, 20, membership=acme.admin, actor=acme.alice)
    acme.integration.refresh_from_db()
    # Three failures in a row: 20 minutes x 4, as finishing.next_sync_at backs off.
    assert last_end + timedelta(minutes=80) <= acme.integration.next_sync_at <= last_end + timedelta(minutes=88)


@pytest.mark.django_db
def test_an_integration_without_a_next_sync_keeps_none(acme):
    Integration.objects.filter(pk=acme.integration.pk).update(next_sync_at=None)
    schedule_controls.set_interval(acme.integration.pk, 120, membership=acme.admin, actor=acme.alice)
    acme.integration.refresh_from_db()
    assert acme.integration.next_sync_at is None and acme.integration.sync_interval == timedelta(hours=2)


@pytest.mark.django_db
def test_the_same_interval_again_changes_nothing(acme):
    before = state(acme.integration)
    done = schedule_controls.set_interval(acme.integration.pk, 60, membership=acme.admin, actor=acme.alice)
    assert done == "Billing already syncs every 1 hour; nothing was changed."
    assert state(acme.integration) == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("bounds", "minutes"),
    [((15, 1440), 14), ((15, 1440), 1441), ((15, 1440), 0), ((15, 1440), -5), ((30, 120), 20), ((30, 120), 180)],
)
def test_an_interval_outside_the_tenants_bounds_is_refused(acme, bounds, minutes):
    acme.tenant.min_sync_interval_minutes, acme.tenant.max_sync_interval_minutes = bounds
    acme.tenant.save()
    acme.admin.tenant = acme.tenant
    before = state(acme.integration)

    message = refused(
        lambda: schedule_controls.set_interval(acme.integration.pk, minutes, membership=acme.admin, actor=acme.alice), 400
    )

    low, high = (schedule_controls.interval_words(m) for m in bounds)
    assert f"from {low} to {high}" in message
    assert state(acme.integration) == before


@pytest.mark.django_db
@pytest.mark.parametrize("minutes", ["30", 30.0, True, None])
def test_an_interval_that_is_not_a_whole_number_is_refused(acme, minutes):
    before = state(acme.integration)
    refused(lambda: schedule_controls.set_interval(acme.integration.pk, minutes, membership=acme.admin, actor=acme.alice), 400)
    assert state(acme.integration) == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change",
    [
        lambda i, m, u: schedule_controls.pause(i, membership=m, actor=u),
        lambda i, m, u: schedule_controls.resume(i, membership=m, actor=u),
        lambda i, m, u: schedule_controls.set_interval(i, 30, membership=m, actor=u),
    ],
    ids=["pause", "resume", "interval"],
)
def test_a_viewer_another_tenant_and_a_gone_integration_change_nothing(acme, change):
    before = state(acme.integration)
    assert "Only admins of Acme" in refused(lambda: change(acme.integration.pk, acme.viewer, acme.victor), 403)

    globex = TenantFactory(name="Globex")
    gerda = UserFactory(username="gerda")
    their_admin = MembershipFactory(user=gerda, tenant=globex, role=Membership.Role.ADMIN)
    refused(lambda: change(acme.integration.pk, their_admin, gerda), 404)
    refused(lambda: change(987654, acme.admin, acme.alice), 404)
    assert state(acme.integration) == before

    Integration.objects.filter(pk=acme.integration.pk).update(deactivated_at=timezone.now(), status=Status.INACTIVE)
    before = state(acme.integration)
    assert "switched off" in refused(lambda: change(acme.integration.pk, acme.admin, acme.alice), 409)
    assert state(acme.integration) == before

    Integration.objects.filter(pk=acme.integration.pk).update(deleted_at=timezone.now(), status=Status.DELETED)
    before = state(acme.integration)
    refused(lambda: change(acme.integration.pk, acme.admin, acme.alice), 404)
    assert state(acme.integration) == before


# -- the bounds staff set per tenant ----------------------------------------------------------


@pytest.mark.django_db
def test_a_new_tenant_may_choose_from_15_minutes_to_a_day():
    assert schedule_controls.interval_bounds(TenantFactory()) == (15, 1440)


@pytest.mark.django_db
def test_bounds_whose_shortest_is_longer_than_the_longest_are_refused():
    tenant = TenantFactory.build(min_sync_interval_minutes=60, max_sync_interval_minutes=30)
    with pytest.raises(ValidationError) as caught:
        tenant.full_clean()
    assert "max_sync_interval_minutes" in caught.value.message_dict


@pytest.mark.django_db
@pytest.mark.parametrize(("low", "high"), [(60, 30), (0, 30)])
def test_the_database_holds_the_bounds_too(low, high):
    tenant = TenantFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Tenant.objects.filter(pk=tenant.pk).update(min_sync_interval_minutes=low, max_sync_interval_minutes=high)
