import os

from django.core.management.base import BaseCommand, CommandError

from syncconsole.tenant_transfer.exporting import export_tenant
from syncconsole.tenant_transfer.kinds import TransferError


class Command(BaseCommand):
    help = (
        "Write one tenant's data as JSON lines, without credentials, for `import_tenant` on another "
        "installation: the tenant, members, integrations, account mappings, sessions with their logs, "
        "synced records, timeline events, issues, help requests, alerts and audit records."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The tenant's slug.")
        parser.add_argument(
            "--output", "-o", metavar="FILE", help="Write here (readable by its owner only) instead of stdout."
        )
        parser.add_argument(
            "--without-records",
            action="store_true",
            help="Leave the synced records (the customer's vendor data) out; issues then point at no record.",
        )

    def handle(self, *args, slug, output, without_records, **options):
        without = ("synced_record",) if without_records else ()
        try:
            if output:
                counts = self._to_file(slug, output, without)
            else:
                counts = export_tenant(slug, self.stdout, without=without)
        except TransferError as exc:
            raise CommandError(str(exc)) from exc
        written = ", ".join(f"{count} {name}" for name, count in counts.items())
        (self.stderr if not output else self.stdout).write(f"Exported tenant {slug}: {written}.")

    def _to_file(self, slug, output, without):
        """Written beside the destination and moved there when complete: a failed export leaves no file."""
        partial = f"{output}.partial"
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8", newline="\n") as stream:
                counts = export_tenant(slug, stream, without=without)
            os.replace(partial, output)
        except BaseException:
            if os.path.exists(partial):
                os.unlink(partial)
            raise
        return counts
