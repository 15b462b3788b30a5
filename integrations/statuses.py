"""What each status means, declared once: its words, its badge, the syncs and the actions it allows.

`integrations.status` decides *which* status an integration is in (the pure
machine); this table says what that status *means* wherever it shows: the
console's badge, the customer's words and "what happens next", the API's
word, which syncs are refused and which staff actions are offered. Every
surface reads this table; a test walks each status through each surface.
"""

from dataclasses import dataclass, field

from integrations.models import Integration, SyncSession

Status = Integration.Status
Trigger = SyncSession.Trigger

EVERY_TRIGGER = frozenset(Trigger.values)
# Triggers that run even while scheduled syncs are held back (QA, pause).
STAFF_TRIGGERS = frozenset({Trigger.STAFF, Trigger.REAUTH, Trigger.RETRY})

# Staff actions whose availability depends on the status alone (the others,
# pause/resume and revoking credentials, also look at the integration's flags).
STAFF_ACTIONS = (
    "sync_now",
    "full_sync",
    "send_reauth_link",
    "enter_qa",
    "release_qa",
    "pause",
    "resume",
    "deactivate",
    "reactivate",
    "delete",
    "restore",
    "revoke_credentials",
)
_ON_A_LIVE_INTEGRATION = frozenset(STAFF_ACTIONS) - {"release_qa", "reactivate", "restore"}

# Causes a status's customer words tell apart (Declaration.meaning_by_cause, cause_of).
CREDENTIALS_REVOKED = "credentials_revoked"


@dataclass(frozen=True)
class SyncRefusal:
    """Syncs for triggers outside `allowed_triggers` are refused with this code and message."""

    code: str
    message: str
    allowed_triggers: frozenset = frozenset()


@dataclass(frozen=True)
class Declaration:
    status: str
    badge_colour: str
    headline: str  # the customer's words
    meaning: str
    api_word: str  # the stable word for programs
    next_step: str = ""  # what happens next, when the status alone says it ("" = from the schedule)
    refusal: SyncRefusal | None = None
    actions: frozenset = field(default_factory=frozenset)  # staff actions it allows
    needs_attention: bool = False
    # (cause, the customer's words for it) where one status has causes the customer must tell
    # apart: credentials revoked by staff have not "failed for several days" (`cause_of`).
    meaning_by_cause: tuple = ()

    @property
    def label(self):
        return Status(self.status).label

    def meaning_for(self, cause=""):
        """What the status means to the customer, for the cause that put the integration in it."""
        return dict(self.meaning_by_cause).get(cause, self.meaning)

    def refuses(self, trigger):
        """The refusal for a sync with this trigger, or None."""
        if self.refusal is None or trigger in self.refusal.allowed_triggers:
            return None
        return self.refusal


DECLARATIONS = {
    d.status: d
    for d in (
        Declaration(
            Status.SETUP,
            "#6b7280",
            "Setting up",
            "This integration is not syncing yet.",
            "setup",
            # The mapping decides the sentence: see what_next().
            actions=_ON_A_LIVE_INTEGRATION,
        ),
        Declaration(
            Status.ACTIVE,
            "#15803d",
            "Syncing normally",
            "Your data is up to date as of the last sync.",
            "ok",
            actions=_ON_A_LIVE_INTEGRATION,
        ),
        Declaration(
            Status.WARNINGS,
            "#b45309",
            "Syncing, some items need attention",
            "The last sync worked, but some records could not be synced as they are. See the Issues tab.",
            "warnings",
            actions=_ON_A_LIVE_INTEGRATION,
        ),
        Declaration(
            Status.FAILING,
            "#b91c1c",
            "Sync failing",
            "The last sync did not complete. We retry automatically.",
            "failing",
            actions=_ON_A_LIVE_INTEGRATION,
            needs_attention=True,
        ),
        Declaration(
            Status.UNKNOWN,
            "#7c3aed",
            "Sync in an unknown state",
            "We could not confirm how the last sync ended. Nothing was lost; the next sync runs as scheduled.",
            "unknown",
            actions=_ON_A_LIVE_INTEGRATION,
            needs_attention=True,
        ),
        Declaration(
            Status.AUTH_FAILING,
            "#c2410c",
            "Sign-in to the vendor failing",
            "The vendor no longer accepts the saved credentials. Re-authenticate to resume syncing.",
            "auth_failing",
            actions=_ON_A_LIVE_INTEGRATION,
            needs_attention=True,
        ),
        Declaration(
            Status.CREDENTIALS_INVALID,
            "#991b1b",
            "Paused: new credentials needed",
            "Sign-in has failed for several days, so syncs are paused until you re-authenticate.",
            "auth_failing",
            next_step="Syncs are paused until you re-authenticate.",
            meaning_by_cause=(
                (
                    CREDENTIALS_REVOKED,
                    "Our support team removed the saved credentials, so syncs are paused until you "
                    "re-authenticate.",
                ),
            ),
            refusal=SyncRefusal(
                "CREDENTIALS_INVALID",
                "Syncs are paused until new credentials are saved (re-authenticate).",
                frozenset({Trigger.REAUTH}),
            ),
            actions=_ON_A_LIVE_INTEGRATION,
            needs_attention=True,
        ),
        Declaration(
            Status.QUALITY_ASSURANCE,
            "#1d4ed8",
            "Under review by our team",
            "Our engineers are checking this integration's data before syncing resumes. No action needed from you.",
            "paused",
            next_step="Scheduled syncs resume when our review is done.",
            refusal=SyncRefusal(
                "QUALITY_ASSURANCE", "The integration is under quality assurance; only staff can run it.", STAFF_TRIGGERS
            ),
            actions=(_ON_A_LIVE_INTEGRATION - {"enter_qa"}) | {"release_qa"},
            needs_attention=True,
        ),
        Declaration(
            Status.INACTIVE,
            "#4b5563",
            "Switched off",
            "This integration does not sync.",
            "inactive",
            next_step="Nothing runs until the integration is reactivated.",
            refusal=SyncRefusal("INACTIVE", "The integration is inactive; reactivate it first."),
            actions=frozenset({"send_reauth_link", "pause", "resume", "reactivate", "delete", "revoke_credentials"}),
        ),
        Declaration(
            Status.DELETED,
            "#111827",
            "Deleted",
            "This integration was deleted.",
            "deleted",
            next_step="Nothing runs; staff can restore it until it is purged.",
            refusal=SyncRefusal("DELETED", "The integration is deleted; restore it first."),
            actions=frozenset({"restore"}),
        ),
    )
}


def declaration(status):
    return DECLARATIONS[status]


def cause_of(integration):
    """Why the integration is in its status, where the declaration words causes apart ("" otherwise)."""
    if integration.status == Status.CREDENTIALS_INVALID and integration.credentials_revoked_at is not None:
        return CREDENTIALS_REVOKED
    return ""
