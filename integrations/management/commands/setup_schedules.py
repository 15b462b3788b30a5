from django.core.management.base import BaseCommand
from django_q.models import Schedule

from integrations.schedules import ensure_schedules


class Command(BaseCommand):
    help = "Create or update the periodic schedules (reaper, scheduler) from the settings. Idempotent."

    def handle(self, *args, **options):
        for name in ensure_schedules(Schedule):
            self.stdout.write(f"schedule {name} ok")
