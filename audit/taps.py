"""Receivers for what Django itself announces: sign-ins and the admin's log entries.

These only copy facts into the audit trail; no business decision is taken here.
"""

from django.contrib.admin.models import ADDITION, CHANGE, DELETION

from audit.models import AuditRecord
from audit.services import record, tenant_of

FLAGS = {ADDITION: "added", CHANGE: "changed", DELETION: "deleted"}


def _address(request):
    from syncconsole.limits import client_address

    return (client_address(request) or None) if request is not None else None


def logged_in(sender, request, user, **kwargs):
    membership = getattr(user, "membership", None) if not user.is_staff else None
    record(
        AuditRecord.Action.LOGIN,
        actor=user,
        tenant=membership.tenant_id if membership else None,
        target="admin" if request is not None and request.path.startswith("/admin/") else "portal",
        address=_address(request),
    )


def login_failed(sender, credentials, request=None, **kwargs):
    username = str(credentials.get("username", ""))[:150]
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(username=username).select_related("membership").first()
    membership = getattr(user, "membership", None) if user is not None else None
    record(
        AuditRecord.Action.LOGIN_FAILED,
        actor_label=username or "(no user name)",
        tenant=membership.tenant_id if membership else None,
        target="admin" if request is not None and request.path.startswith("/admin/") else "portal",
        address=_address(request),
    )


def admin_log_entry(sender, instance, created, **kwargs):
    """Every staff change through the admin (forms and actions log one LogEntry each)."""
    if not created:
        return
    obj = None
    try:
        obj = instance.get_edited_object()
    except Exception:  # deleted, or a model without a row any more
        obj = None
    message = instance.get_change_message() if instance.change_message else ""
    record(
        AuditRecord.Action.STAFF_ACTION,
        actor=instance.user,
        tenant=tenant_of(obj) if obj is not None else None,
        target=f"{instance.content_type.name if instance.content_type_id else ''} {instance.object_id}: {instance.object_repr}".strip(),
        changes={"what": FLAGS.get(instance.action_flag, "changed"), "message": message[:1000]},
        now=instance.action_time,
    )
