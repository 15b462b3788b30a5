"""Writing audit records. Never pass a secret in `changes`: names, ids and what changed only."""

from django.utils import timezone

from audit.context import current
from audit.models import AuditRecord


def record(action, *, tenant=None, target="", changes=None, actor=None, actor_label="", address=None, now=None):
    """One audit record; the actor and address default to the current request's."""
    who = current()
    user = actor if actor is not None else who.user
    if actor_label:
        label = actor_label
    elif actor is not None:
        label = actor.get_username()
    else:
        label = who.label
    return AuditRecord.objects.create(
        created_at=now or timezone.now(),
        action=action,
        actor=user if getattr(user, "pk", None) else None,
        actor_label=label[:200],
        tenant_id=getattr(tenant, "pk", tenant),
        address=address or who.address,
        target=str(target)[:300],
        changes=changes or {},
    )


def tenant_of(obj):
    """The tenant an object belongs to (a tenant, anything with a tenant, anything of an integration), or None."""
    if obj.__class__.__name__ == "Tenant":
        return obj.pk
    if getattr(obj, "tenant_id", None):
        return obj.tenant_id
    return getattr(getattr(obj, "integration", None), "tenant_id", None)
