"""Shared pieces of the support console: badges, paginators; words for times come from integrations.words."""

from datetime import timedelta

from django.db import connections
from django.utils.html import format_html

from integrations.models import Integration, SyncSession
from integrations.statuses import DECLARATIONS
from integrations.words import duration_words, natural_duration, relative  # noqa: F401 (the console's words)
from syncconsole.admin_tools import (  # noqa: F401 (used by this app's admins)
    CappedCountPaginator,
    ReadOnlyAdmin,
)

SESSION_COLOURS = {
    SyncSession.State.SUCCEEDED: "#15803d",
    SyncSession.State.WARNINGS: "#d97706",
    SyncSession.State.FAILED: "#b91c1c",
    SyncSession.State.UNKNOWN: "#7c3aed",
    SyncSession.State.CANCELLED: "#9ca3af",
    SyncSession.State.QUEUED: "#60a5fa",
    SyncSession.State.RUNNING: "#2563eb",
}


def status_badge(status):
    label = Integration.Status(status).label if status in Integration.Status.values else status
    return format_html(
        '<span class="sc-badge" style="background:{}">{}</span>', DECLARATIONS[status].badge_colour if status in DECLARATIONS else "#6b7280", label
    )


def session_badge(state):
    label = SyncSession.State(state).label if state in SyncSession.State.values else state
    return format_html(
        '<span class="sc-badge" style="background:{}">{}</span>', SESSION_COLOURS.get(state, "#6b7280"), label
    )


def is_postgresql():
    return connections["default"].vendor == "postgresql"


DAY = timedelta(days=1)
