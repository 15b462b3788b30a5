"""Reading the vendor's next page while the engine writes the current one.

A PageFeed runs the connector's page iterator in a thread of its own and
hands what it yields to the engine's thread through a bounded queue: at most
`depth` pages wait, so memory stays flat however many items. The feed thread
never touches the database. What a connector asks of the engine while it
reads (saving a credential the vendor just rotated) is handed to the
engine's thread, which runs it between two transactions, and the feed thread
waits for it. An exception of the iterator reaches the engine's thread after
the pages yielded before it.

The engine's thread always closes the feed, whatever ended the run (the end
of the pages, a vendor error, a lost lease, the time limit, a bug): closing
stops the thread at its next step (a page handed over, a wait of the HTTP
client: see `sleep`), runs what it still asked, and waits for it to end. A
request already on the wire ends within the HTTP client's own time limits.
"""

import queue
import threading
import time

_PAGE, _END, _ERROR, _CALL = "page", "end", "error", "call"

# How often a blocked side looks again whether the other one gave up.
_POLL_SECONDS = 0.1


class FeedClosed(BaseException):
    """Raised in the feed thread when the engine stopped reading: unwinds the connector's iterator.

    A BaseException, so that a connector's `except Exception` does not catch it.
    """


class FeedTimedOut(Exception):
    """`get(until=...)`: nothing came before that moment."""


class _Call:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args
        self.done = threading.Event()
        self.value = self.error = None

    def run(self):
        try:
            self.value = self.fn(*self.args)
        except BaseException as exc:  # handed back to the feed thread, raised there
            self.error = exc
        finally:
            self.done.set()

    def result(self):
        if self.error is not None:
            raise self.error
        return self.value


class PageFeed:
    """`feed.start(make_iterator)`, then `get()` / `ready()` from the engine's thread, then `close()`."""

    def __init__(self, depth=2, name="page-feed"):
        self.depth = max(1, depth)
        self.name = name
        self._queue = queue.Queue(maxsize=self.depth)
        self._stop = threading.Event()
        self._thread = None
        self._pending = None  # a message ready() took that was not a page, for get()

    # -- the engine's thread ---------------------------------------------------------

    def start(self, make_iterator):
        """Call `make_iterator()` in a new thread and hand over what the iterator yields."""
        self._thread = threading.Thread(target=self._produce, args=(make_iterator,), name=self.name, daemon=True)
        self._thread.start()
        return self

    def get(self, until=None):
        """The next thing yielded, waiting for it; None once the iterator ended.

        Raises what the iterator raised, or FeedTimedOut once `until` (a
        time.monotonic() value) passes. Runs what the feed thread asked of
        this thread meanwhile: call it outside a transaction.
        """
        while True:
            message, self._pending = self._pending or self._take(until), None
            kind, value = message
            if kind == _PAGE:
                return value
            if kind == _CALL:
                value.run()
                continue
            self._pending = message  # the end, or the error, stays the answer
            if kind == _END:
                return None
            raise value

    def ready(self):
        """The next thing yielded if it is already here, else None (never waits, never runs a call)."""
        if self._pending is not None:
            return None
        try:
            message = self._queue.get_nowait()
        except queue.Empty:
            return None
        if message[0] == _PAGE:
            return message[1]
        self._pending = message
        return None

    def close(self):
        """Stop the feed thread and wait for it; still runs what it asked (a rotated credential is saved)."""
        self._stop.set()
        thread = self._thread
        while thread is not None and thread.is_alive():
            self._drain()
            thread.join(_POLL_SECONDS)
        self._drain()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    @property
    def alive(self):
        return self._thread is not None and self._thread.is_alive()

    def _take(self, until):
        while True:
            wait = _POLL_SECONDS if until is None else min(_POLL_SECONDS, until - time.monotonic())
            if wait <= 0:
                raise FeedTimedOut()
            try:
                return self._queue.get(timeout=wait)
            except queue.Empty:
                if not self.alive and self._queue.empty():
                    raise RuntimeError("The page feed ended without a last word.") from None

    def _drain(self):
        if self._pending is not None and self._pending[0] == _CALL:
            self._pending[1].run()
            self._pending = None
        while True:
            try:
                kind, value = self._queue.get_nowait()
            except queue.Empty:
                return
            if kind == _CALL:
                value.run()

    # -- either thread -----------------------------------------------------------------

    def call(self, fn, *args):
        """`fn(*args)` in the engine's thread; from the feed thread, handed over and waited for."""
        if threading.current_thread() is not self._thread:
            return fn(*args)
        request = _Call(fn, args)
        # Handed over even when the engine stopped reading: close() runs it.
        self._put((_CALL, request), even_when_stopped=True)
        request.done.wait()
        return request.result()

    def sleep(self, seconds):
        """time.sleep for the HTTP client; in the feed thread, cut short by FeedClosed when the engine stops."""
        if threading.current_thread() is not self._thread:
            time.sleep(seconds)
        elif self._stop.wait(seconds):
            raise FeedClosed()

    # -- the feed thread -----------------------------------------------------------------

    def _produce(self, make_iterator):
        iterator = None
        try:
            iterator = make_iterator()
            for value in iterator:
                if not self._put((_PAGE, value)) or self._stop.is_set():
                    return
            self._put((_END, None))
        except FeedClosed:
            pass
        except BaseException as exc:  # the engine's thread raises it
            self._put((_ERROR, exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                try:
                    close()
                except BaseException:  # the run is over; the iterator's own clean-up failing changes nothing
                    pass

    def _put(self, message, even_when_stopped=False):
        while even_when_stopped or not self._stop.is_set():
            try:
                self._queue.put(message, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False
