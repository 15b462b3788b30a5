"""Warnings about credentials that work today and are likely to stop working: a shared mailbox.

A sync that signs in as admin@, info@ or support@ shares that mailbox with
people who reset its password, switch on multi-factor sign-in or leave the
company, and the sync stops with them. The check warns and advises a
dedicated service account; it never refuses the credentials. It runs where
credentials are entered (the portal's re-authentication form, a
re-authentication link, `add_integration`) and among the console's checks.

Only the sign-in name is read: the credential every connector calls
`username` (the REST connector's Basic and header auth, the manifests,
CardDAV). Secrets are never read for this, and the warning names the pattern
matched, not the username, so no page shows a credential.

SHARED_MAILBOX_PATTERNS (a setting) lists the patterns: `admin@` matches that
mailbox name at any domain; anything else is a shell-style pattern on the
whole username (`*-shared@example.com`). Case does not matter.
"""

from dataclasses import dataclass
from fnmatch import fnmatchcase

from django.conf import settings

from integrations import crypto


USERNAME_FIELDS = ("username",)


@dataclass(frozen=True)
class SharedMailbox:
    field: str  # the credential's name, e.g. "username"
    pattern: str  # the SHARED_MAILBOX_PATTERNS entry it matched

    def text(self):
        return (
            f"The {self.field} looks like a shared mailbox or an admin account (it matches {self.pattern}): "
            "whoever else uses it may change its password or its sign-in rules, and the sync stops. "
            "Use a dedicated service account for this integration."
        )


def matching_pattern(username, patterns=None):
    """The first pattern of SHARED_MAILBOX_PATTERNS the username matches, or None."""
    name = (username or "").strip().lower()
    if not name:
        return None
    for pattern in settings.SHARED_MAILBOX_PATTERNS if patterns is None else patterns:
        wanted = pattern.strip().lower()
        if not wanted:
            continue
        if wanted.endswith("@") and not any(c in wanted for c in "*?["):
            if name.startswith(wanted) and "@" not in name[len(wanted) :]:
                return pattern.strip()
        elif fnmatchcase(name, wanted):
            return pattern.strip()
    return None


def shared_mailboxes(credentials):
    """A SharedMailbox for each sign-in name in the credentials that looks like a shared mailbox."""
    found = []
    for name in USERNAME_FIELDS:
        value = (credentials or {}).get(name)
        pattern = matching_pattern(value) if isinstance(value, str) else None
        if pattern:
            found.append(SharedMailbox(name, pattern))
    return found


def for_integration(integration):
    """The integration's stored credentials, checked; [] without credentials."""
    if not integration.has_credentials:
        return []
    try:
        credentials = integration.get_credentials()
    except crypto.InvalidToken:  # keys rotated away: the credentials cannot be read, other checks say so
        return []
    return shared_mailboxes(credentials)
