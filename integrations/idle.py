"""Development tenants that stopped using the API: their integrations are switched off, and they are told.

The next API request switches them on again (integrations.api_keys.record_api_request).
"""

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from integrations import status as machine
from integrations.models import Integration, IntegrationEvent, Membership, Tenant
from integrations.services import perform_action
from integrations.words import counted


def deactivate_idle_development(now=None):
    """Switch off development tenants' integrations after DEVELOPMENT_INACTIVE_AFTER without an API request.

    Returns the integration ids it deactivated. Each gets a timeline event; the
    tenant's alert addresses and admins get one notice per tenant.
    """
    now = now or timezone.now()
    cutoff = now - settings.DEVELOPMENT_INACTIVE_AFTER
    idle_tenants = Tenant.objects.filter(environment=Tenant.Environment.DEVELOPMENT).filter(
        Q(last_api_request_at__lt=cutoff) | Q(last_api_request_at__isnull=True, created_at__lt=cutoff)
    )
    done = []
    for tenant in idle_tenants:
        recently_reactivated = IntegrationEvent.objects.filter(
            integration=OuterRef("pk"), kind=IntegrationEvent.Kind.REACTIVATED, created_at__gte=cutoff
        )
        # A reactivation by a person starts a new grace period.
        ids = list(
            Integration.objects.filter(tenant=tenant, deactivated_at=None, deleted_at=None)
            .exclude(Exists(recently_reactivated))
            .values_list("pk", flat=True)
        )
        names = []
        for pk in ids:
            note = f"No API request for {settings.DEVELOPMENT_INACTIVE_AFTER.days} days (development tenant)."
            try:
                integration = perform_action(pk, machine.Action.DEACTIVATE, note=note, now=now)
            except machine.IllegalTransition:
                continue
            Integration.objects.filter(pk=pk).update(deactivated_for_inactivity=True)
            names.append(integration.name)
            done.append(pk)
        if names:
            recipients = set(tenant.alert_email_list()) | set(
                Membership.objects.filter(tenant=tenant, role=Membership.Role.ADMIN)
                .exclude(user__email="")
                .values_list("user__email", flat=True)
            )
            if recipients:
                send_mail(
                    f"[SyncConsole] {counted(len(names), 'integration')} of {tenant.name} switched off",
                    f"Your development tenant {tenant.name} made no API request for "
                    f"{settings.DEVELOPMENT_INACTIVE_AFTER.days} days, so these integrations were switched off:\n\n"
                    + "\n".join(f"  - {name}" for name in names)
                    + "\n\nThe next API request with one of your keys switches them on again, "
                    f"or a tenant admin can reactivate them in the portal: {settings.SITE_URL}/portal/\n",
                    None,
                    sorted(recipients),
                    fail_silently=True,
                )
    return done


