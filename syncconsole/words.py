"""The product's words for numbers and times: one function per rule, for every page and message.

Pages never print a raw value a person has to decode: a timedelta
(`0:00:03.522673`), a count with the wrong plural (`1 requests`), "0
minutes", or a quoted message that runs into the next sentence. Any app may
use these (no app's models here); `integrations.words` adds the words for
statuses and sessions, and the template filters (`{% load words %}`,
integrations/templatetags/words.py) call both.
"""

from datetime import timedelta

from django.utils import timezone

# Units of a span in a sentence ("next sync in 14 minutes") and of a measured duration ("took 3.5 s").
_SPAN_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60))
_SHORT_UNITS = ((" day", " days", 86400), (" h", " h", 3600), (" min", " min", 60), (" s", " s", 1))


def counted(count, singular, plural=None):
    """'1 request', '3 requests', '1,200 items': the number with the noun that goes with it."""
    count = count or 0
    noun = singular if count == 1 else (plural or f"{singular}s")
    return f"{count:,} {noun}"


def duration_words(delta, parts=2):
    """A span in a sentence: '2 days 5 hours', '14 minutes', 'under a minute'."""
    seconds = int(max(delta.total_seconds(), 0))
    words = []
    for name, size in _SPAN_UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            words.append(counted(count, name))
    if not words:
        return "under a minute"
    return " ".join(words[:parts])


def natural_duration(value):
    """A measured duration: 'under 0.1 s', '3.5 s', '42 s', '2 min', '2 min 30 s', '1 h 5 min', '2 days 3 h'.

    Takes a timedelta or seconds; None (not started or not finished) is '-'.
    Under ten seconds keeps a tenth; above, the two largest units.
    """
    if value is None or value == "":
        return "-"
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    seconds = max(seconds, 0.0)
    if seconds < 0.05:
        return "under 0.1 s"
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = int(round(seconds))
    words = []
    for singular, plural, size in _SHORT_UNITS:
        count, whole = divmod(whole, size)
        if count:
            words.append(f"{count}{singular if count == 1 else plural}")
    return " ".join(words[:2])


def relative(moment, now=None):
    """When something happened or will, from now: 'just now', '5 minutes ago', 'in 2 hours', 'never'."""
    if not moment:  # None, or "" from a template's missing value
        return "never"
    now = now or timezone.now()
    if moment > now:
        return f"in {duration_words(moment - now)}"
    if now - moment < timedelta(minutes=1):
        return "just now"
    return f"{duration_words(now - moment)} ago"


def sentence(text):
    """Text that ends as a sentence, so that the next one does not run on: 'expired' -> 'expired.'."""
    text = (text or "").strip()
    if not text or text[-1] in ".!?\u2026":
        return text
    if text[-1] in "\"'\u201d)" and len(text) > 1 and text[-2] in ".!?":
        return text
    return f"{text}."
