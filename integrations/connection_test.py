"""Testing an integration's connection: can we reach the vendor, and does it accept the credentials?

A person asks (staff in the console, a tenant admin in the portal, a
tenant's program through the API) and waits for the answer, so the vendor is
asked through the web profile of the HTTP client (WEB_VENDOR_BUDGET_SECONDS
for everything, no Retry-After waits) and through the outbound policy like
every other vendor call. The connector checks the credentials, then lists the
vendor's accounts (cheap, and it proves read access). Nothing is synced:
no session, no record, no issue, no account mapping is written. What is
written is the timeline event (CONNECTION_TESTED, the result in its note) and,
for customers and their programs, an audit record; the console records staff
through its own log, which the audit trail copies.

Tests are limited per integration (RATE_LIMITS["connection_tests"]) so that
nobody can use them to hammer a vendor.
"""

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from django.db import transaction
from django.utils import timezone

from audit import services as audit
from audit.models import AuditRecord
from integrations import crypto, services
from integrations.connectors import errors
from integrations.connectors.base import get_connector_class
from integrations.connectors.http import VendorHttp
from integrations.models import IntegrationEvent
from issues.models import ErrorCode
from syncconsole import limits

logger = logging.getLogger(__name__)

RATE_LIMIT = "connection_tests"
OK_TITLE = "Connection works"


class NotTestable(Exception):
    """The integration cannot be tested as it is (deleted, switched off, no credentials); nothing called."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


@dataclass
class ConnectionResult:
    """What a connection test found, in plain words; `code` is a catalog code ("" when it worked)."""

    ok: bool
    code: str
    title: str
    message: str
    advice: str
    checked_at: datetime
    duration_ms: int
    # What was checked and passed, in order: "reached https://host", "credentials accepted", ...
    checks: list = field(default_factory=list)
    accounts: int | None = None

    @property
    def summary(self):
        """One line for the timeline: the title (and code), then the message."""
        if self.ok:
            return _ended(f"{self.title}: {self.message}")
        return _ended(f"{self.title} ({self.code}): {self.message}")

    @property
    def text(self):
        """What a person is told: the summary, then the catalog's advice."""
        return f"{self.summary} What to do: {_ended(self.advice)}" if self.advice else self.summary

    def as_dict(self):
        return {
            "ok": self.ok,
            "code": self.code,
            "title": self.title,
            "message": self.message,
            "advice": self.advice,
            "checked_at": self.checked_at,
            "duration_ms": self.duration_ms,
            "checks": list(self.checks),
        }


def refusal(integration):
    """Why the integration cannot be tested now, in plain words, or "" when it can.

    Reads only the row (no vendor call, no decryption): pages use it to offer the button.
    """
    if integration.deleted_at is not None:
        return "This integration is deleted; restore it before testing its connection."
    if integration.deactivated_at is not None:
        return "This integration is switched off; reactivate it before testing its connection."
    try:
        connector_class = get_connector_class(integration.connector)
    except KeyError:
        return f"The {integration.connector!r} connector is not installed here; the connection cannot be tested."
    # What the settings ask for: a REST vendor without authentication needs no credential.
    if connector_class.needs_credentials(integration.settings) and not integration.has_credentials:
        return (
            "No credentials are stored for this integration; re-authenticate first, then test the connection."
        )
    return ""


