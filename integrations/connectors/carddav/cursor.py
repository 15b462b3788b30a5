"""The quick-sync cursor: each address book's sync-token, in the 200 characters the engine stores.

A book is known by `book_key` (a short hash of its path). The tokens travel
as compact JSON, their common prefix written once; a token that does not fit
is left out, so that book is read in full on the next sync.
"""

import hashlib
import json

CURSOR_LIMIT = 200


def book_key(path):
    return hashlib.sha256(path.encode()).hexdigest()[:8]


def encode_cursor(tokens, limit=CURSOR_LIMIT):
    """{book key: token} as compact JSON within `limit` characters; tokens that do not fit are left out."""
    if not tokens:
        return ""
    values = list(tokens.values())
    prefix = values[0]
    for value in values[1:]:
        while not value.startswith(prefix):
            prefix = prefix[:-1]
    if len(values) == 1:
        prefix = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
    kept = {}
    for key in sorted(tokens):
        trial = {**kept, key: tokens[key][len(prefix):]}
        text = json.dumps({"p": prefix, "t": trial}, separators=(",", ":"))
        if len(text) <= limit:
            kept = trial
    return json.dumps({"p": prefix, "t": kept}, separators=(",", ":")) if kept else ""


def decode_cursor(cursor):
    """{book key: token} of a cursor; {} for an empty or unreadable one (every book is then read in full)."""
    try:
        value = json.loads(cursor or "{}")
        prefix, tails = value.get("p", ""), value.get("t", {})
        return {str(key): prefix + str(tail) for key, tail in tails.items()}
    except (ValueError, AttributeError, TypeError):
        return {}
