"""What to do about an integration, declared once: by status, and by the kind of vendor.

The runbook's first steps for a sync whose outcome is unknown, and what a PSA
integration needs when it misbehaves, live in these two tables. The portal's
General tab reads the customer's words, the console's integration page the
support team's; each step says both. A step may apply only to some
integrations (`only_if`: one of CONDITIONS), so a customer whose integration
signs in with a password is not told to renew a token.

The error catalog (issues.ErrorCode) says what to do about one error code;
this says what to do about the integration as a whole. Where a status's
advice `supersedes_catalog`, the surfaces show it instead of the catalog's
advice for the last error (the status's steps, with their links, say what to
do about the integration; the catalog's advice for SYNC_LEASE_LOST and
SYNC_NOT_STARTED gives the same first steps in words since issues 0008, for
the emails and the Issues tab).
"""

from dataclasses import dataclass

from integrations.connectors.base import get_connector_class
from integrations.models import Integration

Status = Integration.Status

CUSTOMER = "customer"
SUPPORT = "support"

# Credentials that are a token or a key rather than a person's password: they
# expire, are rotated or replaced at the vendor, and re-authenticating fixes that.
TOKEN_CREDENTIALS = frozenset({"api_key", "client_secret", "refresh_token"})

# The statuses in which an integration needs someone to look at it (and warnings:
# something synced, something did not).
TROUBLED = frozenset({*Integration.NEEDS_ATTENTION, Status.WARNINGS})


@dataclass(frozen=True)
class Step:
    customer: str  # what the customer reads
    support: str  # what support reads
    only_if: str = ""  # a name of CONDITIONS; "" = always
    link: str = ""  # what the step is about, for a surface that can link it: sync, reauthenticate, mapping


@dataclass(frozen=True)
class Advice:
    key: str
    customer_title: str
    support_title: str
    steps: tuple
    statuses: frozenset = frozenset(Status.values)  # where advice by vendor kind shows
    supersedes_catalog: bool = False


@dataclass(frozen=True)
class Shown:
    """Advice as one audience reads it about one integration: a title and the steps that apply."""

    key: str
    title: str
    steps: tuple  # of (text, link)


BY_STATUS = {
    Status.UNKNOWN: Advice(
        "unknown-first-steps",
        "What you can do now",
        "First steps (runbook: unknown outcome)",
        (
            Step(
                "Run a sync now. Most unknown outcomes clear with the next sync that finishes.",
                "Force a sync (Sync now) and watch whether it finishes cleanly: most unknown outcomes clear with it.",
                link="sync",
            ),
            Step(
                "Re-authenticate: this integration signs in with a token or key, and a token the vendor "
                "replaced or expired can stop a sync without a clear answer.",
                "It signs in with a token or key: if the forced sync does not finish cleanly, send a "
                "re-authentication link (a replaced or expired token can end a session without an answer).",
                only_if="token",
                link="reauthenticate",
            ),
            Step(
                "Check the account mapping: every vendor account should be mapped or ignored.",
                "Check the account mapping: every vendor account mapped or ignored.",
                link="mapping",
            ),
            Step(
                "If many syncs run at this hour, wait for the busy window to pass: a queued sync starts "
                "once the syncs in front of it are done.",
                "If the queues are busy (a scheduled window), wait for them to drain before escalating: "
                "see the queues on the dashboard and the longest time queued under Checks.",
            ),
        ),
        supersedes_catalog=True,
    ),
}

BY_VENDOR_KIND = {
    "psa": Advice(
        "psa",
        "For a PSA",
        "PSA checklist",
        (
            Step(
                "Check the permissions of the API user in your PSA: it needs read access to every module "
                "we sync (companies, contacts). A security role changed in the PSA takes access away "
                "without any error at sign-in.",
                "Check the PSA API member's security role: read access to companies and contacts. A changed "
                "role removes access without failing the sign-in.",
            ),
            Step(
                "After a PSA migration or upgrade (a new site, codebase or hosting), re-verify the "
                "connection with Test connection, and re-authenticate if the API keys changed.",
                "After the customer's PSA migration (site, codebase or hosting), re-verify: Test connection, "
                "and a re-authentication link if the API keys changed.",
                link="reauthenticate",
            ),
            Step(
                "Then run a full sync, so that records changed during the migration are read again.",
                "Then run a full sync: a quick sync misses records changed during the migration.",
                link="full_sync",
            ),
        ),
        statuses=TROUBLED,
    ),
}


def _connector_class(integration):
    try:
        return get_connector_class(integration.connector)
    except KeyError:  # a connector that is not installed here: no kind, no credentials known
        return None


def vendor_kind(integration):
    """The kind of vendor: the connector's declaration, or "psa" for an integration recorded as one."""
    connector_class = _connector_class(integration)
    if integration.kind == Integration.Kind.PSA:
        return "psa"
    return connector_class.vendor_kind if connector_class else ""


def signs_in_with_token(integration):
    connector_class = _connector_class(integration)
    if connector_class is None:
        return False
    names = {spec.name for spec in connector_class.credential_fields_for(integration.settings or {})}
    return bool(names & TOKEN_CREDENTIALS)


CONDITIONS = {"token": signs_in_with_token}


def applicable(integration):
    """The Advice entries that apply to the integration now, status first."""
    found = []
    by_status = BY_STATUS.get(integration.status)
    if by_status is not None:
        found.append(by_status)
    by_kind = BY_VENDOR_KIND.get(vendor_kind(integration))
    if by_kind is not None and integration.status in by_kind.statuses:
        found.append(by_kind)
    return found


def advice_for(integration, audience):
    """What the audience (CUSTOMER or SUPPORT) should do about the integration: a list of Shown."""
    shown = []
    for advice in applicable(integration):
        steps = tuple(
            (step.customer if audience == CUSTOMER else step.support, step.link)
            for step in advice.steps
            if not step.only_if or CONDITIONS[step.only_if](integration)
        )
        title = advice.customer_title if audience == CUSTOMER else advice.support_title
        shown.append(Shown(advice.key, title, steps))
    return shown


def supersedes_catalog(integration):
    """True when the status's advice replaces the catalog's advice for the last error."""
    return any(advice.supersedes_catalog for advice in applicable(integration))
