"""Problems that come back after they were resolved open a new issue.

The resolved issue is history: it keeps its occurrences, its sessions and
its resolution; the problem's return is a new open issue with its own first
session. Holds for item issues (written in bulk per page) and for the
session-level issue of a failed sync. These tests run on SQLite and on
PostgreSQL (the second CI pass), since the lookups are the ones the
conditional unique constraint depends on.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from issues.models import SyncIssue
from issues.recording import IssueRecorder, ProblemRow, record_session_failure, resolve_session_issues
from tests.factories import IntegrationFactory, SyncSessionFactory

Open, Resolved = SyncIssue.State.OPEN, SyncIssue.State.RESOLVED
pytestmark = pytest.mark.django_db


def sessions(integration, count):
    return [SyncSessionFactory(integration=integration, state="succeeded") for _ in range(count)]


def test_an_item_problem_that_comes_back_opens_a_new_issue(error_catalog):
    integration = IntegrationFactory()
    first, clean, again, repeat = sessions(integration, 4)
    missing = ProblemRow("item-0000007", "ITEM_MISSING_FIELD", "Required field 'name' is missing.", "Ada")
    start = timezone.now()

    IssueRecorder(integration, first, "item").record_page([missing], [], start)
    IssueRecorder(integration, clean, "item").record_page([], ["item-0000007"], start + timedelta(hours=1))
    recorder = IssueRecorder(integration, again, "item")
    recorder.record_page([missing], [], start + timedelta(hours=2))

    old, new = SyncIssue.objects.filter(integration=integration).order_by("pk")
    assert (old.state, old.occurrences, old.first_session_id, old.last_session_id) == (Resolved, 1, first.pk, first.pk)
    assert old.resolved_at == start + timedelta(hours=1)
    assert old.last_seen_at == start
    assert (new.state, new.occurrences, new.first_session_id, new.last_session_id) == (Open, 1, again.pk, again.pk)
    assert (new.external_id, new.error_code_id) == ("item-0000007", "ITEM_MISSING_FIELD")
    assert new.first_seen_at == start + timedelta(hours=2)
    assert (recorder.opened, recorder.repeated) == (1, 0)
    assert recorder.opened_ids == {"item-0000007"}

    # The next repeat counts on the new issue only.
    IssueRecorder(integration, repeat, "item").record_page([missing], [], start + timedelta(hours=3))
    old.refresh_from_db()
    new.refresh_from_db()
    assert (old.state, old.occurrences) == (Resolved, 1)
    assert (new.state, new.occurrences, new.last_session_id) == (Open, 2, repeat.pk)


def test_an_ignored_item_issue_stays_ignored_when_the_problem_repeats(error_catalog):
    """Ignored is a person's decision about that problem: a repeat opens a new issue, the ignored one is left as it was."""
    integration = IntegrationFactory()
    first, again = sessions(integration, 2)
    missing = ProblemRow("item-0000008", "ITEM_MISSING_FIELD", "Required field 'name' is missing.")
    IssueRecorder(integration, first, "item").record_page([missing], [], timezone.now())
    SyncIssue.objects.filter(integration=integration).update(state=SyncIssue.State.IGNORED)

    IssueRecorder(integration, again, "item").record_page([missing], [], timezone.now())

    states = list(SyncIssue.objects.filter(integration=integration).order_by("pk").values_list("state", "occurrences"))
    assert states == [(SyncIssue.State.IGNORED, 1), (Open, 1)]


def test_a_session_failure_that_comes_back_opens_a_new_issue(error_catalog):
    integration = IntegrationFactory()
    failed, succeeded, failed_again, failed_once_more = sessions(integration, 4)
    start = timezone.now()

    record_session_failure(integration, failed, "VENDOR_UNAVAILABLE", "The vendor answered 503.", start)
    assert resolve_session_issues(integration, start + timedelta(hours=1)) == 1
    record_session_failure(integration, failed_again, "VENDOR_UNAVAILABLE", "The vendor answered 502.", start + timedelta(hours=2))

    old, new = SyncIssue.objects.filter(integration=integration, external_id="").order_by("pk")
    assert (old.state, old.occurrences, old.last_session_id, old.message) == (
        Resolved,
        1,
        failed.pk,
        "The vendor answered 503.",
    )
    assert (new.state, new.occurrences, new.first_session_id, new.message) == (
        Open,
        1,
        failed_again.pk,
        "The vendor answered 502.",
    )

    record_session_failure(integration, failed_once_more, "VENDOR_UNAVAILABLE", "Still 502.", start + timedelta(hours=3))
    old.refresh_from_db()
    new.refresh_from_db()
    assert (old.occurrences, old.message) == (1, "The vendor answered 503.")
    assert (new.occurrences, new.last_session_id, new.message) == (2, failed_once_more.pk, "Still 502.")
    assert SyncIssue.objects.filter(integration=integration, state=Open).count() == 1
