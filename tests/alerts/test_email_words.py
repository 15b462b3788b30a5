"""The alert emails' words: counts with the noun that goes with them, never "sync(s)" or "day(s)".

The emails are rendered as they are sent (`alerts.messages.render`), text and
HTML, from the context an alert keeps.
"""

import pytest

from alerts import messages
from alerts.models import Alert


def rendered(**context):
    alert = Alert(
        pk=1,
        integration_id=7,
        subject="[SyncConsole] Example",
        context={
            "rule_label": "Example",
            "integration": "Acme billing",
            "tenant": "Acme",
            "status_words": "Active",
            "status_meaning": "Syncs run as expected.",
            "what_next": "Next sync in 14 minutes.",
            **context,
        },
    )
    _, text, html = messages.render([alert])
    return text, html


@pytest.mark.parametrize(
    ("failed", "words"),
    [(1, "after 1 unsuccessful sync."), (10, "after 10 unsuccessful syncs."), (1200, "after 1,200 unsuccessful syncs.")],
)
def test_a_recovery_counts_the_unsuccessful_syncs(failed, words):
    for body in rendered(rule_label="Recovered", failed_in_a_row=failed):
        assert words in body
        assert "(s)" not in body


@pytest.mark.parametrize(("days", "words"), [(1, "(1 day left)"), (6, "(6 days left)"), (0, "(0 days left)")])
def test_expiring_credentials_count_the_days_left(days, words):
    for body in rendered(rule_label="Credentials expiring", expires_at="2026-12-01T09:00:00+00:00", days_left=days):
        assert words in body
        assert "(s)" not in body
