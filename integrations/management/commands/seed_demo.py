"""Demo data: three tenants, two logins, and integrations in every status.

Every integration reaches its status through real syncs against the running
vendor simulator (`manage.py vendor_simulator`), through the engine and the
status machine, plus the staff actions a person would take. Idempotent: an
integration that exists already is left as it is.
"""

from datetime import timedelta

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from integrations import status as machine
from integrations.models import Integration, Membership, SyncSession, Tenant
from integrations.onboarding import create_integration
from integrations.services import perform_action
from integrations.sync import reaper
from integrations.sync.runner import claim, run_session
from integrations.sync.starting import start_sync

TENANTS = [
    ("acme", "Acme Managed Services", Tenant.Environment.PRODUCTION, "alerts@acme.example"),
    ("globex", "Globex IT", Tenant.Environment.PRODUCTION, "noc@globex.example"),
    ("initech-dev", "Initech (sandbox)", Tenant.Environment.DEVELOPMENT, ""),
]

# (tenant, name, kind, scenario account, extra settings, credential, how to reach the status)
INTEGRATIONS = [
    ("acme", "Pax8", "vendor", "healthy.demo-acme-pax8", {}, "good-key", "active"),
    ("acme", "ConnectWise Manage", "psa", "warnings.demo-acme-cw", {}, "good-key", "warnings"),
    ("acme", "Mimecast", "vendor", "warnings.demo-acme-mimecast", {}, "good-key", "quality_assurance"),
    ("acme", "Autotask", "psa", "healthy.demo-acme-autotask", {}, "good-key", "failing"),
    ("acme", "Ingram Micro", "vendor", "expired-token.demo-acme-ingram", {}, "good-key", "auth_failing"),
    ("globex", "HubSpot", "vendor", "healthy.demo-globex-hubspot", {}, "good-key", "unknown"),
    ("globex", "Proofpoint", "vendor", "invalid-key.demo-globex-proofpoint", {}, "good-key", "credentials_invalid"),
    ("globex", "Exchange mailbox", "vendor", "healthy.demo-globex-exchange", {"manual_mapping": True}, "good-key", "setup"),
    ("globex", "Sherweb", "vendor", "healthy.demo-globex-sherweb", {}, "good-key", "inactive"),
    ("globex", "Old Datto", "vendor", "healthy.demo-globex-datto", {}, "good-key", "deleted"),
    ("initech-dev", "TD SYNNEX", "vendor", "big-5000.demo-initech", {}, "good-key", "active"),
    ("initech-dev", "Rate-limited vendor", "vendor", "rate-limited.demo-initech", {}, "good-key", "active"),
    ("initech-dev", "Flaky vendor", "vendor", "flaky.demo-initech", {"auth": "oauth2"}, "good-key", "active"),
]


