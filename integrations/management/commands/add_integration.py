from django.core.management.base import BaseCommand, CommandError

from integrations import credential_checks
from integrations.connectors.base import connector_keys
from integrations.models import Tenant
from integrations.onboarding import InvalidIntegration, create_integration


def parse_pairs(pairs, what):
    values = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CommandError(f"--{what} takes KEY=VALUE, got {pair!r}.")
        values[key.strip()] = value
    return values


class Command(BaseCommand):
    help = (
        "Create an integration for a tenant and print its id. The mapping is complete unless "
        "the connector needs one; then the first sync is queued at once (unless --no-sync). "
        "Settings are typed: booleans take true/false (yes/no, 1/0), lists take commas or JSON, "
        "objects take JSON; unknown keys are refused. `manage.py connectors KEY` lists a connector's "
        "settings and credentials. Example: add_integration acme simulator --name Pax8 "
        "--setting account=healthy --credential api_key=good-key"
    )

    def add_arguments(self, parser):
        parser.add_argument("tenant_slug")
        parser.add_argument("connector", help="one of: " + ", ".join(connector_keys()))
        parser.add_argument("--name", required=True)
        parser.add_argument("--setting", action="append", metavar="KEY=VALUE", help="a connector setting")
        parser.add_argument("--credential", action="append", metavar="KEY=VALUE", help="a credential (encrypted)")
        parser.add_argument("--no-sync", action="store_true", help="do not queue the first sync")

    def handle(self, *args, **options):
        try:
            tenant = Tenant.objects.get(slug=options["tenant_slug"])
        except Tenant.DoesNotExist:
            raise CommandError(f"No tenant with slug {options['tenant_slug']!r}.") from None
        credentials = parse_pairs(options["credential"], "credential")
        try:
            integration = create_integration(
                tenant,
                options["connector"],
                options["name"],
                settings=parse_pairs(options["setting"], "setting"),
                credentials=credentials,
                queue_first_sync=not options["no_sync"],
            )
        except InvalidIntegration as exc:
            raise CommandError("\n".join(exc.problems)) from None
        self.stdout.write(str(integration.pk))
        # A warning, on stderr so that scripts reading the id are not disturbed; the integration is created.
        for shared in credential_checks.shared_mailboxes(credentials):
            self.stderr.write(self.style.WARNING(f"Warning: {shared.text()}"))
