"""Tenants' API keys: created (shown once, stored as a hash), revoked, and the bookkeeping of a request."""

from django.utils import timezone

from audit import services as audit
from audit.models import AuditRecord
from integrations import status as machine
from integrations.models import ApiKey, Integration, Tenant
from integrations.services import perform_action


def create_api_key(tenant, name, *, created_by=None):
    """A new API key: returns (ApiKey, raw key). The raw key is shown once and never stored."""
    raw = ApiKey.generate()
    key = ApiKey.objects.create(
        tenant=tenant, name=name, key_prefix=raw[:10], key_hash=ApiKey.hash_key(raw), created_by=created_by
    )
    audit.record(
        AuditRecord.Action.API_KEY_CREATED, tenant=tenant, target=str(key), actor=created_by, changes={"key_id": key.pk}
    )
    return key, raw


def revoke_api_key(key, *, actor=None, now=None):
    """Revoke a key; False if it already was."""
    revoked = bool(ApiKey.objects.filter(pk=key.pk, revoked_at=None).update(revoked_at=now or timezone.now()))
    if revoked:
        audit.record(
            AuditRecord.Action.API_KEY_REVOKED, tenant=key.tenant_id, target=str(key), actor=actor, changes={"key_id": key.pk}
        )
    return revoked


def record_api_request(tenant, now=None):
    """Note the API request; reactivate integrations switched off for inactivity."""
    now = now or timezone.now()
    Tenant.objects.filter(pk=tenant.pk).update(last_api_request_at=now)
    reactivated = []
    for pk in Integration.objects.filter(tenant=tenant, deactivated_for_inactivity=True, deleted_at=None).values_list(
        "pk", flat=True
    ):
        try:
            perform_action(pk, machine.Action.REACTIVATE, note="Reactivated by an API request.", now=now)
        except machine.IllegalTransition:
            pass
        Integration.objects.filter(pk=pk).update(deactivated_for_inactivity=False)
        reactivated.append(pk)
    return reactivated
