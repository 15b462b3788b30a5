"""The page feed: pages read ahead in a thread of their own, which ends on every path and never touches the database."""

import threading
import time
from datetime import timedelta

import pytest
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from integrations.connectors import errors
from integrations.models import SyncedRecord, SyncSession
from integrations.sync.prefetch import FeedClosed, FeedTimedOut, PageFeed
from integrations.sync.reaper import reap
from integrations.sync.runner import SessionRun, run_session
from integrations.sync.starting import start_sync

State = SyncSession.State


def feed_threads():
    return [thread for thread in threading.enumerate() if thread.name.startswith("page-feed")]


@pytest.fixture
def database_threads(monkeypatch):
    """The names of the threads that asked the database for a cursor or a connection."""
    names = set()
    real_cursor, real_connect = BaseDatabaseWrapper._cursor, BaseDatabaseWrapper.ensure_connection

    def cursor(self, *args, **kwargs):
        names.add(threading.current_thread().name)
        return real_cursor(self, *args, **kwargs)

    def ensure_connection(self):
        names.add(threading.current_thread().name)
        return real_connect(self)

    monkeypatch.setattr(BaseDatabaseWrapper, "_cursor", cursor)
    monkeypatch.setattr(BaseDatabaseWrapper, "ensure_connection", ensure_connection)
    return names


# -- the feed on its own ----------------------------------------------------------------


def test_pages_come_in_order_then_none_and_the_thread_ends():
    with PageFeed(depth=2).start(lambda: iter(range(5))) as feed:
        got = [feed.get() for _ in range(6)]
    assert got == [0, 1, 2, 3, 4, None]
    assert not feed.alive


def test_an_error_comes_after_the_pages_before_it():
    def pages():
        yield "page 1"
        yield "page 2"
        raise errors.Unavailable("The vendor went away.")

    with PageFeed(depth=1).start(pages) as feed:
        assert [feed.get(), feed.get()] == ["page 1", "page 2"]
        with pytest.raises(errors.Unavailable):
            feed.get()
        with pytest.raises(errors.Unavailable):  # and stays the answer
            feed.get()
    assert not feed.alive


def test_ready_never_waits_and_leaves_the_end_to_get():
    release = threading.Event()

    def pages():
        yield 1
        release.wait(5)
        yield 2

    with PageFeed(depth=2).start(pages) as feed:
        assert feed.get() == 1
        assert feed.ready() is None  # page 2 is not read yet
        release.set()
        assert feed.get() == 2
        deadline = time.monotonic() + 5
        while feed.alive and time.monotonic() < deadline:
            time.sleep(0.01)
        assert feed.ready() is None  # the end is not a page
        assert feed.get() is None


def test_closing_stops_a_reader_blocked_on_a_full_queue_and_closes_its_iterator():
    read, closed = [], threading.Event()

    def pages():
        try:
            for n in range(1000):
                read.append(n)
                yield n
        finally:
            closed.set()

    feed = PageFeed(depth=2).start(pages)
    assert feed.get() == 0
    time.sleep(0.1)  # the reader fills the queue and waits
    feed.close()
    assert not feed.alive
    assert closed.is_set()
    assert len(read) <= 5  # it stopped reading: bounded by the queue, not by the pages


def test_closing_cuts_a_wait_of_the_http_client_short():
    woke = []

    def pages():
        yield 1
        try:
            feed.sleep(60)  # a Retry-After
        except FeedClosed:
            woke.append(True)
            raise
        yield 2

    feed = PageFeed(depth=1)
    feed.start(pages)
    assert feed.get() == 1
    time.sleep(0.05)
    started = time.monotonic()
    feed.close()
    assert time.monotonic() - started < 5
    assert not feed.alive
    assert woke == [True]


def test_get_gives_up_at_its_deadline():
    release = threading.Event()
    feed = PageFeed().start(lambda: (release.wait(5) for _ in range(1)))
    with pytest.raises(FeedTimedOut):
        feed.get(until=time.monotonic() + 0.05)
    release.set()
    feed.close()
    assert not feed.alive


