"""Invariants the database holds, on SQLite and PostgreSQL alike."""

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from integrations.models import SyncedRecord, SyncSession
from issues.models import SyncIssue
from tests.factories import IntegrationFactory, SyncedRecordFactory, SyncIssueFactory, SyncSessionFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("first", ["queued", "running"])
@pytest.mark.parametrize("second", ["queued", "running"])
def test_second_open_session_is_refused(first, second):
    integration = IntegrationFactory()
    SyncSessionFactory(integration=integration, state=first)
    with pytest.raises(IntegrityError), transaction.atomic():
        SyncSessionFactory(integration=integration, state=second)
    assert SyncSession.objects.filter(integration=integration).count() == 1


def test_finished_sessions_do_not_count_as_open():
    integration = IntegrationFactory()
    for state in SyncSession.FINISHED_STATES:
        SyncSessionFactory(integration=integration, state=state)
    SyncSessionFactory(integration=integration, state="queued")
    other = IntegrationFactory()
    SyncSessionFactory(integration=other, state="running")
    assert SyncSession.objects.filter(state__in=SyncSession.OPEN_STATES).count() == 2


def test_closing_a_session_frees_the_slot():
    integration = IntegrationFactory()
    session = SyncSessionFactory(integration=integration, state="running")
    SyncSession.objects.filter(pk=session.pk).update(state="succeeded", finished_at=timezone.now())
    with transaction.atomic():  # would raise IntegrityError if the finished session still held the slot
        queued = SyncSessionFactory(integration=integration, state="queued")
    assert list(
        SyncSession.objects.filter(integration=integration).order_by("pk").values_list("pk", "state")
    ) == [(session.pk, "succeeded"), (queued.pk, "queued")]


def test_one_record_per_item():
    record = SyncedRecordFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        SyncedRecordFactory(integration=record.integration, item_type=record.item_type, external_id=record.external_id)
    SyncedRecordFactory(integration=record.integration, item_type="contact", external_id=record.external_id)
    assert SyncedRecord.objects.count() == 2


def test_one_open_issue_per_item_and_code():
    issue = SyncIssueFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        SyncIssueFactory(integration=issue.integration, external_id=issue.external_id, error_code=issue.error_code)
    # Resolved and ignored ones may repeat; another code is another issue.
    SyncIssue.objects.filter(pk=issue.pk).update(state="resolved")
    SyncIssueFactory(integration=issue.integration, external_id=issue.external_id, error_code=issue.error_code)
    SyncIssueFactory(
        integration=issue.integration, external_id=issue.external_id, error_code_id="ITEM_INVALID_VALUE"
    )
    assert SyncIssue.objects.filter(state="open").count() == 2


def test_catalog_is_seeded_with_every_design_code():
    from issues.models import ErrorCode

    codes = set(ErrorCode.objects.values_list("code", flat=True))
    assert codes == {
        "AUTH_EXPIRED", "AUTH_INVALID", "AUTH_FORBIDDEN", "RATE_LIMITED", "VENDOR_UNAVAILABLE",
        "VENDOR_TIMEOUT", "VENDOR_BAD_RESPONSE", "MAPPING_INCOMPLETE", "ITEM_UNMAPPED",
        "ITEM_MISSING_FIELD", "ITEM_INVALID_VALUE", "ITEM_DUPLICATE", "SYNC_LEASE_LOST",
        "SYNC_TIMEOUT", "SYNC_NOT_STARTED", "INTERNAL_ERROR",
        "DESTINATION_REFUSED",  # the outbound policy's refusal (category configuration)
        "VENDOR_TLS_INVALID",  # the vendor's TLS certificate does not verify (category configuration)
        "NEW_VENDOR_ACCOUNT",  # a full sync found an account to map (category mapping)
    }  # fmt: skip
    for code in ErrorCode.objects.all():
        assert code.title and code.customer_advice and code.support_notes, code.code
        assert code.category in ErrorCode.Category.values
