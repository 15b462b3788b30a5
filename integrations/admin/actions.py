"""Staff actions on integrations: one definition serves the page's buttons and the bulk actions.

Each action names the permission it needs (Meta.permissions on Integration),
the form it asks for (a reason wherever the status changes), whether it is
destructive (a confirmation page), and the service call that does it. The
services check the current state and refuse what cannot be done; nothing is
changed then.
"""

from dataclasses import dataclass

from django import forms
from django.contrib.auth import get_user_model

from integrations import reauth, services
from integrations import status as machine
from integrations.models import Integration, SyncSession
from integrations.statuses import declaration
from integrations.sync.starting import SyncRefused, start_sync


class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=500, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), help_text="Recorded on the timeline."
    )


class ReleaseForm(forms.Form):
    note = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="What was reviewed. A sync is queued on release.",
    )


class QualityAssuranceForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))
    owner = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(is_staff=True, is_active=True).order_by("username"),
        required=False,
        help_text="Who reviews it.",
    )
    due = forms.DateField(required=False, help_text="YYYY-MM-DD", widget=forms.DateInput(attrs={"type": "date"}))


class ReauthLinkForm(forms.Form):
    member = forms.ChoiceField(required=False, label="Tenant member")
    email = forms.EmailField(required=False, label="Or any address")

    def __init__(self, *args, integration=None, **kwargs):
        super().__init__(*args, **kwargs)
        members = integration.tenant.memberships.select_related("user").order_by("-role", "user__username")
        self.fields["member"].choices = [("", "---")] + [
            (m.user.email, f"{m.user.get_full_name() or m.user.username} <{m.user.email}> ({m.role})")
            for m in members
            if m.user.email
        ]

    def clean(self):
        data = super().clean()
        recipient = data.get("email") or data.get("member")
        if not recipient:
            raise forms.ValidationError("Pick a tenant member or type an address.")
        data["recipient"] = recipient
        return data


@dataclass(frozen=True)
class ActionSpec:
    name: str
    label: str
    permission: str
    form: type | None = None
    destructive: bool = False
    bulk: bool = True

    def available(self, integration):
        return available(self.name, integration)

    @property
    def has_page(self):
        """Asks for something or needs a confirmation: a page before the POST."""
        return self.form is not None or self.destructive


def _sync(kind):
    def perform(integration, user, data):
        session = start_sync(integration, kind=kind, trigger=SyncSession.Trigger.STAFF, requested_by=user)
        return f"{session.get_kind_display()} sync queued (session {session.pk})."

    return perform


def _action(action, note_field="reason", done=""):
    def perform(integration, user, data):
        services.perform_action(integration.pk, action, actor=user, note=data.get(note_field, ""))
        return done

    return perform


def _enter_qa(integration, user, data):
    services.enter_quality_assurance(
        integration.pk, actor=user, reason=data["reason"], owner=data.get("owner"), due=data.get("due")
    )
    return "Moved to quality assurance."


def _release_qa(integration, user, data):
    _, session, refusal = services.release_quality_assurance(integration.pk, actor=user, note=data["note"])
    if session is None:
        return f"Released from quality assurance; no sync was queued: {refusal}"
    return "Released from quality assurance; a sync was queued."


def _pause(paused):
    def perform(integration, user, data):
        services.set_paused(integration.pk, paused, actor=user, reason=data.get("reason", ""))
        return "Syncs paused." if paused else "Syncs resumed."

    return perform


def _send_link(integration, user, data):
    return reauth.create_link(integration, recipient=data["recipient"], created_by=user)


Status = Integration.Status
ACTIONS = {
    spec.name: spec
    for spec in (
        ActionSpec("sync_now", "Sync now", "sync_integration"),
        ActionSpec("full_sync", "Full sync", "sync_integration"),
        ActionSpec("send_reauth_link", "Send re-authentication link", "send_reauth_link", ReauthLinkForm, bulk=False),
        ActionSpec("enter_qa", "Move to quality assurance", "manage_quality_assurance", QualityAssuranceForm),
        ActionSpec("release_qa", "Release from quality assurance", "manage_quality_assurance", ReleaseForm),
        ActionSpec("pause", "Pause", "pause_integration", ReasonForm),
        ActionSpec("resume", "Resume", "pause_integration", ReasonForm),
        ActionSpec("deactivate", "Deactivate", "deactivate_integration", ReasonForm, destructive=True),
        ActionSpec("reactivate", "Reactivate", "deactivate_integration", ReasonForm),
        ActionSpec("delete", "Delete", "delete_restore_integration", ReasonForm, destructive=True),
        ActionSpec("restore", "Restore", "delete_restore_integration", ReasonForm),
        ActionSpec("revoke_credentials", "Revoke credentials", "revoke_credentials", ReasonForm, destructive=True),
    )
}

PERFORM = {
    "sync_now": _sync(SyncSession.Kind.QUICK),
    "full_sync": _sync(SyncSession.Kind.FULL),
    "send_reauth_link": _send_link,
    "enter_qa": _enter_qa,
    "release_qa": _release_qa,
    "pause": _pause(True),
    "resume": _pause(False),
    "deactivate": _action(machine.Action.DEACTIVATE, done="Deactivated."),
    "reactivate": _action(machine.Action.REACTIVATE, done="Reactivated."),
    "delete": _action(machine.Action.DELETE, done="Deleted; restorable until purged."),
    "restore": _action(machine.Action.RESTORE, done="Restored."),
    "revoke_credentials": _action(
        machine.Action.CREDENTIALS_REVOKED, done="Credentials wiped; syncs are paused until a re-authentication."
    ),
}

# Beyond what the status allows (integrations.statuses), a few actions look at the integration's flags.
FLAG_CONDITIONS = {
    "pause": lambda i: not i.paused,
    "resume": lambda i: i.paused,
    "revoke_credentials": lambda i: i.has_credentials,
}


def available(name, integration):
    """Whether the staff action `name` applies to the integration as it is now."""
    if name not in declaration(integration.status).actions:
        return False
    return FLAG_CONDITIONS.get(name, lambda i: True)(integration)


REFUSALS = (machine.IllegalTransition, SyncRefused)


def refusal_text(exc):
    return getattr(exc, "message", None) or str(exc)


def make_form(spec, integration, data=None):
    if spec.form is None:
        return None
    if spec.form is ReauthLinkForm:
        return spec.form(data, integration=integration)
    return spec.form(data)


def perform(spec, integration, user, data):
    """Run the action; returns its message, or raises one of REFUSALS."""
    return PERFORM[spec.name](integration, user, data or {})
