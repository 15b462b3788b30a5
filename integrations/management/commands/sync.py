import time

from django.core.management.base import BaseCommand, CommandError

from integrations.models import Integration, SyncSession
from integrations.sync.runner import run_session
from integrations.sync.starting import SyncRefused, start_sync

EXIT_SUCCEEDED, EXIT_WARNINGS, EXIT_UNSUCCESSFUL, EXIT_REFUSED = 0, 1, 2, 3


def describe(session):
    counters = " ".join(f"{name}={getattr(session, name)}" for name in SyncSession.COUNTERS)
    code = session.error_code_id or "-"
    message = f" {session.error_message}" if session.error_message else ""
    return f"session {session.pk} {session.state} {code}{message}\n{counters}"


class Command(BaseCommand):
    help = (
        "Start a sync of an integration. With --wait, wait for it to end and print the session's "
        "state, error code and counters; the exit status is 0 if it succeeded, 1 if it succeeded "
        "with warnings, 2 if it failed or ended unknown, 3 if the sync was refused."
    )

    def add_arguments(self, parser):
        parser.add_argument("integration_id", type=int)
        parser.add_argument("--full", action="store_true", help="read everything, mark vanished items deleted")
        parser.add_argument("--wait", action="store_true", help="wait for the end and report it")
        parser.add_argument(
            "--inline", action="store_true", help="run the session in this process instead of a qcluster worker"
        )
        parser.add_argument("--timeout", type=float, default=3600, help="seconds --wait waits (default 3600)")

    def handle(self, *args, **options):
        try:
            integration = Integration.objects.get(pk=options["integration_id"])
        except Integration.DoesNotExist:
            raise CommandError(f"No integration with id {options['integration_id']}.") from None
        kind = SyncSession.Kind.FULL if options["full"] else SyncSession.Kind.QUICK
        try:
            if options["inline"]:
                session = self.start_inline(integration, kind)
            else:
                session = start_sync(integration, kind=kind, trigger=SyncSession.Trigger.STAFF)
        except SyncRefused as exc:
            self.stderr.write(f"refused: {exc.message}")
            raise SystemExit(EXIT_REFUSED) from None
        self.stdout.write(f"session {session.pk} queued")
        if not (options["wait"] or options["inline"]):
            return
        session = self.wait(session, options["timeout"])
        self.stdout.write(describe(session))
        if session.state == SyncSession.State.SUCCEEDED:
            return
        raise SystemExit(EXIT_WARNINGS if session.state == SyncSession.State.WARNINGS else EXIT_UNSUCCESSFUL)

    def start_inline(self, integration, kind):
        session = start_sync(integration, kind=kind, trigger=SyncSession.Trigger.STAFF, enqueue=False)
        run_session(session.pk)
        return session

    def wait(self, session, timeout):
        deadline = time.monotonic() + timeout
        while True:
            session.refresh_from_db()
            if session.state in SyncSession.FINISHED_STATES:
                return session
            if time.monotonic() > deadline:
                hint = " (no worker picked it up: is a qcluster running?)" if session.state == "queued" else ""
                raise CommandError(f"Session {session.pk} still {session.state} after {timeout:g} s{hint}.")
            time.sleep(0.5)
