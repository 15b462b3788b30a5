"""Who gets a tenant's alerts: its alert addresses and the members who opted in."""

from integrations.models import Membership


def tenant_recipients(tenant):
    members = Membership.objects.filter(tenant=tenant, receives_alerts=True).exclude(user__email="")
    return sorted(set(tenant.alert_email_list()) | set(members.values_list("user__email", flat=True)))
