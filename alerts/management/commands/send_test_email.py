from django.core.management.base import BaseCommand, CommandError

from alerts.delivery import SEND_ERRORS, send_test_email


class Command(BaseCommand):
    help = "Send a sample alert email to check EMAIL_URL and the layout."

    def add_arguments(self, parser):
        parser.add_argument("recipient")

    def handle(self, *args, **options):
        try:
            send_test_email(options["recipient"])
        except SEND_ERRORS as exc:
            raise CommandError(f"The email could not be sent: {exc}") from None
        self.stdout.write(f"Test email sent to {options['recipient']}.")
