"""``python manage.py vendor_simulator``: run the vendor simulator."""

from django.core.management.base import BaseCommand, DjangoHelpFormatter

from integrations.simulator import server


class _HelpFormatter(DjangoHelpFormatter, server.RawDescriptionFormatter):
    """Django's option ordering, with the description's layout kept."""


class Command(BaseCommand):
    help = server.HELP_TEXT
    requires_system_checks = []

    def create_parser(self, prog_name, subcommand, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        server.add_arguments(parser)

    def handle(self, *args, **options):
        server.serve(
            host=options["host"],
            port=options["port"],
            seed=options["seed"],
            slow_seconds=options["slow_seconds"],
            token_ttl=options["token_ttl"],
            page_size=options["page_size"],
            max_page_size=options["max_page_size"],
            stdout=self.stdout,
        )