def test_what_the_reader_asks_runs_in_the_engines_thread():
    engine = threading.current_thread()
    ran_in = []

    def save(value):
        ran_in.append(threading.current_thread())
        return value * 2

    def pages():
        yield feed.call(save, 21)

    feed = PageFeed()
    feed.start(pages)
    assert feed.get() == 42
    feed.close()
    assert ran_in == [engine]
    assert feed.call(save, 1) == 2  # from the engine's thread itself: a plain call


def test_what_the_reader_asked_still_runs_when_the_engine_stops_reading():
    """A rotated credential is saved even when the run ends meanwhile."""
    saved = []

    def pages():
        yield 1
        feed.call(saved.append, "rotated")
        yield 2

    feed = PageFeed(depth=1)
    feed.start(pages)
    assert feed.get() == 1
    time.sleep(0.05)
    feed.close()  # without asking for page 2
    assert saved == ["rotated"]
    assert not feed.alive


# -- the feed in a run: it ends on every path, never touching the database --------------


@pytest.mark.django_db
def test_a_run_that_succeeds_ends_its_feed(make_integration, database_threads):
    integration = make_integration("big-3000", page_size=300)
    session = start_sync(integration, kind=SyncSession.Kind.FULL, enqueue=False)

    finished = run_session(session.pk)

    assert (finished.state, finished.items_created, finished.pages) == (State.SUCCEEDED, 3000, 10)
    assert feed_threads() == []
    assert not [name for name in database_threads if name.startswith("page-feed")]


@pytest.mark.django_db
def test_a_run_whose_vendor_fails_mid_run_ends_its_feed(make_integration, database_threads):
    integration = make_integration("malformed", page_size=50)
    session = start_sync(integration, kind=SyncSession.Kind.FULL, enqueue=False)

    finished = run_session(session.pk)

    assert (finished.state, finished.error_code_id, finished.pages) == (State.FAILED, "VENDOR_BAD_RESPONSE", 1)
    assert SyncedRecord.objects.filter(integration=integration).count() == 50
    assert feed_threads() == []
    assert not [name for name in database_threads if name.startswith("page-feed")]


@pytest.mark.django_db
def test_a_run_that_loses_its_lease_ends_its_feed_and_stops_reading(
    make_integration, vendor_simulator, database_threads, monkeypatch, settings
):
    settings.SYNC_BATCH_PAGES = 1
    integration = make_integration("big-5000", page_size=100)
    account = integration.settings["account"]
    session = start_sync(integration, kind=SyncSession.Kind.FULL, enqueue=False)
    real_get, asked = PageFeed.get, []

    def get_after_the_reaper(feed, until=None):
        asked.append(until)
        if len(asked) == 3:
            reap(now=timezone.now() + timedelta(hours=1))
        return real_get(feed, until=until)

    monkeypatch.setattr(PageFeed, "get", get_after_the_reaper)

    assert run_session(session.pk) is None

    session.refresh_from_db()
    assert (session.state, session.error_code_id, session.pages) == (State.UNKNOWN, "SYNC_LEASE_LOST", 2)
    assert feed_threads() == []
    assert not [name for name in database_threads if name.startswith("page-feed")]
    # The reader stopped with the run: a few pages ahead at most, not the 50 of the account.
    assert vendor_simulator.stats(account)["requests"]["items"] < 15


@pytest.mark.django_db
def test_a_run_past_its_time_limit_ends_its_feed(make_integration, database_threads, monkeypatch, settings):
    settings.SYNC_BATCH_PAGES = 1
    integration = make_integration("big-3000", page_size=100)
    session = start_sync(integration, kind=SyncSession.Kind.FULL, enqueue=False)
    real_write_batch = SessionRun.write_batch

    def then_out_of_time(run, *args, **kwargs):
        real_write_batch(run, *args, **kwargs)
        run.deadline = time.monotonic()  # the first page took all the time there was

    monkeypatch.setattr(SessionRun, "write_batch", then_out_of_time)

    finished = run_session(session.pk)

    assert (finished.state, finished.error_code_id, finished.pages) == (State.UNKNOWN, "SYNC_TIMEOUT", 1)
    assert feed_threads() == []
    assert not [name for name in database_threads if name.startswith("page-feed")]
