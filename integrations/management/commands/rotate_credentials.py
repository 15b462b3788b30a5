from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from integrations import crypto
from integrations.models import Integration


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored credential under the newest key of CREDENTIALS_KEYS. "
        "Run after putting a new key first; drop the old keys afterwards."
    )

    def handle(self, *args, **options):
        rotated = 0
        with transaction.atomic():
            rows = (
                Integration.objects.select_for_update()
                .exclude(credentials_ciphertext="")
                .only("pk", "credentials_ciphertext")
            )
            for integration in rows.iterator(chunk_size=500):
                try:
                    new = crypto.rotate(integration.credentials_ciphertext)
                except crypto.InvalidToken as exc:
                    raise CommandError(
                        f"Integration {integration.pk}: credentials readable by none of "
                        "CREDENTIALS_KEYS; nothing was changed."
                    ) from exc
                Integration.objects.filter(pk=integration.pk).update(credentials_ciphertext=new)
                rotated += 1
        self.stdout.write(f"Re-encrypted the credentials of {rotated} integration(s) under the newest key.")
