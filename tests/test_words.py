"""syncconsole/words.py: one rule per function, each against the raw value pages used to print."""

from datetime import timedelta

import pytest
from django.utils import timezone

from syncconsole.words import counted, duration_words, natural_duration, relative, sentence


@pytest.mark.parametrize(
    "count, singular, plural, expected",
    [
        (1, "request", None, "1 request"),
        (0, "request", None, "0 requests"),
        (3, "request", None, "3 requests"),
        (1200, "item", None, "1,200 items"),
        (1, "retry", "retries", "1 retry"),
        (2, "retry", "retries", "2 retries"),
        (None, "page", None, "0 pages"),
    ],
)
def test_counted_gives_the_noun_its_number(count, singular, plural, expected):
    assert counted(count, singular, plural) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        (timedelta(seconds=3, microseconds=522673), "3.5 s"),  # was "0:00:03.522673"
        (timedelta(milliseconds=12), "under 0.1 s"),
        (0.44, "0.4 s"),
        (timedelta(seconds=42.4), "42 s"),
        (timedelta(minutes=2), "2 min"),
        (timedelta(minutes=2, seconds=30), "2 min 30 s"),
        (timedelta(hours=1, minutes=5, seconds=9), "1 h 5 min"),
        (timedelta(days=1, hours=3), "1 day 3 h"),
        (timedelta(days=2, hours=3, minutes=4), "2 days 3 h"),
        (None, "-"),
        ("", "-"),
    ],
)
def test_a_measured_duration_reads_as_seconds_minutes_hours(value, expected):
    assert natural_duration(value) == expected
    assert ":" not in natural_duration(value)


def test_a_span_in_a_sentence_uses_whole_words():
    assert duration_words(timedelta(minutes=14, seconds=20)) == "14 minutes"
    assert duration_words(timedelta(hours=1, minutes=1)) == "1 hour 1 minute"
    assert duration_words(timedelta(seconds=20)) == "under a minute"


def test_a_moment_under_a_minute_ago_is_just_now():
    now = timezone.now()
    assert relative(now - timedelta(seconds=20), now) == "just now"  # was "since 0 minutes"
    assert relative(now, now) == "just now"
    assert relative(now - timedelta(minutes=1, seconds=5), now) == "1 minute ago"
    assert relative(now - timedelta(hours=5), now) == "5 hours ago"
    assert relative(now + timedelta(minutes=14, seconds=30), now) == "in 14 minutes"
    assert relative(None, now) == "never"
    assert relative("", now) == "never"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The vendor says the credentials expired: expired", "The vendor says the credentials expired: expired."),
        ("Done.", "Done."),
        ("Really?", "Really?"),
        ('It said "no."', 'It said "no."'),
        ("  spaced  ", "spaced."),
        ("", ""),
    ],
)
def test_a_quoted_message_ends_as_a_sentence(text, expected):
    assert sentence(text) == expected
