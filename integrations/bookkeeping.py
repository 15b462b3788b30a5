"""The sync engine's bookkeeping: what a running full sync met, which pages it may skip, which workers live.

Models of the integrations app (imported by integrations/models.py), kept
apart from the domain models: nobody edits them, the engine and the workers
write them and clear them.
"""

from django.db import models


class SeenItem(models.Model):
    """An item a running full sync met unchanged; its records stay, the others become deleted.

    A narrow append-only row per item instead of rewriting each unchanged
    record; the rows of a session are removed when it finishes.
    """

    session_id = models.BigIntegerField()
    external_id = models.CharField(max_length=200)

    class Meta:
        indexes = [models.Index(fields=["session_id", "external_id"], name="seen_session_item")]


class SeenRange(models.Model):
    """A page a running full sync skipped as unchanged: every record from `low` to `high` (the database's order) was met.

    One row per skipped page instead of a SeenItem per item; the pages it
    may skip are the integration's PageFingerprints (sync/fingerprints.py).
    Removed with the session's SeenItems when it finishes.
    """

    session_id = models.BigIntegerField()
    item_type = models.CharField(max_length=50)
    low = models.CharField(max_length=200)
    high = models.CharField(max_length=200)

    class Meta:
        indexes = [models.Index(fields=["session_id", "item_type", "low"], name="seen_range_session_low")]


class PageFingerprint(models.Model):
    """A page of the last complete full sync, as the vendor sent it, and the exact range of records it holds.

    A later full sync that gets the same page again (same request, same
    rows, same settings and mapping) skips its items' work. Replaced by
    every complete full sync; any other session that writes records drops
    them all (sync/fingerprints.py).
    """

    integration = models.ForeignKey("integrations.Integration", on_delete=models.CASCADE, related_name="page_fingerprints")
    item_type = models.CharField(max_length=50)
    page_key = models.CharField(max_length=64, help_text="SHA-256 of the page's request.")
    digest = models.CharField(max_length=64, help_text="SHA-256 of the page's rows.")
    generation = models.CharField(max_length=64, help_text="SHA-256 of the settings and mapping it was read with.")
    low = models.CharField(max_length=200)
    high = models.CharField(max_length=200)
    item_count = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["integration", "item_type", "page_key"], name="one_fingerprint_per_page")
        ]


class WorkerHeartbeat(models.Model):
    """The last sign of life of one qcluster worker process, written every few seconds (sync/worker_beat.py).

    A cluster with no row beaten within WORKER_DEAD_AFTER_SECONDS has no live
    worker; rows of processes gone for a day are removed.
    """

    cluster = models.CharField(max_length=100)
    host = models.CharField(max_length=200)
    pid = models.PositiveIntegerField()
    last_beat_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["cluster", "host", "pid"], name="one_heartbeat_per_worker")]
        indexes = [models.Index(fields=["last_beat_at"], name="heartbeat_last_beat")]

    def __str__(self):
        return f"{self.cluster} worker {self.host}:{self.pid}"
