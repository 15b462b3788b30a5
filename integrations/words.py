"""The words for an integration's statuses and sessions; the words for numbers and times are syncconsole.words.

The console's timeline says "Active → Quality assurance", not
"active -> quality_assurance". Template filters: integrations/templatetags/words.py.
"""

from integrations.models import Integration
from syncconsole.words import (  # noqa: F401 (the integrations' code reads every word from here)
    counted,
    duration_words,
    natural_duration,
    relative,
    sentence,
)


def status_label(value):
    """An integration status as people read it: 'Quality assurance', not 'quality_assurance'; '' for none."""
    if not value:
        return ""
    try:
        return Integration.Status(value).label
    except ValueError:
        return str(value).replace("_", " ").capitalize()


def status_change(from_status, to_status):
    """A timeline's status change: 'Active → Quality assurance', or 'Setup' for the first one."""
    if not from_status:
        return status_label(to_status)
    return f"{status_label(from_status)} \u2192 {status_label(to_status)}"


def items_with_issues(session):
    """How many items of a session could not be synced as they are: failed ones (unmapped) and warned ones."""
    return (session.items_failed or 0) + (session.items_warnings or 0)

