import sys

from django.core.management.base import BaseCommand, CommandError

from syncconsole.tenant_transfer import catalog
from syncconsole.tenant_transfer.importing import import_tenant
from syncconsole.tenant_transfer.kinds import TransferError


class Command(BaseCommand):
    help = (
        "Load a tenant written by `export_tenant` into this installation under new ids, in one transaction. "
        "Its integrations arrive switched off and without credentials; people it names are matched by "
        "username or email address, or created inactive without a password."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="The export (JSON lines); - reads stdin.")
        parser.add_argument(
            "--as", dest="new_slug", metavar="NEWSLUG", help="The slug the tenant gets here (default: its own)."
        )

    def handle(self, *args, file, new_slug, **options):
        try:
            if file == "-":
                done = import_tenant(sys.stdin.buffer, new_slug=new_slug)
            else:
                with open(file, "rb") as stream:
                    done = import_tenant(stream, new_slug=new_slug)
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}.") from exc
        except TransferError as exc:
            raise CommandError(f"{exc} Nothing was imported.") from exc
        rows = ", ".join(f"{count} {name}" for name, count in done.inserted.items())
        self.stdout.write(f"Imported tenant {done.slug} (id {done.tenant_id}) from {done.source}: {rows}.")
        self.stdout.write(
            f"Users: {len(done.users_matched)} matched here, "
            f"{len(done.users_created)} created inactive without a password."
        )
        for name, count in done.skipped.items():
            self.stdout.write(f"Skipped {count} {name} line(s): {catalog.BY_NAME[name].skip_note}")
        if done.codes_added:
            self.stdout.write(f"Error codes added to the catalog: {', '.join(done.codes_added)}.")
        self.stdout.write(
            "Its integrations are switched off and have no credentials: save credentials, then reactivate them."
        )