def test_connection(integration, *, actor=None, actor_label="", now=None):
    """Check reachability and credentials against the vendor, without syncing; a ConnectionResult.

    Raises NotTestable (nothing called, nothing recorded) when the integration
    cannot be tested, and `limits.Limited` when its tests are over the limit.
    A vendor's refusal or failure is a result (ok False with its catalog code
    and advice), never an exception; a bug of ours is INTERNAL_ERROR, logged
    with its traceback and told to the person without it.

    `actor` is the person (None for a tenant's program, named by
    `actor_label`). Staff are audited by the console's own log.
    """
    reason = refusal(integration)
    if reason:
        raise NotTestable(reason)
    connector_class = get_connector_class(integration.connector)
    try:
        credentials = integration.get_credentials()
    except crypto.InvalidToken:
        raise NotTestable(
            "The stored credentials cannot be read any more; re-authenticate, then test the connection."
        ) from None
    limits.check(RATE_LIMIT, integration.pk)

    checked_at = now or timezone.now()
    started = time.monotonic()
    checks, accounts = [], None
    try:
        with _WatchedHttp.for_integration(integration, web=True) as http:
            connector = connector_class(integration.settings, credentials, http)
            connector.save_credentials = lambda rotated: services.store_rotated_credentials(integration, rotated)
            try:
                connector.check_credentials()
            finally:
                checks.extend(f"reached {origin}" for origin in http.reached)
            checks.append("credentials accepted")
            accounts = len(connector.discover_accounts())
            checks.append(f"{accounts} vendor account{'' if accounts == 1 else 's'} visible")
    except errors.ConnectorError as exc:
        failure = (exc.code, exc.message)
    except Exception:
        logger.exception("connection test of integration %s failed on our side", integration.pk)
        failure = (
            "INTERNAL_ERROR",
            "Something went wrong on our side while testing the connection; it was logged for our engineers.",
        )
    else:
        failure = None
    duration_ms = int((time.monotonic() - started) * 1000)

    if failure is None:
        result = ConnectionResult(
            ok=True,
            code="",
            title=OK_TITLE,
            message=_sentence(", ".join(checks)),
            advice="",
            checked_at=checked_at,
            duration_ms=duration_ms,
            checks=checks,
            accounts=accounts,
        )
    else:
        code, message = failure
        entry = ErrorCode.objects.filter(pk=code).only("title", "customer_advice").first()
        result = ConnectionResult(
            ok=False,
            code=code,
            title=entry.title if entry else code,
            message=message,
            advice=entry.customer_advice if entry else "",
            checked_at=checked_at,
            duration_ms=duration_ms,
            checks=checks,
        )
    _record(integration, result, actor=actor, actor_label=actor_label)
    return result


# pytest collects module-level functions named test_* from any module a test imports it into.
test_connection.__test__ = False


def _record(integration, result, *, actor, actor_label):
    note = f"Connection test: {result.summary} ({result.duration_ms} ms)"
    with transaction.atomic():
        IntegrationEvent.objects.create(
            integration=integration,
            kind=IntegrationEvent.Kind.CONNECTION_TESTED,
            actor=actor,
            from_status=integration.status,
            to_status=integration.status,
            note=note[:2000],
            created_at=result.checked_at,
            data={
                "ok": result.ok,
                "code": result.code,
                "duration_ms": result.duration_ms,
                "checks": result.checks,
            },
        )
        if actor is None or not actor.is_staff:
            audit.record(
                AuditRecord.Action.CUSTOMER_ACTION,
                tenant=integration.tenant_id,
                target=str(integration),
                actor=actor,
                actor_label=actor_label,
                changes={
                    "integration_id": integration.pk,
                    "action": "test_connection",
                    "ok": result.ok,
                    "code": result.code,
                    "duration_ms": result.duration_ms,
                    "message": f"Tested the connection: {result.summary}"[:1000],
                },
                now=result.checked_at,
            )


class _WatchedHttp(VendorHttp):
    """The vendor client, noting each origin that answered: never a path or a query (queries may carry tokens)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.reached = []

    def request(self, method, url, **kwargs):
        response = super().request(method, url, **kwargs)
        origin = _origin_text(url)
        if origin not in self.reached:
            self.reached.append(origin)
        return response


def _origin_text(url):
    """scheme://host[:port]: where a URL goes, without user, path or query (queries may carry tokens)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(parts.scheme)
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    return f"{parts.scheme}://{host}{port}"


def _sentence(text):
    return _ended(text[:1].upper() + text[1:])


def _ended(text):
    text = text.strip()
    return text if not text or text[-1] in ".!?" else text + "."
