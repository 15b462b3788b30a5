"""Refusals in the console: a page in the console's style that says which permission and group are needed.

Django answers a refused admin view with a bare "403 Forbidden". The
project's `handler403` (syncconsole/urls.py) sends refusals under /admin/ to
`permission_denied` here, which names the permission the view needed and the
staff groups that hold it (read from the database: groups are edited in the
console, migration 0005 of integrations only creates Support and
Engineering). Views that know what they refused raise `MissingPermission`;
for Django's own views (a changelist, a change page, add, delete, history)
the permission follows from the URL's name.
"""

from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.views import defaults

# The suffix of a ModelAdmin URL name -> the permission Django asks for it.
_DJANGO_VIEWS = {"changelist": "view", "change": "view", "history": "view", "add": "add", "delete": "delete"}


class MissingPermission(PermissionDenied):
    """A refusal that knows what it needed: `permission` as 'app_label.codename', `what` in words."""

    def __init__(self, permission, what=""):
        super().__init__(f"{what or 'This'} needs the permission {permission}.")
        self.permission = permission
        self.what = what


def _console_prefix():
    try:
        return reverse("admin:index")
    except NoReverseMatch:  # pragma: no cover - the console is always installed
        return "/admin/"


def _needed_permission(request, exception):
    """'app_label.codename' the refused view needed, or "" when it cannot be told."""
    if isinstance(exception, MissingPermission):
        return exception.permission
    match = getattr(request, "resolver_match", None)
    if match is None or not match.url_name:
        return ""
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        prefix = f"{opts.app_label}_{opts.model_name}_"
        if match.url_name.startswith(prefix):
            action = _DJANGO_VIEWS.get(match.url_name[len(prefix) :])
            return f"{opts.app_label}.{action}_{opts.model_name}" if action else ""
    return ""


def refusal_context(permission):
    """The permission's name and the groups holding it (two small queries)."""
    if not permission:
        return {"permission": None, "groups": []}
    app_label, _, codename = permission.partition(".")
    found = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
    groups = list(
        Group.objects.filter(permissions__content_type__app_label=app_label, permissions__codename=codename)
        .order_by("name")
        .values_list("name", flat=True)
    )
    return {"permission": found, "permission_code": permission, "groups": groups}


def permission_denied(request, exception=None):
    """handler403: the console's refusal page for /admin/, Django's answer elsewhere."""
    user = getattr(request, "user", None)
    if not request.path.startswith(_console_prefix()) or user is None or not user.is_active or not user.is_staff:
        return defaults.permission_denied(request, exception)
    permission = _needed_permission(request, exception)
    context = {
        **admin.site.each_context(request),
        "title": "You cannot do this",
        "what": getattr(exception, "what", ""),
        **refusal_context(permission),
    }
    return render(request, "admin/403.html", context, status=403)
