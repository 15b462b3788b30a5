"""Staff actions on integrations: one declaration each (SPECS) serves the page's buttons and the bulk actions.

Each ActionSpec names the permission it needs (Meta.permissions on
Integration; IntegrationAdmin has the `has_<codename>_permission` method that
`@admin.action(permissions=...)` calls), the form it asks for (a reason
wherever the status changes), whether it is destructive (a confirmation
page), and the service call that does it. Which statuses offer it is
`integrations.statuses`' business (`available`). The services check the
current state and refuse what cannot be done; nothing is changed then.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django import forms
from django.contrib.auth import get_user_model

from integrations import reauth, services
from integrations import status as machine
from integrations.models import SyncSession
from integrations.statuses import declaration
from integrations.sync.starting import SyncRefused, start_sync


class ActionForm(forms.Form):
    """What an action asks for: built with the integration it acts on (a bulk action's first one)."""

    def __init__(self, data=None, *, integration=None, **kwargs):
        super().__init__(data, **kwargs)


class ReasonForm(ActionForm):
    reason = forms.CharField(
        max_length=500, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), help_text="Recorded on the timeline."
    )


class ReleaseForm(ActionForm):
    note = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="What was reviewed. A sync is queued on release.",
    )


class QualityAssuranceForm(ActionForm):
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))
    owner = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(is_staff=True, is_active=True).order_by("username"),
        required=False,
        help_text="Who reviews it.",
    )
    due = forms.DateField(required=False, help_text="YYYY-MM-DD", widget=forms.DateInput(attrs={"type": "date"}))


class ReauthLinkForm(ActionForm):
    member = forms.ChoiceField(required=False, label="Tenant member")
    email = forms.EmailField(required=False, label="Or any address")

    def __init__(self, data=None, *, integration, **kwargs):
        super().__init__(data, integration=integration, **kwargs)
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


# -- what each action does -------------------------------------------------------
# Each takes (integration, user, cleaned form data) and returns the message shown
# to staff (send_reauth_link returns the new link instead: it is shown once).


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


# -- the declarations ------------------------------------------------------------


@dataclass(frozen=True)
class ActionSpec:
    """One staff action, declared once: the page's button, its action page and the bulk action read it.

    Whether it is offered comes from the status's declaration
    (`integrations.statuses`); `applies` narrows that for the few actions
    that also look at the integration's flags.
    """

    name: str  # in the URL (.../action/<name>/) and in statuses.STAFF_ACTIONS
    label: str
    permission: str  # a codename of Integration.Meta.permissions
    form: type[ActionForm] | None  # what it asks for (a reason wherever the status changes)
    run: Callable  # (integration, user, data) -> message; see "what each action does"
    destructive: bool = False  # a confirmation page even without a form
    bulk: bool = True  # also offered on the changelist's selected rows
    applies: Callable | None = None  # (integration) -> bool, beyond the status's declaration

    def available(self, integration):
        """Whether this action applies to the integration as it is now."""
        if self.name not in declaration(integration.status).actions:
            return False
        return self.applies is None or self.applies(integration)

    @property
    def has_page(self):
        """Asks for something or needs a confirmation: a page before the POST."""
        return self.form is not None or self.destructive


Action = machine.Action
Kind = SyncSession.Kind
SPECS = (
    ActionSpec(
        name="sync_now",
        label="Sync now",
        permission="sync_integration",
        form=None,
        run=_sync(Kind.QUICK),
    ),
    ActionSpec(
        name="full_sync",
        label="Full sync",
        permission="sync_integration",
        form=None,
        run=_sync(Kind.FULL),
    ),
    ActionSpec(
        name="send_reauth_link",
        label="Send re-authentication link",
        permission="send_reauth_link",
        form=ReauthLinkForm,
        run=_send_link,
        bulk=False,
    ),
    ActionSpec(
        name="enter_qa",
        label="Move to quality assurance",
        permission="manage_quality_assurance",
        form=QualityAssuranceForm,
        run=_enter_qa,
    ),
    ActionSpec(
        name="release_qa",
        label="Release from quality assurance",
        permission="manage_quality_assurance",
        form=ReleaseForm,
        run=_release_qa,
    ),
    ActionSpec(
        name="pause",
        label="Pause",
        permission="pause_integration",
        form=ReasonForm,
        run=_pause(True),
        applies=lambda i: not i.paused,
    ),
    ActionSpec(
        name="resume",
        label="Resume",
        permission="pause_integration",
        form=ReasonForm,
        run=_pause(False),
        applies=lambda i: i.paused,
    ),
    ActionSpec(
        name="deactivate",
        label="Deactivate",
        permission="deactivate_integration",
        form=ReasonForm,
        run=_action(Action.DEACTIVATE, done="Deactivated."),
        destructive=True,
    ),
    ActionSpec(
        name="reactivate",
        label="Reactivate",
        permission="deactivate_integration",
        form=ReasonForm,
        run=_action(Action.REACTIVATE, done="Reactivated."),
    ),
    ActionSpec(
        name="delete",
        label="Delete",
        permission="delete_restore_integration",
        form=ReasonForm,
        run=_action(Action.DELETE, done="Deleted; restorable until purged."),
        destructive=True,
    ),
    ActionSpec(
        name="restore",
        label="Restore",
        permission="delete_restore_integration",
        form=ReasonForm,
        run=_action(Action.RESTORE, done="Restored."),
    ),
    ActionSpec(
        name="revoke_credentials",
        label="Revoke credentials",
        permission="revoke_credentials",
        form=ReasonForm,
        run=_action(
            Action.CREDENTIALS_REVOKED,
            done="Credentials wiped; syncs are paused until a re-authentication.",
        ),
        destructive=True,
        applies=lambda i: i.has_credentials,
    ),
)
ACTIONS = {spec.name: spec for spec in SPECS}  # by name, for the URL


def available(name, integration):
    """Whether the staff action `name` applies to the integration as it is now."""
    spec = ACTIONS.get(name)
    return spec is not None and spec.available(integration)


REFUSALS = (machine.IllegalTransition, SyncRefused)


def refusal_text(exc):
    return getattr(exc, "message", None) or str(exc)


def make_form(spec, integration, data=None):
    return None if spec.form is None else spec.form(data, integration=integration)


def perform(spec, integration, user, data):
    """Run the action; returns its message, or raises one of REFUSALS."""
    return spec.run(integration, user, data or {})
