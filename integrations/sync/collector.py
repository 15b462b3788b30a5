"""Fewer garbage collections while a session runs.

A page of 1,000 items is several thousand new containers (the parsed rows,
their Items, their problem lists) that live until the page is written. At
CPython's default threshold (a collection per 700 new containers) the
collector runs several times a page, and its older generations walk every
object of the process, Django's own included, again and again: about a
seventh of the CPU time of a first full sync (`bench/sync_throughput.py`).
Those objects hold no reference cycles, so reference counting frees them
without the collector. While a session runs, the first threshold is raised;
it is put back when the last session running in the process ends (a
process may run sessions in several threads). Cyclic garbage is still
collected, only in larger steps.
"""

import gc
import threading
from contextlib import contextmanager

# New containers between two collections of the youngest generation while a session runs.
THRESHOLD = 10_000

_lock = threading.Lock()
_running = 0
_saved = None


@contextmanager
def fewer_collections():
    global _running, _saved
    with _lock:
        if _running == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(max(THRESHOLD, _saved[0]), *_saved[1:])
        _running += 1
    try:
        yield
    finally:
        with _lock:
            _running -= 1
            if _running == 0:
                gc.set_threshold(*_saved)
