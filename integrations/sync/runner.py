"""Running one session: claim it, hold the lease, write the pages, finish.

The task that runs a session only acts on a session still queued (the claim
is a conditional UPDATE). The vendor's pages are read ahead in a thread of
their own (`prefetch.PageFeed`) while this thread writes; this thread alone
touches the database. Pages already read are written together, a few per
transaction (SYNC_BATCH_PAGES, SYNC_BATCH_SECONDS), and every transaction
extends the lease with a conditional UPDATE on (state=running, worker=me): if
the reaper has given up on the session meanwhile, that transaction's pages
are rolled back and the run stops without finishing anything. What earlier
transactions wrote stays, and so do the counters they wrote. How a page is
stored is page_writing.py's.
"""

import logging
import os
import socket
import time
import traceback
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F
from django.utils import timezone

from integrations import onboarding, services
from integrations.connectors import errors
from integrations.connectors.base import get_connector_class
from integrations.connectors.http import VendorHttp
from integrations.models import SyncSession
from integrations.sync import telemetry
from integrations.sync import fingerprints
from integrations.sync.collector import fewer_collections
from integrations.sync.finishing import SessionLog, finish_session
from integrations.sync.prefetch import FeedTimedOut, PageFeed
from integrations.sync.pages import new_account_issue_id, read_pages
from integrations.sync.fresh_copy import FreshCopy
from integrations.sync.page_writing import PageWriting
from integrations.sync.starting import PERSON_TRIGGERS, enqueue_session
from issues.recording import IssueRecorder, ProblemRow
from syncconsole import logs

logger = logging.getLogger(__name__)


class LeaseLost(Exception):
    """The session is no longer ours (reaped, or finished elsewhere)."""


class SessionTimedOut(Exception):
    pass


def worker_name():
    return f"{socket.gethostname()}:{os.getpid()}"


def claim(session_id, worker, now):
    """Make the queued session running and ours; 1 if it was claimed, 0 if not.

    Not claimed: it is not queued any more, or its connector already has
    SYNC_MAX_RUNNING_PER_CONNECTOR running sessions. The cap is checked in
    the same UPDATE, and claims of one connector take turns: on PostgreSQL
    under a transaction-scoped advisory lock named for the connector (the
    UPDATE's snapshot then sees every claim committed before), on SQLite
    because writes are serialised anyway. So two workers claiming at the
    same instant cannot both pass the cap.
    """
    lease = timedelta(seconds=settings.SYNC_LEASE_SECONDS)
    queued = SyncSession.objects.filter(pk=session_id, state=SyncSession.State.QUEUED)
    cap = settings.SYNC_MAX_RUNNING_PER_CONNECTOR
    claiming = {"state": SyncSession.State.RUNNING, "started_at": now, "heartbeat_at": now,
                "lease_expires_at": now + lease, "worker": worker}
    if cap <= 0:
        return queued.update(**claiming)
    connector = queued.values_list("integration__connector", flat=True).first()
    if connector is None:
        return 0
    running = SyncSession.objects.filter(state=SyncSession.State.RUNNING, integration__connector=connector)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"sync-claim:{connector}"])
        return queued.filter(~Exists(running.order_by()[cap - 1 : cap])).update(**claiming)  # fewer than `cap` running


def put_back(session_id, trigger, *, fell_back=False):
    """Queue a session's task again, at the end of its cluster's queue, after a short pause.

    Its cluster: the urgent one for a person's sync unless it fell back to the default one.

    For a session whose connector is at its cap: the worker moves on to other
    sessions instead of waiting for the connector. With the inline broker
    (Q_CLUSTER["sync"]) there is no queue to put it in: it stays queued.
    """
    time.sleep(settings.SYNC_CONNECTOR_BUSY_DELAY_SECONDS)
    if settings.Q_CLUSTER.get("sync"):
        return
    urgent = trigger in PERSON_TRIGGERS and not fell_back
    enqueue_session(session_id, urgent=urgent, save_task_id=False)


def run_session(session_id, *, worker=None):
    """Run a queued session to its end. Returns the finished session, or None if it was not ours."""
    worker = worker or worker_name()
    if not claim(session_id, worker, timezone.now()):
        still_queued = SyncSession.objects.filter(pk=session_id, state=SyncSession.State.QUEUED).values_list(
            "trigger", "fell_back"
        )
        if settings.SYNC_MAX_RUNNING_PER_CONNECTOR > 0 and (row := still_queued.first()) is not None:
            logger.info("session %s: its connector is at its cap of running sessions; put back", session_id)
            put_back(session_id, row[0], fell_back=row[1])
            return None
        logger.info("session %s is not queued any more; nothing to do", session_id)
        return None
    session = SyncSession.objects.select_related("integration", "integration__tenant").get(pk=session_id)
    with (
        logs.context(tenant=session.integration.tenant_id, integration=session.integration_id, session=session.pk),
        fewer_collections(),
    ):
        telemetry.log_started(session, worker)
        return run_claimed(session, worker)


