"""The open-issue count each integration keeps (`Integration.open_issue_count`).

Whoever opens, resolves or ignores issues keeps the count in the same
transaction, in this order:

1. `lock` the integration rows (ordered by id), before touching any issue, so
   a sync's page, the finish of its session and a person's resolve of the
   same integration queue up behind one another instead of deadlocking;
2. change the issues;
3. `move` the count by the number of rows that actually changed (what
   `bulk_create` inserted, what `.update()` returned), with an F() update.

The count is never read and written back, so two writers each add their own
change. `integrations.counters.reconcile` repairs any drift hourly.

The integration model is reached through the foreign key: this app does not
import `integrations` (which imports it).
"""

from django.db.models import F, Value
from django.db.models.functions import Greatest

from issues.models import SyncIssue


def _integrations():
    return SyncIssue._meta.get_field("integration").related_model.objects


def lock(integration_ids):
    """Lock these integration rows until the transaction ends (callers hold one)."""
    ids = sorted(set(integration_ids))
    if ids:
        rows = _integrations().select_for_update().filter(pk__in=ids).order_by("pk")
        list(rows.values_list("pk", flat=True))


def move(integration_id, n):
    """Add `n` (negative: subtract) to the integration's open-issue count.

    A count that drifted below the truth stops at zero rather than failing
    the writer; the reconciliation puts it right.
    """
    if n > 0:
        _integrations().filter(pk=integration_id).update(open_issue_count=F("open_issue_count") + n)
    elif n < 0:
        _integrations().filter(pk=integration_id).update(
            open_issue_count=Greatest(F("open_issue_count") - Value(-n), Value(0))
        )
