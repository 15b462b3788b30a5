"""The integration page's action buttons: which are offered, which are disabled and why, which destroy.

Every staff action the user holds the permission for and the status offers
(`ActionSpec.available`) is a button. The syncs are shown even when they
cannot run, disabled, with the reason as their text: a session already open,
or the status's refusal (`sync.starting.refusal_for`, the one the service
would answer with). Actions that take something away (Deactivate, Delete,
Revoke credentials: `ActionSpec.destructive`) are drawn apart, in red.
"""

from dataclasses import dataclass

from django.urls import reverse

from integrations import connection_test
from integrations.admin.actions import SPECS
from integrations.models import SyncSession
from integrations.statuses import declaration
from integrations.sync.starting import refusal_for
from integrations.words import counted

SYNC_ACTIONS = frozenset({"sync_now", "full_sync"})


@dataclass(frozen=True)
class Button:
    name: str
    label: str
    url: str
    posts: bool  # a form that POSTs at once; otherwise a link to the action's page
    destructive: bool = False
    disabled_reason: str = ""  # why it cannot be used now ("" = it can)
    help: str = ""  # what it does, as the button's title


def open_session_reason(session):
    """Why a sync cannot start while `session` is open, in words."""
    if session.state == SyncSession.State.QUEUED:
        return f"Session {session.pk} is already queued; it starts when a worker is free."
    progress = counted(session.items_seen, "item")
    if session.items_total:
        progress = f"{session.items_seen:,} of {counted(session.items_total, 'item')}"
    return f"Session {session.pk} is already running: {progress} so far."


def sync_refusal(integration, open_session):
    """Why staff cannot start a sync now, or "" when they can."""
    if open_session is not None:
        return open_session_reason(open_session)
    refused = refusal_for(integration, SyncSession.Trigger.STAFF)
    return refused.message if refused else ""


def _action_url(integration, name):
    return reverse("admin:integrations_integration_action", args=[integration.pk, name])


def action_buttons(integration, *, open_session, may_perform, may_test_connection):
    """(buttons, destructive buttons) for the page, in the order the actions are declared."""
    offered = declaration(integration.status).actions
    sync_reason = sync_refusal(integration, open_session)
    buttons = []
    for spec in SPECS:
        if not may_perform(spec):
            continue
        reason = ""
        if spec.name in SYNC_ACTIONS:
            reason = sync_reason
            if not reason and not spec.available(integration):
                continue
        elif spec.name == "revoke_credentials" and spec.name in offered and not integration.has_credentials:
            reason = "No credentials are stored: there is nothing to revoke."
        elif not spec.available(integration):
            continue
        buttons.append(
            Button(
                name=spec.name,
                label=spec.label,
                url=_action_url(integration, spec.name),
                posts=not spec.has_page,
                destructive=spec.destructive,
                disabled_reason=reason,
            )
        )
    if may_test_connection:
        buttons.append(
            Button(
                name="test_connection",
                label="Test connection",
                url=reverse("admin:integrations_integration_test_connection", args=[integration.pk]),
                posts=True,
                disabled_reason=connection_test.refusal(integration),
                help="Checks reachability and credentials; syncs nothing.",
            )
        )
    return [b for b in buttons if not b.destructive], [b for b in buttons if b.destructive]
