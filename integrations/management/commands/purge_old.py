from django.core.management.base import BaseCommand

from integrations import retention


class Command(BaseCommand):
    help = (
        "Delete rows past their retention (RETENTION_DAYS_*): resolved issues, finished sessions and their "
        "logs, timeline events, seen items, alerts, webhook deliveries; in small batches. What is still "
        "needed stays (open issues, each integration's last session, ...). The daily schedule runs the same."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="count what would go; change nothing")
        parser.add_argument("--batch-size", type=int, help="rows per batch (default RETENTION_BATCH_SIZE)")

    def handle(self, *args, dry_run=False, batch_size=None, **options):
        results = retention.purge(dry_run=dry_run, batch_size=batch_size)
        verb = "would go" if dry_run else "purged"
        for result in results:
            if result.cutoff is None:
                self.stdout.write(f"{result.kind.name}: kept forever ({result.kind.setting}=0)")
                continue
            line = f"{result.kind.name}: {result.rows} {verb} (older than {result.cutoff:%Y-%m-%d %H:%M} UTC, {result.kind.setting})"
            if not dry_run:
                line += f" in {result.batches} batch(es)"
                if result.cascaded:
                    line += "; with them " + ", ".join(
                        f"{n} {label}" for label, n in sorted(result.cascaded.items())
                    )
            self.stdout.write(line)
        if dry_run:
            self.stdout.write("Dry run: nothing was deleted.")
