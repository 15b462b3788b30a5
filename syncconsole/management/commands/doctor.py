from django.core.management.base import BaseCommand, CommandError

from syncconsole import doctor


class Command(BaseCommand):
    help = (
        "Check this configuration before it goes live: settings, database, migrations, broker, cache, a live "
        "worker per cluster, clock skew. Prints each problem with its fix; exits 1 when there is any."
    )

    def handle(self, *args, **options):
        findings = doctor.examine()
        self.stdout.write(doctor.render(findings), ending="")
        found = doctor.problems(findings)
        if found:
            problems = f"{len(found)} problem{'s' if len(found) != 1 else ''}"
            raise CommandError(f"{problems} found; each is listed above with its fix.")
        checked = sum(1 for finding in findings if finding.status == doctor.OK)
        self.stdout.write(f"All is well: {checked} checks passed.")
