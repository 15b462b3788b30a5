"""Storing the pages a session reads: written, then their issues, fingerprints and counts (`settle`).

A mixin of runner.SessionRun, which holds the run's state (integration,
session, connector, recorder, fingerprints, counters) and its transactions:
everything here runs inside the transaction of a batch of pages.

The first sync of an item type on PostgreSQL streams its pages into one
COPY (fresh_copy.py) and settles them once the COPY is closed, before any
other statement of the transaction; every other page is written the usual
way (records.write_page), which reads the page's stored rows first.
"""

from django.db import reset_queries
from django.utils import timezone

from integrations.sync.pages import item_problems, mark_duplicates
from integrations.sync.records import PageResult, record_ids, split_duplicates, write_page


class PageWriting:
    def skip_unchanged(self, got, feed):
        """Count the pages the connector skipped as unchanged (no query); the first page to write, or None."""
        while got is not None and got.page.skipped_rows is not None:
            self.log_notes(got.notes)
            self._count_page(got.page, PageResult(unchanged=self.fingerprints.skip(self.session, got.page)), [])
            got = feed.ready()
        return got

    def write(self, read, *, full):
        """Store one page (a ReadPage) and record its issues, inside the caller's transaction."""
        # With DEBUG on, Django keeps every query's SQL: a long sync would
        # grow with the item count.
        reset_queries()
        now = timezone.now()
        page = read.page
        if page.skipped_rows is not None:  # the same as the last complete full sync: nothing to read or write
            self._count_page(page, PageResult(unchanged=self.fingerprints.skip(self.session, page)), [])
            return
        if self.fresh_copy is not None and not (self.fingerprints is not None and self.fingerprints.pending):
            by_id, duplicates = split_duplicates(read.sorted.to_store)
            if self.fresh_copy.add(by_id, read.contents, now):
                # Kept until the COPY closes (at most a batch of pages), without their JSON texts:
                # should the COPY be refused, writing them again works those out anew.
                read.contents = None
                self.streamed.append((read, now, PageResult(created=len(by_id), duplicates=tuple(duplicates))))
                return
            self.fresh_copy_refused(full=full)
        self.close_fresh_copy(full=full)
        self.write_read_first(read, now, full=full)

    def write_read_first(self, read, now, *, full):
        """Store a page the usual way: its stored rows read first (records.write_page)."""
        if self.fingerprints is not None:
            self.fingerprints.flush()  # the duplicate check reads the ranges of the pages skipped before
        result = write_page(
            self.integration,
            self.session,
            self.connector.item_type,
            read.sorted.to_store,
            full=full,
            now=now,
            contents=read.contents,
        )
        self.settle(read, result, now)

    def close_fresh_copy(self, *, full):
        """End the open COPY of fresh pages and settle them (before any other statement of the transaction)."""
        if self.fresh_copy is None or not self.fresh_copy.is_open:
            return
        if not self.fresh_copy.close():
            self.fresh_copy_refused(full=full)
            return
        streamed, self.streamed = self.streamed, []
        for read, now, result in streamed:
            self.settle(read, result, now)

    def fresh_copy_refused(self, *, full):
        """The database refused a row of the COPY and took it back: its pages, and the rest of the run, go the usual way."""
        self.fresh_copy = None
        streamed, self.streamed = self.streamed, []
        self.log.add(
            "info",
            "A row of these pages was stored already (an id the vendor sent again, or another run still "
            "writing): from here on, pages are read back before they are written.",
        )
        for read, now, _result in streamed:
            self.write_read_first(read, now, full=full)

    def settle(self, read, result, now):
        """A stored page's issues, fingerprint and counts."""
        page, sorted_page = read.page, read.sorted
        to_store, problems = sorted_page.to_store, list(sorted_page.unmapped)
        problem_ids = {item.external_id for item in to_store if item.problems}
        duplicate_ids = mark_duplicates(result.duplicates)
        if problem_ids or duplicate_ids:  # a clean page has no problem to list
            stored_ids = record_ids(self.integration, self.connector.item_type, problem_ids | duplicate_ids)
            problems += item_problems(to_store, stored_ids)  # duplicates are among them, with their problem set
        # Items of ignored accounts are not stored, but their old issues
        # (ITEM_UNMAPPED) are settled: someone decided about them.
        clean_ids = sorted_page.ignored_ids + [
            item.external_id for item in to_store if not item.problems and item.external_id not in duplicate_ids
        ]
        self.recorder.record_page(problems, clean_ids, now)
        if self.fingerprints is not None:
            whole = not problems and not duplicate_ids and len(to_store) == len(page.items)
            self.fingerprints.note(page, to_store, whole=whole)
        self._count_page(page, result, problems, held=sorted_page.held)

    def _count_page(self, page, result, problems, *, held=0):
        unmapped = sum(1 for p in problems if p.code == "ITEM_UNMAPPED")
        warned = len({p.external_id for p in problems if p.code != "ITEM_UNMAPPED"})
        # Held items (of a new account waiting for its mapping) make the run end with warnings.
        self.problem_items += unmapped + warned + held
        self.held_items += held
        c = self.counters
        c["pages"] += 1
        c["items_seen"] += len(page.items) if page.skipped_rows is None else page.skipped_rows
        c["items_created"] += result.created
        c["items_updated"] += result.updated
        c["items_unchanged"] += result.unchanged
        c["items_failed"] += unmapped
        c["items_warnings"] += warned
        if page.total is not None:
            self.items_total = page.total

