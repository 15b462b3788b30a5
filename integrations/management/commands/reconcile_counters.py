from django.core.management.base import BaseCommand

from integrations import counters


class Command(BaseCommand):
    help = (
        "Recount the open issues of every integration and repair the stored counts that drifted "
        "(each repair is logged). The hourly schedule runs the same; run it after a deploy that adds a "
        "count."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size", type=int, default=1000, help="Integrations recounted per query (1000)."
        )

    def handle(self, *args, batch_size, **options):
        fixed = counters.reconcile(batch_size=max(1, batch_size))
        self.stdout.write(f"{fixed} count(s) repaired")
