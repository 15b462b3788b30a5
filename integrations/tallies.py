"""Counters and histograms kept in the database, behind /metrics.

SyncConsole runs as many processes on many machines (gunicorn workers, the
qcluster workers of both clusters): a counter held in one process's memory
would be seen only by that process, and the web process answering /metrics
would never see what a worker counted. So each series (a metric and one set
of label values) is one `MetricTally` row, moved with F() updates in the
same transaction as the fact it counts: a session counted as finished is a
session that finished, whichever process finished it, and a rolled-back
finish counts nothing.

A histogram's row holds its observation count, their sum and one count per
bucket (not cumulative: an observation adds one to the first bucket whose
bound holds it, or to none past the last bound); the collector adds them up
into Prometheus' cumulative buckets, +Inf being the count.

The metrics themselves are declared where their facts happen
(`integrations.sync.telemetry`, `alerts.metrics`) with `TallyCounter` and
`TallyHistogram`; `TallyCollector` reads every row in one query and exposes
each declared metric.
"""

import json
import math

from django.db import models
from django.db.models import F
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

BUCKET_COLUMNS = 12
BUCKET_FIELDS = tuple(f"bucket_{i:02d}" for i in range(BUCKET_COLUMNS))


class MetricTally(models.Model):
    """One series of a counter or a histogram: see the module docstring."""

    metric = models.CharField(max_length=100)
    labels = models.CharField(max_length=300, help_text="The label values as canonical JSON (sorted keys).")
    count = models.BigIntegerField(
        default=0, help_text="A counter's value; a histogram's number of observations."
    )
    total = models.FloatField(default=0, help_text="A histogram's sum of observed values.")
    # Observations per bucket, not cumulative (BUCKET_FIELDS; the bounds are the declaring metric's).
    bucket_00 = models.BigIntegerField(default=0)
    bucket_01 = models.BigIntegerField(default=0)
    bucket_02 = models.BigIntegerField(default=0)
    bucket_03 = models.BigIntegerField(default=0)
    bucket_04 = models.BigIntegerField(default=0)
    bucket_05 = models.BigIntegerField(default=0)
    bucket_06 = models.BigIntegerField(default=0)
    bucket_07 = models.BigIntegerField(default=0)
    bucket_08 = models.BigIntegerField(default=0)
    bucket_09 = models.BigIntegerField(default=0)
    bucket_10 = models.BigIntegerField(default=0)
    bucket_11 = models.BigIntegerField(default=0)

    class Meta:
        app_label = "integrations"
        constraints = [models.UniqueConstraint(fields=["metric", "labels"], name="one_tally_per_series")]

    def __str__(self):
        return f"{self.metric}{self.labels} = {self.count}"

    def label_values(self):
        return json.loads(self.labels)


def label_key(labels):
    return json.dumps(
        {name: str(value) for name, value in labels.items()}, sort_keys=True, separators=(",", ":")
    )


def _add(metric, labels, changes):
    """Apply F() `changes` to the series' row, creating it first if it is not there yet.

    Inside the caller's transaction. Two first writers of one series meet on
    the unique constraint: the insert is ON CONFLICT DO NOTHING, and on
    PostgreSQL it waits for the other's transaction, so the update after it
    finds the row either way.
    """
    key = label_key(labels)
    series = MetricTally.objects.filter(metric=metric, labels=key)
    if series.update(**changes):
        return
    MetricTally.objects.bulk_create([MetricTally(metric=metric, labels=key)], ignore_conflicts=True)
    series.update(**changes)


# Every declared tally metric, by name: what TallyCollector exposes.
DECLARED = {}


class _Tally:
    kind = ""

    def __init__(self, name, documentation, labelnames=()):
        if name in DECLARED:
            raise ValueError(f"Tally metric {name} is declared twice.")
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        DECLARED[name] = self

    def _labels(self, labels):
        if set(labels) != set(self.labelnames):
            raise ValueError(f"{self.name} takes the labels {self.labelnames}, not {tuple(labels)}.")
        return labels


class TallyCounter(_Tally):
    kind = "counter"

    def inc(self, amount=1, **labels):
        """Add `amount` inside the caller's transaction."""
        if amount < 0:
            raise ValueError("A counter only goes up.")
        if amount:
            _add(self.name, self._labels(labels), {"count": F("count") + amount})

    def family(self, rows):
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        if not self.labelnames and not rows:
            family.add_metric([], 0)
        for row in rows:
            values = row.label_values()
            family.add_metric([values.get(name, "") for name in self.labelnames], row.count)
        return family


class TallyHistogram(_Tally):
    kind = "histogram"

    def __init__(self, name, documentation, labelnames=(), *, buckets):
        buckets = tuple(float(bound) for bound in buckets)
        if not 0 < len(buckets) <= BUCKET_COLUMNS or list(buckets) != sorted(set(buckets)):
            raise ValueError(f"{name}: 1 to {BUCKET_COLUMNS} increasing bucket bounds, +Inf implied.")
        super().__init__(name, documentation, labelnames)
        self.buckets = buckets

    def bucket_index(self, value):
        """The bucket column that counts `value`, or None past the last bound (only +Inf holds it)."""
        for index, bound in enumerate(self.buckets):
            if value <= bound:
                return index
        return None

    def observe(self, value, **labels):
        """Record one observation inside the caller's transaction."""
        value = float(value)
        if math.isnan(value):
            raise ValueError(f"{self.name}: cannot observe NaN.")
        changes = {"count": F("count") + 1, "total": F("total") + value}
        index = self.bucket_index(value)
        if index is not None:
            changes[BUCKET_FIELDS[index]] = F(BUCKET_FIELDS[index]) + 1
        _add(self.name, self._labels(labels), changes)

    def family(self, rows):
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for row in rows:
            values = row.label_values()
            cumulative, buckets = 0, []
            for bound, field in zip(self.buckets, BUCKET_FIELDS):
                cumulative += getattr(row, field)
                buckets.append((floatToGoString(bound), cumulative))
            buckets.append(("+Inf", row.count))
            family.add_metric([values.get(name, "") for name in self.labelnames], buckets, row.total)
        return family


class TallyCollector:
    """A prometheus_client collector of every declared tally metric: one query for all of them."""

    def collect(self):
        rows = {}
        for row in MetricTally.objects.filter(metric__in=list(DECLARED)).order_by("metric", "labels"):
            rows.setdefault(row.metric, []).append(row)
        for name in sorted(DECLARED):
            yield DECLARED[name].family(rows.get(name, []))
