"""People in a tenant export: members, and whoever acted (requested a sync, resolved an issue, ...).

Only names and addresses travel, never a password hash. An import uses the
local user of the same username, or else the only one with that email
address; anyone else is created inactive, without a usable password, so
nobody can sign in as an imported person until staff decide so.
"""

from django.contrib.auth import get_user_model

from syncconsole.tenant_transfer.kinds import Kind, TransferError

FIELDS = ("username", "email", "first_name", "last_name")


def local_user(original_id, fields, context):
    """The local user standing for an exported one: matched, or created inactive."""
    User = get_user_model()
    username = fields.get("username")
    if not isinstance(username, str) or not username.strip():
        raise TransferError("no username.")
    email = fields.get("email") or ""
    user = User.objects.filter(username=username).first()
    if user is None and email:
        same_address = list(User.objects.filter(email__iexact=email)[:2])
        user = same_address[0] if len(same_address) == 1 else None
    if user is not None:
        context.users_matched.add(user.pk)
        return user.pk
    user = User(
        username=username,
        email=email,
        first_name=fields.get("first_name") or "",
        last_name=fields.get("last_name") or "",
        is_active=False,
    )
    user.set_unusable_password()
    user.save()
    context.users_created.add(user.pk)
    return user.pk


KINDS = [Kind("user", get_user_model(), only=FIELDS, match=local_user)]
LEFT_OUT = {}
