"""`{% load words %}`: the product's words in templates (the rules live in integrations/words.py)."""

from django import template

from integrations import words

register = template.Library()


@register.filter
def naturalduration(value):
    """{{ session.duration|naturalduration }} -> '3.5 s', '2 min'."""
    return words.natural_duration(value)


@register.filter
def ago(moment, now=None):
    """{{ issue.last_seen_at|ago }} -> 'just now', '5 minutes ago'; {{ r.created_at|ago:dashboard.now }} from a given now."""
    return words.relative(moment, now or None)


@register.filter
def counted(count, nouns):
    """{{ s.http_requests|counted:"request" }} -> '1 request'; an irregular plural after a comma: "entry,entries"."""
    singular, _, plural = nouns.partition(",")
    return words.counted(count, singular, plural or None)


@register.filter
def status_label(value):
    return words.status_label(value)


@register.simple_tag
def status_change(from_status, to_status):
    return words.status_change(from_status, to_status)


@register.filter
def sentence(text):
    return words.sentence(text)


@register.filter
def items_with_issues(session):
    return words.items_with_issues(session)