class Command(BaseCommand):
    help = (
        "Load demo data through real syncs against the vendor simulator (start it first: "
        "`python manage.py vendor_simulator --port 8765`). Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument("--simulator-url", default=settings.VENDOR_SIMULATOR_URL)

    def handle(self, *args, **options):
        self.simulator = options["simulator_url"].rstrip("/")
        try:
            requests.get(f"{self.simulator}/health", timeout=3).raise_for_status()
        except requests.RequestException:
            raise CommandError(
                f"The vendor simulator does not answer at {self.simulator}. Start it with "
                "`python manage.py vendor_simulator --port 8765` (make demo does)."
            ) from None
        self.admin = self.ensure_users()
        tenants = {}
        for slug, name, environment, alert_emails in TENANTS:
            tenants[slug], _ = Tenant.objects.get_or_create(
                slug=slug, defaults={"name": name, "environment": environment, "alert_emails": alert_emails}
            )
        self.ensure_membership("customer", tenants["acme"], Membership.Role.ADMIN)
        self.ensure_membership("viewer", tenants["acme"], Membership.Role.VIEWER)

        for slug, name, kind, account, extra, key, target in INTEGRATIONS:
            tenant = tenants[slug]
            if Integration.objects.filter(tenant=tenant, name=name).exists():
                continue
            integration = create_integration(
                tenant,
                "simulator",
                name,
                settings={"account": account, "base_url": self.simulator, **extra},
                credentials={"api_key": key},
                actor=self.admin,
                queue_first_sync=False,
            )
            integration.kind = kind
            integration.save(update_fields=["kind"])
            getattr(self, f"reach_{target}")(integration, account)
            integration.refresh_from_db()
            self.stdout.write(f"  {tenant.name} / {name}: {integration.status}")
            if integration.status != target:
                raise CommandError(f"{name} ended {integration.status}, expected {target}.")

    # -- people --------------------------------------------------------------

    def ensure_users(self):
        User = get_user_model()
        admin, created = User.objects.get_or_create(
            username="admin", defaults={"email": "admin@syncconsole.local", "is_staff": True, "is_superuser": True}
        )
        if created:
            admin.set_password("admin")
            admin.save()
        return admin

    def ensure_membership(self, username, tenant, role):
        User = get_user_model()
        user, created = User.objects.get_or_create(username=username, defaults={"email": f"{username}@acme.example"})
        if created:
            user.set_password(username)
            user.save()
        Membership.objects.get_or_create(user=user, defaults={"tenant": tenant, "role": role, "receives_alerts": True})

    # -- simulator and syncs -------------------------------------------------

    def control(self, account, **changes):
        response = requests.post(f"{self.simulator}/_control/accounts/{account}", json=changes, timeout=5)
        response.raise_for_status()

    def sync(self, integration, kind=SyncSession.Kind.FULL, trigger=SyncSession.Trigger.STAFF):
        integration.refresh_from_db()
        session = start_sync(integration, kind=kind, trigger=trigger, requested_by=self.admin, enqueue=False)
        run_session(session.pk)
        session.refresh_from_db()
        return session

    # -- one method per status -----------------------------------------------

    def reach_active(self, integration, account):
        self.sync(integration)
        self.sync(integration, kind=SyncSession.Kind.QUICK, trigger=SyncSession.Trigger.SCHEDULE)

    def reach_quality_assurance(self, integration, account):
        self.sync(integration)  # the first sync has item issues

    def reach_warnings(self, integration, account):
        self.sync(integration)
        perform_action(
            integration.pk,
            machine.Action.RELEASE_QA,
            actor=self.admin,
            note="Reviewed: the vendor data has known gaps; the customer is fixing them.",
        )
        self.sync(integration, trigger=SyncSession.Trigger.RETRY)

    def reach_failing(self, integration, account):
        self.sync(integration)
        self.control(account, fail=True)
        self.sync(integration, kind=SyncSession.Kind.QUICK, trigger=SyncSession.Trigger.SCHEDULE)
        self.sync(integration, kind=SyncSession.Kind.QUICK, trigger=SyncSession.Trigger.SCHEDULE)

    def reach_auth_failing(self, integration, account):
        self.sync(integration)

    def reach_unknown(self, integration, account):
        self.sync(integration)
        # A worker that claimed a session and then vanished: the reaper ends it.
        session = start_sync(integration, kind=SyncSession.Kind.QUICK, trigger=SyncSession.Trigger.SCHEDULE, enqueue=False)
        claim(session.pk, "demo-host:4242", timezone.now() - timedelta(minutes=10))
        reaper.reap()

    def reach_credentials_invalid(self, integration, account):
        self.sync(integration)
        # Let three days pass for the auth streak (the demo cannot wait them out).
        integration.refresh_from_db()
        Integration.objects.filter(pk=integration.pk).update(
            auth_failing_since=integration.auth_failing_since - settings.CREDENTIALS_INVALID_AFTER - timedelta(minutes=1)
        )
        self.sync(integration, kind=SyncSession.Kind.QUICK, trigger=SyncSession.Trigger.SCHEDULE)

    def reach_setup(self, integration, account):
        """Mapping incomplete: the customer has to map the vendor accounts first."""

    def reach_inactive(self, integration, account):
        self.sync(integration)
        perform_action(integration.pk, machine.Action.DEACTIVATE, actor=self.admin, note="Customer cancelled Sherweb.")

    def reach_deleted(self, integration, account):
        self.sync(integration)
        perform_action(integration.pk, machine.Action.DELETE, actor=self.admin, note="Replaced by the Pax8 integration.")
