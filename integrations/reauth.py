"""Re-authentication links: create, check, open, complete.

A link is single-use, expires after REAUTH_LINK_VALID_FOR, is revoked by a
newer link for the same integration, and is stored only as the SHA-256 of its
token. Completing it checks the new credentials against the vendor before
anything is saved; wrong credentials keep the old ones.
"""

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from audit import services as audit
from audit.models import AuditRecord
from integrations import crypto
from integrations import status as machine
from integrations.connectors import errors
from integrations.connectors.base import get_connector_class
from integrations.connectors.http import VendorHttp
from integrations.models import IntegrationEvent, ReauthLink, SyncSession
from integrations.services import perform_action, record_event
from integrations.sync.starting import SyncRefused, start_sync


class LinkUnusable(Exception):
    """The token names no usable link; `http_status` and a message for the page."""

    def __init__(self, reason, message, http_status):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.http_status = http_status


class CredentialsRejected(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.message = message


@dataclass
class NewLink:
    link: ReauthLink
    token: str
    url: str


def link_url(token):
    return settings.SITE_URL + reverse("reauth", args=[token])


def create_link(integration, *, recipient, created_by=None, now=None, send=True):
    """A new link for the integration; older unused links are revoked. Emails it when send."""
    now = now or timezone.now()
    if integration.deleted_at:
        raise machine.IllegalTransition("Cannot send a re-authentication link: the integration is deleted.")
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        ReauthLink.objects.filter(integration=integration, used_at=None, revoked_at=None).update(revoked_at=now)
        link = ReauthLink.objects.create(
            integration=integration,
            token_hash=ReauthLink.hash_token(token),
            created_by=created_by,
            recipient=recipient,
            created_at=now,
            expires_at=now + settings.REAUTH_LINK_VALID_FOR,
        )
        record_event(
            integration,
            IntegrationEvent.Kind.LINK_SENT,
            actor=created_by,
            note=f"Re-authentication link sent to {recipient}; valid until {link.expires_at:%Y-%m-%d %H:%M} UTC.",
            now=now,
        )
    url = link_url(token)
    if send:
        context = {"integration": integration, "url": url, "link": link, "site_url": settings.SITE_URL}
        transaction.on_commit(
            lambda: send_mail(
                f"Re-authenticate {integration.name} in SyncConsole",
                render_to_string("reauth/email.txt", context),
                None,
                [recipient],
                html_message=render_to_string("reauth/email.html", context),
            )
        )
    return NewLink(link, token, url)


def find_link(token, now=None):
    """The usable link for a token, or LinkUnusable saying why."""
    now = now or timezone.now()
    link = (
        ReauthLink.objects.select_related("integration", "integration__tenant")
        .filter(token_hash=ReauthLink.hash_token(token or ""))
        .first()
    )
    if link is None:
        raise LinkUnusable(
            "unknown", "This re-authentication link is not valid. Check that you copied all of it, or ask for a new one.", 404
        )
    if link.used_at:
        raise LinkUnusable("used", "This link was already used. Each link works once; ask support for a new one.", 410)
    if link.revoked_at:
        raise LinkUnusable("revoked", "A newer link was sent for this integration; use the most recent email.", 410)
    if link.expires_at <= now:
        raise LinkUnusable("expired", "This link has expired. Ask support for a new one.", 410)
    if link.integration.deleted_at:
        raise LinkUnusable("deleted", "This integration was deleted.", 410)
    return link


def mark_opened(link, now=None):
    if link.opened_at is None:
        ReauthLink.objects.filter(pk=link.pk, opened_at=None).update(opened_at=now or timezone.now())


def check_with_vendor(integration, credentials):
    """The credentials to save (typed; a refresh token the vendor rotated while checking included).

    Raises CredentialsRejected with the vendor's reason unless the vendor
    accepts them.
    """
    connector_class = get_connector_class(integration.connector)
    credentials, problems = connector_class.clean_credentials(integration.settings, credentials)
    if problems:
        raise CredentialsRejected(" ".join(problems))
    rotated = {}
    with VendorHttp.for_integration(integration, web=True) as http:
        connector = connector_class(integration.settings, credentials, http)
        connector.save_credentials = rotated.update
        try:
            connector.check_credentials()
        except (errors.AuthExpired, errors.AuthInvalid, errors.Forbidden, errors.DestinationRefused) as exc:
            raise CredentialsRejected(exc.message) from None
        except errors.ConnectorError as exc:
            raise CredentialsRejected(f"The vendor could not check the credentials right now: {exc.message}") from None
    return {**credentials, **rotated}


def complete(token, credentials, now=None):
    """Save checked credentials from a link, end the auth streak, and queue a full sync."""
    now = now or timezone.now()
    link = find_link(token, now)
    integration = link.integration
    credentials = check_with_vendor(integration, credentials)
    with transaction.atomic():
        # Used once, even by two submits at the same moment.
        if not ReauthLink.objects.filter(pk=link.pk, used_at=None, revoked_at=None).update(used_at=now):
            raise LinkUnusable("used", "This link was already used.", 410)
        record_event(
            integration, IntegrationEvent.Kind.LINK_USED, note=f"Link sent to {link.recipient} was used.", now=now
        )
        session = save_credentials(
            integration, credentials, note="New credentials saved through a re-authentication link.", now=now
        )
    return link, session


def save_credentials(integration, credentials, *, actor=None, note="", now=None):
    """Store checked credentials, end the auth streak, and queue a full sync (after commit)."""
    now = now or timezone.now()
    connector_class = get_connector_class(integration.connector)
    with transaction.atomic():
        integration.refresh_from_db()
        try:
            before = integration.get_credentials()
        except crypto.InvalidToken:  # unreadable: every field counts as new
            before = {}
        expire_at = now + connector_class.token_lifetime if connector_class.token_lifetime else None
        integration.set_credentials(credentials, set_at=now, expire_at=expire_at)
        audit.record(
            AuditRecord.Action.CREDENTIALS_CHANGED,
            tenant=integration.tenant_id,
            target=str(integration),
            actor=actor,
            # The names of the fields that changed, never their values.
            changes={
                "integration_id": integration.pk,
                "fields": sorted(k for k in set(before) | set(credentials) if before.get(k) != credentials.get(k)),
                "note": note[:500],
            },
            now=now,
        )
        integration.save(update_fields=["credentials_ciphertext", "credentials_set_at", "credentials_expire_at"])
        perform_action(integration.pk, machine.Action.CREDENTIALS_UPDATED, actor=actor, note=note, now=now)
        integration.refresh_from_db()
        # Revoked by staff or not, a link sent earlier is now pointless.
        ReauthLink.objects.filter(integration=integration, used_at=None, revoked_at=None).update(revoked_at=now)
        try:
            return start_sync(
                integration, kind=SyncSession.Kind.FULL, trigger=SyncSession.Trigger.REAUTH, requested_by=actor
            )
        except SyncRefused as exc:
            return exc.session


def link_state(link, now=None):
    """sent, opened, completed, revoked or expired: the link's life for the console."""
    now = now or timezone.now()
    if link.used_at:
        return "completed"
    if link.revoked_at:
        return "revoked"
    if link.expires_at <= now:
        return "expired"
    if link.opened_at:
        return "opened"
    return "sent"
