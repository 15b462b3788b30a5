"""The sync interval on the integration's console page in words: "every 1 hour", not "1:00:00".

Staff who may change the integration type the interval as Django's duration
field reads it (hours:minutes:seconds); the words of the value stand beside
the box and the help says how to write the usual ones. Staff who only read
the page see the words alone.
"""

from datetime import timedelta

from django import forms
from django.utils.dateparse import parse_duration
from django.utils.html import format_html

from integrations.words import counted, duration_words

HELP = (
    "Hours:minutes:seconds, with days first if any: 00:15:00 is every 15 minutes, "
    "01:00:00 every hour, 1 00:00:00 every day."
)


def interval_words(value):
    """'every 1 hour', 'every 15 minutes', 'every 1 day 6 hours'; '' for an empty or unreadable value."""
    if isinstance(value, str):
        value = parse_duration(value.strip())
    if not isinstance(value, timedelta) or value <= timedelta(0):
        return ""
    if value < timedelta(minutes=1):
        return f"every {counted(int(value.total_seconds()), 'second')}"
    return f"every {duration_words(value, parts=3)}"


class IntervalInput(forms.TextInput):
    """The duration box, followed by what the saved (or typed) value means in words."""

    def render(self, name, value, attrs=None, renderer=None):
        box = super().render(name, value, attrs, renderer)
        words = interval_words(value)
        if not words:
            return box
        return format_html('{} <span class="sc-interval-words" id="sc-interval-words">{}</span>', box, words)
