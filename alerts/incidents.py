"""Vendor-wide incidents: one connector failing with one code for many tenants at once.

Opened when integrations of at least INCIDENT_MIN_TENANTS tenants fail with
the same code within INCIDENT_WINDOW; each affected tenant gets one notice
and their repeated-failure alerts for that code are held back; resolved by
itself when none of those integrations fails with that code any more.
"""

from django.conf import settings
from django.db import IntegrityError, transaction

from alerts.models import Alert, Incident
from alerts.recipients import tenant_recipients
from alerts.rules import build, raise_alerts
from integrations import status as machine
from integrations.models import Integration, SyncSession


def _failing_with(connector, code, since):
    return Integration.objects.filter(
        connector=connector,
        deleted_at=None,
        last_outcome__in=machine.UNSUCCESSFUL,
        last_error_code=code,
        last_outcome_at__gte=since,
    )


def on_session_finished(integration, session, now):
    """Open, extend or resolve incidents for this connector; the open incident matching this failure, or None."""
    if session.state in (SyncSession.State.FAILED, SyncSession.State.UNKNOWN) and session.error_code_id:
        code = session.error_code_id
        incident = Incident.objects.filter(connector=integration.connector, error_code_id=code, resolved_at=None).first()
        if incident is None:
            failing = _failing_with(integration.connector, code, now - settings.INCIDENT_WINDOW)
            tenants = failing.values("tenant").distinct().count()
            if tenants < settings.INCIDENT_MIN_TENANTS:
                return None
            try:
                with transaction.atomic():
                    incident = Incident.objects.create(
                        connector=integration.connector, error_code_id=code, opened_at=now, tenants_affected=tenants
                    )
            except IntegrityError:  # another worker opened it a moment ago
                incident = Incident.objects.get(connector=integration.connector, error_code_id=code, resolved_at=None)
            for other in failing.select_related("tenant", "last_session__error_code"):
                notify(other, incident, now)
        else:
            notify(integration, incident, now)
        return incident
    if session.state in (SyncSession.State.SUCCEEDED, SyncSession.State.WARNINGS):
        for incident in Incident.objects.filter(connector=integration.connector, resolved_at=None):
            if not _failing_with(integration.connector, incident.error_code_id, incident.opened_at).exists():
                Incident.objects.filter(pk=incident.pk, resolved_at=None).update(
                    resolved_at=now, note=(incident.note + "\n" if incident.note else "") + "Resolved itself: the integrations sync cleanly again."
                )
    return None


def notify(integration, incident, now):
    """One notice per tenant and incident (a database constraint says so)."""
    if Alert.objects.filter(tenant_id=integration.tenant_id, incident=incident, rule=Alert.Rule.INCIDENT).exists():
        return
    Incident.objects.filter(pk=incident.pk).update(
        tenants_affected=Alert.objects.filter(incident=incident, rule=Alert.Rule.INCIDENT).values("tenant").distinct().count() + 1
    )
    alert = build(
        integration,
        Alert.Rule.INCIDENT,
        f"incident-{incident.pk}",
        now,
        recipients=tenant_recipients(integration.tenant),
        session=integration.last_session,
        incident=incident,
        extra={"incident_id": incident.pk, "error_code": incident.error_code_id},
    )
    try:
        with transaction.atomic():
            raise_alerts([alert])
    except IntegrityError:
        pass  # the tenant was told through another integration at the same moment


def open_incidents_for_tenant(tenant):
    return list(
        Incident.objects.filter(resolved_at=None, alerts__tenant=tenant, alerts__rule=Alert.Rule.INCIDENT)
        .select_related("error_code")
        .distinct()
    )
