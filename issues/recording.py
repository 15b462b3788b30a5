"""Recording sync issues in bulk: upsert a page's problems, resolve what synced cleanly.

An issue is identified by (integration, item type, external id, code) while
open; the database holds that with a conditional unique constraint. A repeat
raises `occurrences` and `last_seen_at`; an item that later syncs without a
problem resolves its open issues. Only one session of an integration runs at a
time (another constraint), so these read-then-write steps do not race.

Every change of open issues keeps the integration's open-issue count in the
same transaction (`issues.counts`): the integration row is locked first, the
count moves by the rows actually inserted or resolved.
"""

from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import F, Q

from issues import counts
from issues.models import ErrorCode, SyncIssue

DUPLICATE = "ITEM_DUPLICATE"

ITEM_SOURCES = {
    ErrorCode.Category.MAPPING: SyncIssue.Source.MAPPING,
    ErrorCode.Category.DATA: SyncIssue.Source.VENDOR,
    ErrorCode.Category.AUTH: SyncIssue.Source.VENDOR,
    ErrorCode.Category.VENDOR: SyncIssue.Source.VENDOR,
    ErrorCode.Category.ENGINE: SyncIssue.Source.ENGINE,
    ErrorCode.Category.CONFIGURATION: SyncIssue.Source.PLATFORM,
}


@dataclass
class ProblemRow:
    """One problem of one item in the page being written."""

    external_id: str
    code: str
    message: str
    label: str = ""
    vendor_url: str = ""
    details: dict = field(default_factory=dict)
    record_id: int | None = None


def safe_url(url):
    """Only http(s) URLs from vendor data are kept (never javascript: or data:)."""
    url = (url or "").strip()
    return url[:500] if url.lower().startswith(("http://", "https://")) else ""


def _catalog():
    return {code.code: code for code in ErrorCode.objects.all()}


