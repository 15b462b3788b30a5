"""The "Alerts" panel of the integration page: who gets this tenant's alerts, and each alert's delivery.

Registered with `integrations.admin.page_panels` in AppConfig.ready(), so the
integration page shows it without integrations importing alerts. Two
queries whatever the data size: the integration's latest alerts, and the
tenant's members who receive alerts.
"""

from dataclasses import dataclass

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse

from alerts.models import Alert
from alerts.recipients import tenant_recipients

RECENT = 10
State = Alert.State


@dataclass
class Delivery:
    """One alert as the panel shows it: what happened to its email, and what to do if it went wrong."""

    alert: Alert
    outcome: str  # sent, waiting, retrying, queued, held, failed
    fix: str = ""
    fix_url: str = ""
    fix_label: str = ""


def _fix_recipients(can_edit_tenant, tenant_id):
    url = reverse("admin:integrations_tenant_change", args=[tenant_id]) if can_edit_tenant else ""
    return {
        "fix": "No recipients: add an alert address, or let a member receive alerts.",
        "fix_url": url,
        "fix_label": "Tenant's alert addresses and members" if url else "",
    }


def delivery_of(alert, *, can_edit_tenant, can_send_test):
    """What the panel says about one alert."""
    if alert.state == State.SENT:
        return Delivery(alert, "sent")
    if alert.state == State.DIGEST:
        return Delivery(alert, "waiting")
    if alert.state == State.HELD:
        return Delivery(alert, "held")
    if alert.state == State.FAILED:
        if alert.failure == Alert.Failure.NO_RECIPIENTS:
            return Delivery(alert, "failed", **_fix_recipients(can_edit_tenant, alert.tenant_id))
        return Delivery(alert, "failed", fix=alert.last_error)
    if alert.last_error:  # pending or sending again after an SMTP failure
        url = reverse("admin:alerts_alert_test_email") if can_send_test else ""
        return Delivery(
            alert,
            "retrying",
            fix="The mail server did not take it; it is tried again. Check EMAIL_URL and send a test email.",
            fix_url=url,
            fix_label="Send a test email" if url else "",
        )
    return Delivery(alert, "queued")


def delivery_panel(request, integration, now):
    """The panel's HTML for the integration page (`integration.tenant` is loaded)."""
    alerts = list(
        Alert.objects.filter(integration=integration)
        .defer("context")
        .order_by("-created_at", "-id")[: RECENT + 1]
    )
    can_edit_tenant = request.user.has_perm("integrations.change_tenant")
    can_send_test = request.user.has_perm("alerts.view_alert")
    recipients = tenant_recipients(integration.tenant)
    context = {
        "deliveries": [
            delivery_of(a, can_edit_tenant=can_edit_tenant, can_send_test=can_send_test) for a in alerts[:RECENT]
        ],
        "more": len(alerts) > RECENT,
        "all_url": reverse("admin:alerts_alert_changelist") + f"?integration__id__exact={integration.pk}",
        "recipients": recipients,
        "no_recipients": None if recipients else _fix_recipients(can_edit_tenant, integration.tenant_id),
        "digest_minutes": round(settings.ALERT_DIGEST_WINDOW.total_seconds() / 60, 1),
    }
    return render_to_string("admin/alerts/delivery_panel.html", context, request=request)
