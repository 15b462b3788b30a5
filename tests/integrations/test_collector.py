"""While sessions run, the garbage collector runs less often; after the last one, as before (sync/collector.py)."""

import gc
import threading

import pytest

from integrations.sync import collector
from integrations.sync.collector import fewer_collections


@pytest.fixture
def default_threshold():
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_the_threshold_is_raised_while_a_session_runs_and_put_back_after(default_threshold):
    with fewer_collections():
        assert gc.get_threshold() == (collector.THRESHOLD, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


def test_put_back_when_the_run_fails(default_threshold):
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("the session failed")
    assert gc.get_threshold() == (700, 10, 10)


def test_sessions_in_several_threads_put_it_back_when_the_last_ends(default_threshold):
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def first():
        with fewer_collections():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second():
        first_in.wait(5)
        with fewer_collections():
            second_in.set()
            first_out.wait(5)
            seen["after the first ended"] = gc.get_threshold()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert seen["after the first ended"] == (collector.THRESHOLD, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


def test_a_higher_threshold_set_by_the_operator_is_kept(default_threshold):
    gc.set_threshold(50_000, 10, 10)
    with fewer_collections():
        assert gc.get_threshold() == (50_000, 10, 10)
    assert gc.get_threshold() == (50_000, 10, 10)


@pytest.mark.django_db(transaction=True)
def test_a_sync_reads_its_pages_with_fewer_collections(default_threshold, make_integration, sync, monkeypatch):
    from integrations.connectors.rest.connector import RestConnector

    thresholds = []
    original = RestConnector.parse_items

    def parse_items(self, rows):
        thresholds.append(gc.get_threshold()[0])
        return original(self, rows)

    monkeypatch.setattr(RestConnector, "parse_items", parse_items)
    session = sync(make_integration("big-1500", page_size=500))
    assert session.items_created == 1500
    assert thresholds == [collector.THRESHOLD] * 3
    assert gc.get_threshold() == (700, 10, 10)