class IssueRecorder:
    """Per-session issue bookkeeping; keeps the catalog and a few flags, not the items."""

    def __init__(self, integration, session, item_type):
        self.integration = integration
        self.session = session
        self.item_type = item_type
        self.catalog = _catalog()
        # Skip the resolve query on every page when nothing could be resolved.
        self.had_open_item_issues = SyncIssue.objects.filter(
            integration=integration, state=SyncIssue.State.OPEN
        ).exclude(external_id="").exists()
        self.opened = 0
        self.repeated = 0
        self.resolved = 0
        # External ids with a problem / with issues resolved in this
        # session: what a connector marks and unmarks at the source.
        self.problem_ids = set()
        self.opened_ids = set()
        self.resolved_ids = set()

    def record_page(self, problems, clean_ids, now):
        """Upsert the page's problems; resolve open issues of its clean items.

        For an item with problems, its open issues of other codes are resolved
        too (the old problem was fixed, a new one appeared). Runs inside the
        caller's transaction (the page's), which the count's change joins.
        """
        if not problems and not self.had_open_item_issues:
            return
        counts.lock([self.integration.pk])
        before = self.opened - self.resolved
        if problems:
            self._upsert(problems, now)
            self.problem_ids.update(p.external_id for p in problems)
        if self.had_open_item_issues:
            self._resolve_clean(clean_ids, problems, now)
        counts.move(self.integration.pk, self.opened - self.resolved - before)

    def _upsert(self, problems, now):
        merged = {}
        for p in problems:
            key = (p.external_id, p.code)
            if key in merged:
                merged[key].message = f"{merged[key].message} {p.message}"
                continue
            merged[key] = p
        existing = {
            (issue.external_id, issue.error_code_id): issue
            for issue in SyncIssue.objects.filter(
                integration=self.integration,
                item_type=self.item_type,
                external_id__in={p.external_id for p in merged.values()},
                state=SyncIssue.State.OPEN,
            ).only("id", "external_id", "error_code_id", "occurrences", "last_session_id")
        }
        new, repeat_ids = [], []
        for key, p in merged.items():
            issue = existing.get(key)
            if issue is not None:
                if issue.last_session_id != self.session.pk:
                    repeat_ids.append(issue.pk)
                continue
            code = self.catalog[p.code]
            new.append(
                SyncIssue(
                    tenant_id=self.integration.tenant_id,
                    integration=self.integration,
                    first_session=self.session,
                    last_session=self.session,
                    error_code=code,
                    severity=code.default_severity,
                    source=ITEM_SOURCES[code.category],
                    item_type=self.item_type,
                    external_id=p.external_id,
                    item_label=p.label[:300],
                    vendor_url=safe_url(p.vendor_url),
                    record_id=p.record_id,
                    message=p.message,
                    details=p.details,
                    first_seen_at=now,
                    last_seen_at=now,
                )
            )
        if new:
            SyncIssue.objects.bulk_create(new)
            self.opened += len(new)
            self.opened_ids.update(issue.external_id for issue in new)
        if repeat_ids:
            SyncIssue.objects.filter(pk__in=repeat_ids).update(
                occurrences=F("occurrences") + 1, last_seen_at=now, last_session=self.session
            )
            self.repeated += len(repeat_ids)

    def _resolve_clean(self, clean_ids, problems, now):
        condition = Q(external_id__in=clean_ids) if clean_ids else Q(pk__in=[])
        for external_id, codes in _codes_by_item(problems).items():
            condition |= Q(external_id=external_id) & ~Q(error_code__in=codes)
        to_resolve = SyncIssue.objects.filter(
            condition,
            integration=self.integration,
            item_type=self.item_type,
            state=SyncIssue.State.OPEN,
        ).exclude(
            # A clean first copy says nothing of a second copy on a later
            # page: duplicates are settled when the full sync completes.
            error_code=DUPLICATE
        )
        self._resolve(to_resolve, now, "The item synced cleanly.")

    def _resolve(self, queryset, now, note):
        rows = list(queryset.values_list("pk", "external_id"))
        if rows:
            self.resolved += SyncIssue.objects.filter(pk__in=[pk for pk, _ in rows], state=SyncIssue.State.OPEN).update(
                state=SyncIssue.State.RESOLVED, resolved_at=now, resolution_note=note
            )
            self.resolved_ids.update(external_id for _, external_id in rows)

    def resolve_unseen_duplicates(self, now):
        """After a complete full sync: duplicates this session did not meet again are gone."""
        unseen = SyncIssue.objects.filter(
            integration=self.integration, item_type=self.item_type, state=SyncIssue.State.OPEN, error_code=DUPLICATE
        ).exclude(last_session=self.session)
        with transaction.atomic():
            counts.lock([self.integration.pk])
            before = self.resolved
            self._resolve(unseen, now, "The vendor no longer sends it twice.")
            counts.move(self.integration.pk, before - self.resolved)

    def still_open(self, external_ids):
        """Of these items, the ones that still have an open issue."""
        if not external_ids:
            return set()
        return set(
            SyncIssue.objects.filter(
                integration=self.integration,
                item_type=self.item_type,
                external_id__in=list(external_ids),
                state=SyncIssue.State.OPEN,
            ).values_list("external_id", flat=True)
        )


def _codes_by_item(problems):
    codes = {}
    for p in problems:
        codes.setdefault(p.external_id, set()).add(p.code)
    return codes


def record_session_failure(integration, session, code, message, now):
    """Open (or repeat) the session-level issue for a failed or unknown session.

    The caller holds the integration row locked in its transaction (`finish_session`).
    """
    error_code = ErrorCode.objects.get(pk=code)
    updated = SyncIssue.objects.filter(
        integration=integration, item_type="", external_id="", error_code=error_code, state=SyncIssue.State.OPEN
    ).update(occurrences=F("occurrences") + 1, last_seen_at=now, last_session=session, message=message)
    if not updated:
        SyncIssue.objects.create(
            tenant_id=integration.tenant_id,
            integration=integration,
            first_session=session,
            last_session=session,
            error_code=error_code,
            severity=error_code.default_severity,
            source=ITEM_SOURCES[error_code.category],
            item_label=f"Sync session {session.pk}",
            message=message,
            first_seen_at=now,
            last_seen_at=now,
        )
        counts.move(integration.pk, 1)


def resolve_session_issues(integration, now):
    """A session that completed resolves the open session-level issues.

    The caller holds the integration row locked in its transaction (`finish_session`).
    """
    resolved = SyncIssue.objects.filter(
        integration=integration, item_type="", external_id="", state=SyncIssue.State.OPEN
    ).update(state=SyncIssue.State.RESOLVED, resolved_at=now, resolution_note="A later sync completed.")
    counts.move(integration.pk, -resolved)
    return resolved


def has_open_item_issues(integration):
    return SyncIssue.objects.filter(integration=integration, state=SyncIssue.State.OPEN).exclude(external_id="").exists()