def run_claimed(session, worker):
    """Run the session this worker claimed, or cancel it if its integration went away while it was queued."""
    integration = session.integration
    if integration.deleted_at or integration.deactivated_at or integration.credentials_revoked_at:
        # Queued before someone deleted, deactivated or revoked it: do not
        # call the vendor on its behalf any more.
        return finish_session(
            session.pk,
            state=SyncSession.State.CANCELLED,
            message=f"Cancelled: the integration became {integration.get_status_display().lower()} while the sync was queued.",
            worker=worker,
        )
    return SessionRun(session, worker).run()


class SessionRun(PageWriting):
    def __init__(self, session, worker):
        self.session = session
        self.integration = session.integration
        self.worker = worker
        self.counters = dict.fromkeys(SyncSession.COUNTERS, 0)
        self.items_total = None
        self.log = SessionLog(settings.SESSION_LOG_MAX_ENTRIES)
        self.deadline = time.monotonic() + settings.SYNC_SESSION_TIMEOUT_SECONDS
        self.problem_items = 0
        # Set once the run has them; a run that fails before has none.
        self.connector = None
        self.mappings = {}
        self.recorder = None
        self.held_accounts = set()
        self.held_items = 0
        self.fresh_copy = None  # a FreshCopy while the item type had no record when the run began (PostgreSQL)
        self.streamed = []  # (ReadPage, now, PageResult) written into the open FreshCopy, to settle once it is closed
        self.fingerprints = None  # fingerprints.PageFingerprints of a full sync
        self.last_heartbeat = time.monotonic()

    def run(self):
        """Run to an outcome: whatever happens inside, the session is finished, never left to the reaper.

        Only a lost lease (the session is someone else's now) stops without
        finishing. The page feed's thread has ended before either.
        """
        integration = self.integration
        feed = PageFeed(depth=settings.SYNC_PREFETCH_PAGES, name=f"page-feed-{self.session.pk}")
        http = VendorHttp.for_integration(integration, sleep=feed.sleep)
        full = self.session.kind == SyncSession.Kind.FULL or not integration.sync_cursor
        if full and self.session.kind != SyncSession.Kind.FULL:
            self.log.add("info", "No cursor from an earlier sync: reading everything.")
        try:
            connector_class = get_connector_class(integration.connector)
            connector = connector_class(integration.settings, integration.get_credentials(), http)
            # Called from the feed thread too: the save runs in this thread.
            connector.save_credentials = partial(feed.call, self.save_rotated_credentials)
            self.connector = connector
            self.recorder = IssueRecorder(integration, self.session, connector.item_type)
            self.mappings = self.load_mappings(connector, full=full)
            # Nothing stored yet: pages need not be read back before they are written (fresh_copy.py).
            if connection.vendor == "postgresql" and not integration.records.filter(item_type=connector.item_type).exists():
                self.fresh_copy = FreshCopy(integration, self.session, connector.item_type)
            self.fingerprints = fingerprints.start(
                integration, connector, full=full, mappings=self.mappings, held_accounts=self.held_accounts
            )
            self.log.add("info", f"{'Full' if full else 'Quick'} sync started by {self.worker}.")
            read = partial(
                read_pages,
                connector,
                full=full,
                cursor=integration.sync_cursor,
                mappings=self.mappings,
                held_accounts=self.held_accounts,
            )
            with feed.start(read):
                self.write_pages(feed, full=full, http=http)
            self.take_notes(connector)
            if self.held_items:
                self.log.add("warning", f"{self.held_items} item(s) of new vendor account(s) wait for the mapping.")
            state = SyncSession.State.WARNINGS if self.problem_items else SyncSession.State.SUCCEEDED
            self.mark_source_items(connector)
            return self.finish(state, "", "", http, cursor=connector.next_cursor, full=full)
        except LeaseLost:
            logger.warning("session %s lost its lease; stopping without finishing", self.session.pk)
            return None
        except SessionTimedOut:
            return self.finish(
                SyncSession.State.UNKNOWN,
                "SYNC_TIMEOUT",
                f"The session ran longer than {settings.SYNC_SESSION_TIMEOUT_SECONDS} s and was stopped.",
                http,
            )
        except errors.ConnectorError as exc:
            self.log.add("error", f"{exc.code}: {exc.message}")
            return self.finish(SyncSession.State.FAILED, exc.code, exc.message, http)
        except Exception as exc:  # our own bug: say so, never leave the session running
            logger.exception("session %s failed with an internal error", self.session.pk)
            message = f"{type(exc).__name__}: {exc}"[:2000]
            self.log.add("error", f"INTERNAL_ERROR: {message}", traceback=traceback.format_exc(limit=20)[-4000:])
            return self.finish(SyncSession.State.FAILED, "INTERNAL_ERROR", message, http)
        finally:
            feed.close()
            http.close()

    def write_pages(self, feed, *, full, http):
        """Write what the feed hands over until the vendor has no more pages.

        Waiting for the next page happens between transactions, never inside
        one; so does whatever the feed thread asked of this one.
        """
        while True:
            try:
                got = feed.get(until=self.deadline)
            except FeedTimedOut:
                raise SessionTimedOut() from None
            if got is None:
                return
            if time.monotonic() > self.deadline:
                self.log_notes(got.notes)
                raise SessionTimedOut()
            self.write_batch(got, feed, full=full, http=http)

    def write_batch(self, got, feed, *, full, http):
        """Store the page in hand and the pages already read after it, in one transaction that extends the lease.

        At most SYNC_BATCH_PAGES pages, and no new page once SYNC_BATCH_SECONDS
        have passed: the transaction never waits for the vendor. If anything
        fails inside, the transaction's pages are rolled back and the run's
        counters go back to what the last committed transaction wrote.
        """
        got = self.skip_unchanged(got, feed)
        if got is None:  # nothing to write: only the lease and the counters, now and then
            if time.monotonic() - self.last_heartbeat >= settings.SYNC_BATCH_SECONDS:
                with transaction.atomic():
                    self._take_http_counters(http)
                    self.heartbeat(timezone.now())
            return
        started = time.monotonic()
        committed = self.progress()
        try:
            with transaction.atomic():
                if self.fingerprints is not None:
                    self.fingerprints.flush()
                pages = 0
                try:
                    while got is not None:
                        self.log_notes(got.notes)
                        self.write(got, full=full)
                        pages += 1
                        now = time.monotonic()
                        if (
                            pages >= settings.SYNC_BATCH_PAGES
                            or now - started >= settings.SYNC_BATCH_SECONDS
                            or now > self.deadline
                        ):
                            break
                        got = feed.ready()
                    self.close_fresh_copy(full=full)
                except BaseException as exc:
                    self.streamed = []
                    if self.fresh_copy is not None:
                        self.fresh_copy.abandon(exc)
                    raise
                self._take_http_counters(http)
                self.heartbeat(timezone.now())
        except BaseException:
            self.restore(committed)
            raise

    def progress(self):
        """What the run has counted and recorded so far, to go back to if a transaction rolls back."""
        recorder = {
            name: set(value) if isinstance(value, set) else value for name, value in vars(self.recorder).items()
        }
        return dict(self.counters), self.items_total, self.problem_items, self.held_items, recorder

    def restore(self, progress):
        counters, self.items_total, self.problem_items, self.held_items, recorder = progress
        self.counters.update(counters)
        vars(self.recorder).update(recorder)

    def take_notes(self, connector):
        """What the connector decided on its own (a refused sync token, a full read instead) goes in the session log."""
        while connector.notes:
            level, message = connector.notes.pop(0)
            self.log.add(level, message)

    def log_notes(self, notes):
        for level, message in notes:
            self.log.add(level, message)

    def save_rotated_credentials(self, credentials):
        """Store a credential the vendor just rotated, before anything else, under the session's row lock.

        The reaper and the finish take the same lock, so the save does not
        interleave with them (`services.store_rotated_credentials` says why
        it cannot wait). A rotation met while reading pages is handed to this
        thread, which saves it in a transaction of its own before the next
        pages; the feed thread reads nothing more until it is saved.
        """
        with transaction.atomic():
            SyncSession.objects.select_for_update().filter(pk=self.session.pk).first()
            saved = services.store_rotated_credentials(self.integration, credentials)
        if saved:
            self.log.add("info", "The vendor rotated the refresh token; the new one is saved.")
        else:
            self.log.add("warning", "The vendor rotated a credential, but newer credentials were saved meanwhile; they were kept.")

    def mark_source_items(self, connector):
        """Let the connector flag items with problems at the vendor, and unflag fixed ones."""
        if not (connector.supports_marking and self.integration.settings.get("mark_source_items")):
            return
        recorder = self.recorder
        unmark = recorder.resolved_ids - recorder.still_open(recorder.resolved_ids)
        try:
            connector.mark_items(mark=set(recorder.problem_ids), unmark=unmark, log=self.log)
        except errors.ConnectorError as exc:
            # The sync itself completed; marking is best effort and said so.
            self.log.add("error", f"Marking items at the vendor stopped: {exc.code}: {exc.message}")

    def load_mappings(self, connector, *, full):
        """The account mapping, with the vendor accounts a full sync finds that appeared after setup.

        A connector that needs no mapping maps what the vendor lists on first
        use. Later, a full sync asks the vendor again: new accounts are mapped
        automatically when the tenant chose so and the integration is not
        mapped by hand; otherwise each becomes one NEW_VENDOR_ACCOUNT issue
        and its items are held (see `classify`) until a person maps or
        ignores it.
        """
        integration = self.integration
        mappings = {m.vendor_account_id: m for m in integration.account_mappings.all()}
        by_hand = connector.requires_mapping(integration.settings)
        if not mappings and not by_hand:
            onboarding.record_accounts(integration, connector.discover_accounts())
            onboarding.auto_map(integration)
            mappings = {m.vendor_account_id: m for m in integration.account_mappings.all()}
            self.log.add("info", f"Discovered {len(mappings)} vendor account(s) and mapped them.")
            return mappings
        if full and mappings:
            found = [a for a in connector.discover_accounts() if a.id not in mappings]
            if found:
                mappings.update(self.take_new_accounts(found, automatic=not by_hand and integration.tenant.new_vendor_accounts == "map"))
        self.settle_new_account_issues(mappings)
        return mappings

    def take_new_accounts(self, accounts, *, automatic):
        integration, now = self.integration, timezone.now()
        names = ", ".join(a.name or a.id for a in accounts[:5]) + (" ..." if len(accounts) > 5 else "")
        with transaction.atomic():
            onboarding.record_accounts(integration, accounts)
            rows = integration.account_mappings.filter(vendor_account_id__in=[a.id for a in accounts])
            if automatic:
                rows.filter(tenant_account="", ignored=False).update(tenant_account=F("vendor_account_id"))
                self.log.add("info", f"Found {len(accounts)} new vendor account(s) and mapped them automatically: {names}.")
            else:
                self.log.add("warning", f"Found {len(accounts)} new vendor account(s) to map: {names}. Their items wait for the mapping.")
                self.recorder.record_page(
                    [
                        ProblemRow(
                            new_account_issue_id(a.id),
                            "NEW_VENDOR_ACCOUNT",
                            f"New vendor account found: {a.name or a.id}. Map it or ignore it on the mapping page.",
                            a.name or a.id,
                            "",
                            {"vendor_account_id": a.id},
                        )
                        for a in accounts
                    ],
                    [],
                    now,
                )
            return {m.vendor_account_id: m for m in rows}

    def settle_new_account_issues(self, mappings):
        """A NEW_VENDOR_ACCOUNT issue ends once its account is mapped or ignored; its items are held until then."""
        pending = {
            m.vendor_account_id
            for m in mappings.values()
            if not m.is_mapped and self.integration.first_sync_finished_at and m.discovered_at > self.integration.first_sync_finished_at
        }
        self.held_accounts = pending
        settled = [new_account_issue_id(i) for i, m in mappings.items() if m.is_mapped and i not in pending]
        if settled:
            with transaction.atomic():
                self.recorder.record_page([], settled, timezone.now())

    def finish(self, state, code, message, http, *, cursor=None, full=False):
        if self.connector is not None:
            self.take_notes(self.connector)  # a run that failed keeps what was noted before
        self._take_http_counters(http)
        recorder = self.recorder
        if full and recorder is not None and state in (SyncSession.State.SUCCEEDED, SyncSession.State.WARNINGS):
            recorder.resolve_unseen_duplicates(timezone.now())
        return finish_session(
            self.session.pk,
            state=state,
            code=code,
            message=message,
            worker=self.worker,
            counters=self.counters,
            items_total=self.items_total,
            log=self.log,
            cursor=cursor,
            full_complete=full and state in (SyncSession.State.SUCCEEDED, SyncSession.State.WARNINGS),
            item_type=self.connector.item_type if self.connector is not None else "item",
            issues_opened=recorder.opened_ids if recorder is not None else (),
            issues_resolved=recorder.resolved_ids if recorder is not None else (),
            fingerprints=self.fingerprints,
        )

    def _take_http_counters(self, http):
        self.counters["http_requests"] = http.counters.http_requests
        self.counters["retries"] = http.counters.retries
        self.counters["rate_limited_waits"] = http.counters.rate_limited_waits

    def heartbeat(self, now):
        self.last_heartbeat = time.monotonic()
        lease = timedelta(seconds=settings.SYNC_LEASE_SECONDS)
        updated = SyncSession.objects.filter(
            pk=self.session.pk, state=SyncSession.State.RUNNING, worker=self.worker
        ).update(heartbeat_at=now, lease_expires_at=now + lease, items_total=self.items_total, **self.counters)
        if not updated:
            raise LeaseLost()
