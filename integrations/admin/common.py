"""Shared pieces of the support console: badges, relative times, paginators."""

from datetime import timedelta

from django.db import connections
from django.utils import timezone
from django.utils.html import format_html

from integrations.models import Integration, SyncSession
from integrations.statuses import DECLARATIONS
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


def duration_words(delta, parts=2):
    """'2 days 5 hours', '14 minutes', 'under a minute'."""
    seconds = int(max(delta.total_seconds(), 0))
    units = (("day", 86400), ("hour", 3600), ("minute", 60))
    words = []
    for name, size in units:
        count, seconds = divmod(seconds, size)
        if count:
            words.append(f"{count} {name}{'s' if count != 1 else ''}")
    if not words:
        return "under a minute"
    return " ".join(words[:parts])


def relative(moment, now=None):
    if moment is None:
        return "never"
    now = now or timezone.now()
    if moment > now:
        return f"in {duration_words(moment - now)}"
    return f"{duration_words(now - moment)} ago"


def is_postgresql():
    return connections["default"].vendor == "postgresql"


DAY = timedelta(days=1)
