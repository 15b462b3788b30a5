"""Counters and histograms kept in the database (integrations/tallies.py)."""

import threading

import pytest
from django.db import connection, connections, transaction
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from integrations import tallies
from integrations.tallies import MetricTally, TallyCounter, TallyHistogram


@pytest.fixture
def declared():
    """Metrics declared for one test only."""
    before = dict(tallies.DECLARED)
    yield
    tallies.DECLARED.clear()
    tallies.DECLARED.update(before)


class Only:
    """A collector of the named tally metrics."""

    def __init__(self, *names):
        self.names = names

    def collect(self):
        return [family for family in tallies.TallyCollector().collect() if family.name in self.names]


def exposed(*names):
    text = generate_latest(Only(*names)).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.django_db
def test_a_counter_counts_per_label_set(declared):
    counter = TallyCounter("test_things_total", "Things.", ["kind"])
    counter.inc(kind="a")
    counter.inc(kind="a")
    counter.inc(3, kind="b")
    counter.inc(0, kind="c")  # nothing to add: no row
    samples = exposed("test_things")
    assert samples[("test_things_total", (("kind", "a"),))] == 2
    assert samples[("test_things_total", (("kind", "b"),))] == 3
    assert ("test_things_total", (("kind", "c"),)) not in samples
    assert MetricTally.objects.filter(metric="test_things_total").count() == 2


@pytest.mark.django_db
def test_a_counter_without_labels_shows_zero_before_its_first_count(declared):
    TallyCounter("test_lonely_total", "Lonely.")
    assert exposed("test_lonely")[("test_lonely_total", ())] == 0


@pytest.mark.django_db
def test_a_histogram_exposes_cumulative_buckets_sum_and_count(declared):
    histogram = TallyHistogram("test_seconds", "Durations.", ["kind"], buckets=(1, 10, 100))
    for observed in (0.5, 1, 5, 50, 500, 5000):
        histogram.observe(observed, kind="x")
    samples = exposed("test_seconds")
    bucket = lambda le: samples[("test_seconds_bucket", (("kind", "x"), ("le", le)))]  # noqa: E731
    assert [bucket("1.0"), bucket("10.0"), bucket("100.0"), bucket("+Inf")] == [2, 3, 4, 6]
    assert samples[("test_seconds_count", (("kind", "x"),))] == 6
    assert samples[("test_seconds_sum", (("kind", "x"),))] == 5556.5


@pytest.mark.django_db
def test_wrong_labels_and_values_are_refused(declared):
    counter = TallyCounter("test_refusals_total", "Refusals.", ["kind"])
    with pytest.raises(ValueError, match="takes the labels"):
        counter.inc(other="x")
    with pytest.raises(ValueError, match="only goes up"):
        counter.inc(-1, kind="x")
    with pytest.raises(ValueError, match="declared twice"):
        TallyCounter("test_refusals_total", "Again.")
    with pytest.raises(ValueError, match="increasing bucket bounds"):
        TallyHistogram("test_bad_seconds", "Bad.", buckets=(5, 1))
    with pytest.raises(ValueError, match="increasing bucket bounds"):
        TallyHistogram("test_many_seconds", "Too many.", buckets=range(1, 20))
    assert not MetricTally.objects.exists()


@pytest.mark.django_db
def test_a_rolled_back_count_is_not_kept(declared):
    counter = TallyCounter("test_rolled_total", "Rolled back.", ["kind"])
    counter.inc(kind="a")
    with pytest.raises(RuntimeError), transaction.atomic():
        counter.inc(kind="a")
        counter.inc(kind="new")
        raise RuntimeError()
    assert dict(MetricTally.objects.values_list("labels", "count")) == {'{"kind":"a"}': 1}


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL: concurrent writers")
@pytest.mark.django_db(transaction=True)
def test_concurrent_first_counts_of_one_series_all_count(declared):
    """Ten transactions count a series none of them finds: each insert waits on the others, none is lost."""
    counter = TallyCounter("test_race_total", "Raced.", ["kind"])
    writers = 10
    barrier = threading.Barrier(writers)
    errors = []

    def count():
        try:
            with transaction.atomic():
                barrier.wait(timeout=120)
                counter.inc(kind="raced")
        except Exception as exc:  # the assertion below shows it
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=count) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    assert errors == []
    assert MetricTally.objects.get(metric="test_race_total").count == writers
