"""Demo data: three tenants, two logins, and integrations in every status.

Every integration reaches its status through real syncs against the running
vendor simulator (`manage.py vendor_simulator`), through the engine and the
status machine, plus the staff actions a person would take. Besides the
simulator's own connector, each shipped vendor manifest
(integrations/connectors/manifests/) gets one integration on the simulator's
profile of that vendor (`/profiles/KEY/healthy.demo-TENANT/...`), synced once
in full. With --carddav-url, Acme also gets a CardDAV integration on a
Radicale address book (which `make demo` starts) holding a few contacts
without a last name. Idempotent: an integration that exists already (by
tenant and name) is left as it is.
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
from integrations.simulator import profiles
from integrations.simulator.profiles import connectwise, graph, hubspot, pax8, proofpoint
from integrations.simulator.scenarios import EXPIRED_KEY, GOOD_KEY, REVOKED_KEY
from integrations.sync import reaper
from integrations.sync.runner import claim, run_session
from integrations.sync.starting import start_sync

TENANTS = [
    ("acme", "Acme Managed Services", Tenant.Environment.PRODUCTION, "alerts@acme.example"),
    ("globex", "Globex IT", Tenant.Environment.PRODUCTION, "noc@globex.example"),
    ("initech-dev", "Initech (sandbox)", Tenant.Environment.DEVELOPMENT, ""),
]

# (tenant, name, kind, scenario account, extra settings, credential, how to reach the status).
# The two failing to sign in hold a key the simulator has expired or revoked (EXPIRED_KEY,
# REVOKED_KEY); re-authenticating with good-key, the README's key, fixes them.
INTEGRATIONS = [
    ("acme", "Pax8", "vendor", "healthy.demo-acme-pax8", {}, GOOD_KEY, "active"),
    ("acme", "ConnectWise Manage", "psa", "warnings.demo-acme-cw", {}, GOOD_KEY, "warnings"),
    ("acme", "Mimecast", "vendor", "warnings.demo-acme-mimecast", {}, GOOD_KEY, "quality_assurance"),
    ("acme", "Autotask", "psa", "healthy.demo-acme-autotask", {}, GOOD_KEY, "failing"),
    ("acme", "Ingram Micro", "vendor", "healthy.demo-acme-ingram", {}, EXPIRED_KEY, "auth_failing"),
    ("globex", "HubSpot", "vendor", "healthy.demo-globex-hubspot", {}, GOOD_KEY, "unknown"),
    ("globex", "Proofpoint", "vendor", "healthy.demo-globex-proofpoint", {}, REVOKED_KEY, "credentials_invalid"),
    ("globex", "Exchange mailbox", "vendor", "healthy.demo-globex-exchange", {"manual_mapping": True}, GOOD_KEY, "setup"),
    ("globex", "Sherweb", "vendor", "healthy.demo-globex-sherweb", {}, GOOD_KEY, "inactive"),
    ("globex", "Old Datto", "vendor", "healthy.demo-globex-datto", {}, GOOD_KEY, "deleted"),
    ("initech-dev", "TD SYNNEX", "vendor", "big-5000.demo-initech", {}, GOOD_KEY, "active"),
    ("initech-dev", "Rate-limited vendor", "vendor", "rate-limited.demo-initech", {}, GOOD_KEY, "active"),
    ("initech-dev", "Flaky vendor", "vendor", "flaky.demo-initech", {"auth": "oauth2"}, GOOD_KEY, "active"),
]

# One per vendor manifest, on the simulator's profile of the vendor and with the credentials
# it accepts: (tenant, name, kind, manifest key, profile account, credentials, extra settings).
MANIFEST_INTEGRATIONS = [
    (
        "acme", "Pax8 subscriptions", "vendor", "pax8", "healthy.demo-acme",
        {"client_id": pax8.CLIENT_ID, "client_secret": pax8.CLIENT_SECRET}, {},
    ),
    (
        "acme", "ConnectWise PSA contacts", "psa", "connectwise_manage", "healthy.demo-acme",
        {"username": connectwise.USERNAME, "password": connectwise.PASSWORD},
        {"request.headers": {"clientId": connectwise.CLIENT_ID}},
    ),
    (
        "acme", "Microsoft 365 mailboxes", "vendor", "microsoft_graph_mailboxes", "healthy.demo-acme",
        {"client_id": graph.CLIENT_ID, "client_secret": graph.CLIENT_SECRET}, {},
    ),
    (
        "globex", "Proofpoint Essentials users", "vendor", "proofpoint_essentials", "healthy.demo-globex",
        {"username": proofpoint.X_USER, "password": proofpoint.X_PASSWORD}, {},
    ),
    (
        "globex", "HubSpot CRM contacts", "vendor", "hubspot_contacts", "healthy.demo-globex",
        {
            "client_id": hubspot.CLIENT_ID,
            "client_secret": hubspot.CLIENT_SECRET,
            "refresh_token": hubspot.REFRESH_TOKEN,
        },
        {},
    ),
]

# The CardDAV integration: (tenant, name, address book, how to reach the status).
CARDDAV_INTEGRATION = ("acme", "Mailbox contacts", "contacts", "warnings")

# (UID, given name, last name, emails): three without a last name, one invalid
# email, one email on two contacts.
CARDDAV_CONTACTS = [
    ("demo-ada", "Ada", "Lovelace", ["ada@acme.example"]),
    ("demo-alan", "Alan", "Turing", ["alan@acme.example"]),
    ("demo-grace", "Grace", "", ["grace@acme.example"]),
    ("demo-linus", "Linus", "", ["linus@acme.example"]),
    ("demo-margaret", "Margaret", "", []),
    ("demo-edsger", "Edsger", "Dijkstra", ["edsger(at)acme.example"]),
    ("demo-barbara", "Barbara", "Liskov", ["barbara@acme.example"]),
    ("demo-liskov-work", "Barbara", "Liskov", ["barbara@acme.example"]),
]

ADDRESSBOOK_MKCOL = """<?xml version="1.0" encoding="utf-8"?>
<d:mkcol xmlns:d="DAV:" xmlns:cr="urn:ietf:params:xml:ns:carddav"><d:set><d:prop>
<d:resourcetype><d:collection/><cr:addressbook/></d:resourcetype>
<d:displayname>Mailbox contacts</d:displayname>
</d:prop></d:set></d:mkcol>"""


def demo_vcard(uid, given, family, emails):
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"UID:{uid}", f"FN:{' '.join(p for p in (given, family) if p)}"]
    lines += [f"N:{family};{given};;;", "ORG:Acme Managed Services"]
    lines += [f"EMAIL;TYPE=INTERNET:{email}" for email in emails]
    return "\r\n".join([*lines, "END:VCARD"]) + "\r\n"


class Command(BaseCommand):
    help = (
        "Load demo data through real syncs against the vendor simulator (start it first: "
        "`python manage.py vendor_simulator --port 8765`). Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument("--simulator-url", default=settings.VENDOR_SIMULATOR_URL)
        parser.add_argument(
            "--carddav-url",
            default="",
            help="a CardDAV server (Radicale) for the CardDAV integration; without it, that one is skipped",
        )
        parser.add_argument("--carddav-user", default="demo")
        parser.add_argument("--carddav-password", default="demo")

    def handle(self, *args, **options):
        self.simulator = options["simulator_url"].rstrip("/")
        try:
            requests.get(f"{self.simulator}/health", timeout=3).raise_for_status()
        except requests.RequestException:
            raise CommandError(
                f"The vendor simulator does not answer at {self.simulator}. Start it with "
                "`python manage.py vendor_simulator --port 8765` (make demo does)."
            ) from None
        self.carddav = options["carddav_url"].rstrip("/")
        self.carddav_auth = (options["carddav_user"], options["carddav_password"])
        if self.carddav:
            self.check_carddav()
        self.admin = self.ensure_users()
        tenants = self.ensure_tenants()
        self.ensure_membership("customer", tenants["acme"], Membership.Role.ADMIN)
        self.ensure_membership("viewer", tenants["acme"], Membership.Role.VIEWER)

        for spec in INTEGRATIONS:
            self.seed_simulator_integration(tenants, spec)
        self.seed_manifests(tenants)
        if self.carddav:
            self.seed_carddav(tenants)

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

    def ensure_tenants(self):
        tenants = {}
        for slug, name, environment, alert_emails in TENANTS:
            tenants[slug], _ = Tenant.objects.get_or_create(
                slug=slug, defaults={"name": name, "environment": environment, "alert_emails": alert_emails}
            )
        return tenants

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

    def seed_simulator_integration(self, tenants, spec):
        """One of INTEGRATIONS, brought to its status by real syncs; None if it exists already."""
        slug, name, kind, account, extra, key, target = spec
        tenant = tenants[slug]
        if Integration.objects.filter(tenant=tenant, name=name).exists():
            return None
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
        return integration

    # -- the vendor manifests -------------------------------------------------

    def seed_manifests(self, tenants):
        """One integration per vendor manifest on its simulator profile, active after a full sync."""
        for slug, name, kind, key, account, credentials, extra in MANIFEST_INTEGRATIONS:
            tenant = tenants[slug]
            if Integration.objects.filter(tenant=tenant, name=name).exists():
                continue
            root = profiles.root_url(self.simulator, key, account)
            integration = create_integration(
                tenant,
                key,
                name,
                settings={**profiles.PROFILES[key].urls(root), **extra},
                credentials=credentials,
                actor=self.admin,
                queue_first_sync=False,
            )
            integration.kind = kind
            integration.save(update_fields=["kind"])
            session = self.sync(integration)
            integration.refresh_from_db()
            self.stdout.write(f"  {tenant.name} / {name}: {integration.status}")
            if integration.status != Integration.Status.ACTIVE:
                raise CommandError(
                    f"{name} ended {integration.status}, expected active: "
                    f"{session.error_code_id or 'no error code'} {session.error_message}".rstrip()
                )

    # -- the CardDAV integration ----------------------------------------------

    def check_carddav(self):
        try:
            response = requests.request(
                "PROPFIND", f"{self.carddav}/", headers={"Depth": "0"}, auth=self.carddav_auth, timeout=5
            )
        except requests.RequestException:
            response = None
        if response is None or response.status_code >= 500:
            raise CommandError(
                f"The CardDAV server does not answer at {self.carddav}. Start Radicale "
                "(`python -m radicale --config var/radicale/config`; make demo does)."
            )
        if response.status_code == 401:
            raise CommandError(
                f"The CardDAV server at {self.carddav} refuses the user {self.carddav_auth[0]!r} (401)."
            )

    def seed_carddav(self, tenants):
        slug, name, book, target = CARDDAV_INTEGRATION
        tenant = tenants[slug]
        book_url = f"{self.carddav}/{self.carddav_auth[0]}/{book}/"
        self.fill_addressbook(book_url)
        if Integration.objects.filter(tenant=tenant, name=name).exists():
            return
        integration = create_integration(
            tenant,
            "carddav",
            name,
            settings={"addressbook": book, "mark_source_items": True},
            credentials={
                "url": f"{self.carddav}/",
                "username": self.carddav_auth[0],
                "password": self.carddav_auth[1],
            },
            actor=self.admin,
            queue_first_sync=False,
        )
        getattr(self, f"reach_{target}")(integration, book)
        integration.refresh_from_db()
        self.stdout.write(f"  {tenant.name} / {name}: {integration.status}")
        if integration.status != target:
            raise CommandError(f"{name} ended {integration.status}, expected {target}.")

    def fill_addressbook(self, book_url):
        """Create the address book and its contacts where they are missing (never overwrites one)."""
        found = requests.request("PROPFIND", book_url, headers={"Depth": "0"}, auth=self.carddav_auth, timeout=10)
        if found.status_code == 404:
            created = requests.request(
                "MKCOL",
                book_url,
                data=ADDRESSBOOK_MKCOL.encode(),
                headers={"Content-Type": "application/xml; charset=utf-8"},
                auth=self.carddav_auth,
                timeout=10,
            )
            if created.status_code != 201:
                raise CommandError(f"Could not create the address book {book_url}: HTTP {created.status_code}.")
        for uid, given, family, emails in CARDDAV_CONTACTS:
            response = requests.put(
                f"{book_url}{uid}.vcf",
                data=demo_vcard(uid, given, family, emails).encode(),
                headers={"Content-Type": "text/vcard; charset=utf-8", "If-None-Match": "*"},
                auth=self.carddav_auth,
                timeout=10,
            )
            if response.status_code not in (201, 204, 412):  # 412: the contact is there already
                raise CommandError(f"Could not store contact {uid} in {book_url}: HTTP {response.status_code}.")

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
