"""vCards: the fields a contact keeps, the item rules, and the "Sync Error" marker.

`data` holds the parsed fields without the marker category, so marking a
contact does not make it look changed. Item rules: no family name in N is
ITEM_MISSING_FIELD; an email address Django's validator refuses is
ITEM_INVALID_VALUE; an address already met in this run (ignoring case) is
ITEM_DUPLICATE on the later contact. `with_marker` edits the vCard's text
line by line, so adding or removing the marker changes nothing but the
CATEGORIES line it edits (refolded at 75 octets); the card goes back with
CRLF line breaks.
"""

import hashlib
import re

import vobject
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from integrations.connectors.base import ItemProblem

MARKER = "Sync Error"


# -- fields -------------------------------------------------------------------


def _text(value):
    if isinstance(value, (list, tuple)):
        return " ".join(str(v).strip() for v in value if str(v).strip())
    return str(value or "").strip()


def _values(card, name):
    return [line.value for line in card.contents.get(name, [])]


def is_marker(category):
    return category.strip().casefold() == MARKER.casefold()


def _first(card, name):
    values = _values(card, name)
    return values[0] if values else None


def card_fields(card):
    """The fields we keep of a parsed vCard, and whether it carries the marker."""
    name = _first(card, "n")
    org = _first(card, "org")
    categories = [
        str(category).strip()
        for value in _values(card, "categories")
        for category in (value if isinstance(value, list) else [value])
    ]
    fields = {
        "uid": _text(_first(card, "uid")),
        "fn": _text(_first(card, "fn")),
        "n": {"family": _text(getattr(name, "family", "")), "given": _text(getattr(name, "given", ""))},
        "emails": [_text(v) for v in _values(card, "email") if _text(v)],
        "phones": [_text(v) for v in _values(card, "tel") if _text(v)],
        "org": "; ".join(part for part in map(_text, org if isinstance(org, list) else [org]) if part),
        "categories": [c for c in categories if c and not is_marker(c)],
    }
    return fields, any(is_marker(c) for c in categories)


def read_vcard(text):
    """(fields, carries the marker) of a vCard text; vobject raises many types on bad input."""
    return card_fields(vobject.readOne(text))


_UID_RE = re.compile(r"^UID(?:;[^:\r\n]*)?:([^\r\n]*)", re.IGNORECASE | re.MULTILINE)


def uid_of(text):
    match = _UID_RE.search(text)
    return match.group(1).strip() if match else ""


# -- the item rules -----------------------------------------------------------


def contact_id(uid, path):
    """A contact's external id: its UID (hashed when longer than 200 characters), else its path."""
    if not uid:
        return path[:200]
    return uid if len(uid) <= 200 else "sha256:" + hashlib.sha256(uid.encode()).hexdigest()


def contact_label(fields, external_id):
    return (
        fields["fn"]
        or " ".join(p for p in (fields["n"]["given"], fields["n"]["family"]) if p)
        or (fields["emails"][0] if fields["emails"] else external_id)
    )


def unreadable_problem(exc):
    return ItemProblem(
        "ITEM_INVALID_VALUE",
        f"The vCard could not be read: {str(exc)[:300] or type(exc).__name__}.",
        {"field": "vCard"},
    )


def contact_problems(external_id, label, fields, emails):
    """The problems of one contact.

    `emails` maps each normalised address met so far in this run to the
    (external id, label) of the first contact that had it; this contact's
    valid addresses are added to it.
    """
    problems = []
    if not fields["n"]["family"]:
        problems.append(
            ItemProblem(
                "ITEM_MISSING_FIELD",
                "The contact has no last name (the family part of its N property is empty).",
                {"field": "N.family"},
            )
        )
    for email in fields["emails"]:
        try:
            validate_email(email)
        except ValidationError:
            problems.append(
                ItemProblem(
                    "ITEM_INVALID_VALUE",
                    f"Email address {email!r} is not valid.",
                    {"field": "EMAIL", "value": email[:200]},
                )
            )
            continue
        normalized = email.casefold()
        first = emails.setdefault(normalized, (external_id, label))
        if first[0] != external_id:
            problems.append(
                ItemProblem(
                    "ITEM_DUPLICATE",
                    f"Email address {email} is also on contact {first[1]!r} ({first[0]}); "
                    "only the first contact keeps it.",
                    {"field": "EMAIL", "value": email[:200], "other_external_id": first[0]},
                )
            )
    return problems


# -- the "Sync Error" marker --------------------------------------------------

_CATEGORIES_RE = re.compile(r"^(?:[A-Za-z0-9-]+\.)?CATEGORIES[;:]", re.IGNORECASE)
_LINE_BREAK_RE = re.compile(r"\r\n|\r|\n")
CRLF = "\r\n"
FOLD_OCTETS = 75


def _logical_lines(text):
    """[(physical lines joined with CRLF, unfolded line)] of a vCard text, whatever its line breaks.

    A vCard read out of an XML answer has lost its CRs (XML parsers turn CRLF
    into LF), so the lines are split on any line break and written back with
    CRLF, as RFC 6350 and the server's own copy have them.
    """
    lines = []
    for line in _LINE_BREAK_RE.split(text):
        if line[:1] in (" ", "\t") and lines:
            raw, logical = lines[-1]
            lines[-1] = (raw + CRLF + line, logical + line[1:])
        else:
            lines.append((line, line))
    return lines


def fold(line, limit=FOLD_OCTETS):
    """A content line folded at `limit` octets (RFC 6350 3.2), never inside a UTF-8 sequence.

    Each continuation starts with a space, which counts towards its octets.
    """
    if len(line.encode("utf-8")) <= limit:
        return line
    parts, current, size, room = [], [], 0, limit
    for char in line:
        octets = len(char.encode("utf-8"))
        if size + octets > room and current:
            parts.append("".join(current))
            current, size, room = [], 0, limit - 1
        current.append(char)
        size += octets
    parts.append("".join(current))
    return (CRLF + " ").join(parts)


def _split_categories(value):
    """The comma-separated values of a CATEGORIES line, escapes kept as they are."""
    parts, current, escaped = [], "", False
    for char in value:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            current += char
            escaped = True
        elif char == ",":
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _unescape(value):
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def with_marker(text, wanted):
    """The vCard text with the "Sync Error" category added (wanted) or removed; None if already so.

    Only the CATEGORIES line that changes is rewritten (folded at 75 octets);
    every other line stays byte for byte, with CRLF line breaks.
    """
    out, present, end_at, first_categories = [], False, None, None
    for raw, logical in _logical_lines(text):
        if _CATEGORIES_RE.match(logical):
            head, _, value = logical.partition(":")
            values = _split_categories(value)
            kept = [v for v in values if not is_marker(_unescape(v))]
            if len(kept) != len(values):
                present = True
                if not wanted:
                    if any(v.strip() for v in kept):
                        out.append(fold(f"{head}:{','.join(kept)}"))
                    continue
            if first_categories is None:
                first_categories = (len(out), head, value)
        elif logical.strip().upper() == "END:VCARD":
            end_at = len(out)
        out.append(raw)
    if present == wanted:
        return None
    if wanted:
        if first_categories is not None:
            index, head, value = first_categories
            out[index] = fold(f"{head}:{value},{MARKER}" if value.strip() else f"{head}:{MARKER}")
        elif end_at is not None:
            out.insert(end_at, f"CATEGORIES:{MARKER}")
        else:
            return None
    return CRLF.join(out)
