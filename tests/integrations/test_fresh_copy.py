"""The first sync of an item type streams its pages into one COPY; a refused row takes it all back (sync/fresh_copy.py)."""

import pytest
from django.db import connection, transaction
from django.utils import timezone

from integrations.connectors.base import Item
from integrations.models import SyncedRecord, SyncSession
from integrations.sync.fresh_copy import FreshCopy
from integrations.sync.records import content_hash, split_duplicates
from issues.models import SyncIssue
from tests.factories import IntegrationFactory, SyncSessionFactory

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs PostgreSQL (set DATABASE_URL=postgres://...): COPY"
    ),
]


def page(*numbers, value=None):
    return split_duplicates([Item(f"item-{n:07d}", {"n": n if value is None else value}) for n in numbers])[0]


@pytest.mark.django_db
def test_pages_streamed_into_one_copy_are_stored_when_it_closes():
    integration = IntegrationFactory()
    session = SyncSessionFactory(integration=integration, state=SyncSession.State.RUNNING)
    records = SyncedRecord.objects.filter(integration=integration)
    now = timezone.now()
    with transaction.atomic():
        copy = FreshCopy(integration, session, "item")
        assert copy.add(page(1, 2, 3), {}, now) and copy.add(page(4, 5), {}, now)
        assert copy.is_open
        assert copy.close() and not copy.is_open
        assert records.count() == 5  # the transaction goes on
    stored = records.get(external_id="item-0000004")
    assert (stored.data, stored.content_hash, stored.seen_session_id, stored.deleted) == (
        {"n": 4}, content_hash({"n": 4}), session.pk, False
    )
    assert stored.first_synced_at == stored.last_synced_at == now


@pytest.mark.django_db
def test_an_id_stored_before_takes_the_whole_copy_back_and_the_transaction_goes_on():
    integration = IntegrationFactory()
    session = SyncSessionFactory(integration=integration, state=SyncSession.State.RUNNING)
    records = SyncedRecord.objects.filter(integration=integration)
    now = timezone.now()
    with transaction.atomic():
        first = FreshCopy(integration, session, "item")
        assert first.add(page(1, 2, 3), {}, now) and first.close()
        second = FreshCopy(integration, session, "item")
        refused = not (second.add(page(7, 8), {}, now) and second.add(page(9, 2, value="again"), {}, now) and second.close())
        assert refused and not second.is_open
        assert sorted(records.values_list("external_id", flat=True)) == ["item-0000001", "item-0000002", "item-0000003"]
        assert records.get(external_id="item-0000002").data == {"n": 2}
    assert records.count() == 3


@pytest.mark.django_db
def test_an_abandoned_copy_leaves_its_transaction_to_roll_back():
    integration = IntegrationFactory()
    session = SyncSessionFactory(integration=integration, state=SyncSession.State.RUNNING)
    with pytest.raises(RuntimeError), transaction.atomic():
        copy = FreshCopy(integration, session, "item")
        copy.add(page(1, 2), {}, timezone.now())
        try:
            raise RuntimeError("the page after failed")
        except RuntimeError as exc:
            copy.abandon(exc)
            raise
    assert not SyncedRecord.objects.filter(integration=integration).exists()
    assert SyncedRecord.objects.count() == 0  # the connection is usable again


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("batch_pages", [1, 20])
def test_a_first_sync_whose_vendor_repeats_an_id_on_the_next_page(make_integration, sync, settings, batch_pages):
    """Item 44 of the warnings scenario comes twice, last on page 1 and first on page 2 (in one transaction or two)."""
    settings.SYNC_BATCH_PAGES = batch_pages
    integration = make_integration("warnings", page_size=44)
    session = sync(integration)
    records = SyncedRecord.objects.filter(integration=integration)
    assert records.count() == session.items_created == session.items_total - 1  # 121 rows, 120 items
    assert records.values("external_id").distinct().count() == records.count()
    duplicate = SyncIssue.objects.get(integration=integration, error_code_id="ITEM_DUPLICATE")
    assert duplicate.external_id == "item-0000044"
    assert duplicate.record_id == records.get(external_id="item-0000044").pk
    assert session.items_seen == session.items_total
    assert any("read back before" in entry["message"] for entry in session.log)


@pytest.mark.django_db
def test_a_statement_while_the_copy_is_open_fails_instead_of_waiting_forever():
    """psycopg holds the connection's lock during a COPY: the guard ends the COPY before the statement runs."""
    from django.db import DatabaseError

    integration = IntegrationFactory()
    session = SyncSessionFactory(integration=integration, state=SyncSession.State.RUNNING)
    with pytest.raises(DatabaseError), transaction.atomic():
        copy = FreshCopy(integration, session, "item")
        assert copy.add(page(1, 2), {}, timezone.now()) and copy.is_open
        # Without the guard the next line would wait forever: fail before it instead.
        assert copy._guard in connection.execute_wrappers
        SyncedRecord.objects.count()  # the transaction was aborted with the COPY: this statement fails
    assert not copy.is_open and copy._guard not in connection.execute_wrappers
    assert not SyncedRecord.objects.filter(integration=integration).exists()
