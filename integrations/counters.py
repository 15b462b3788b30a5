"""Reconciling the counts integrations keep with the rows they count.

`Integration.open_issue_count` is moved by whoever opens and closes issues,
in the same transaction (`issues.counts`). This finds and repairs drift: rows
changed by hand in the database, a writer of an older release during a
deploy, a bug. Scheduled hourly (`integrations.tasks.reconcile_counters`) and
run by `manage.py reconcile_counters`.
"""

import logging

from django.db.models import Count, F, OuterRef, Subquery
from django.db.models.functions import Coalesce

from integrations.models import Integration
from issues.models import SyncIssue

logger = logging.getLogger(__name__)


def actual_open_issue_count():
    """The open issues of the outer integration, counted: a subquery for `annotate()`."""
    open_issues = (
        SyncIssue.objects.filter(integration=OuterRef("pk"), state=SyncIssue.State.OPEN)
        .order_by()
        .values("integration")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(open_issues[:1]), 0)


def reconcile(batch_size=1000):
    """Recount every integration's open issues, `batch_size` integrations at a time; repair drift.

    The stored and the counted number are read in one statement, so they are
    of one snapshot: a writer's issues and its count change commit together,
    and the difference between the two is drift, never a write in flight. The
    repair is conditional on the stored number being unchanged; a count that
    moved meanwhile is left for the next run. Correct counts are not written.
    Returns how many counts were repaired.
    """
    fixed = 0
    last = 0
    while True:
        batch = Integration.objects.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)
        ids = list(batch[:batch_size])
        if not ids:
            return fixed
        last = ids[-1]
        drifted = (
            Integration.objects.filter(pk__gte=ids[0], pk__lte=last)
            .annotate(actual=actual_open_issue_count())
            .exclude(open_issue_count=F("actual"))
            .order_by("pk")
            .values_list("pk", "open_issue_count", "actual")
        )
        for pk, stored, actual in list(drifted):
            if Integration.objects.filter(pk=pk, open_issue_count=stored).update(open_issue_count=actual):
                fixed += 1
                logger.warning(
                    "open issue count of integration %s repaired: stored %s, actual %s",
                    pk,
                    stored,
                    actual,
                    extra={"integration_id": pk, "stored": stored, "actual": actual},
                )
            else:
                logger.info("open issue count of integration %s changed while checked; left for the next run", pk)
