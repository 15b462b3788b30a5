"""Creating integrations and completing their setup (discovery and account mapping)."""

import logging

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from audit import services as audit
from audit.models import AuditRecord
from integrations import status as machine
from integrations.connectors import errors
from integrations.connectors.base import get_connector_class
from integrations.connectors.http import VendorHttp
from integrations.models import AccountMapping, Integration, IntegrationEvent, SyncSession
from integrations.services import perform_action, store_rotated_credentials
from integrations.sync.starting import SyncRefused, start_sync

logger = logging.getLogger(__name__)


class InvalidIntegration(ValueError):
    def __init__(self, problems):
        super().__init__(" ".join(problems))
        self.problems = problems


def validate(connector_key, settings, credentials):
    """(connector class, typed settings, typed credentials), or InvalidIntegration naming every problem."""
    try:
        connector_class = get_connector_class(connector_key)
    except KeyError as exc:
        raise InvalidIntegration([str(exc.args[0])]) from None
    settings, problems = connector_class.clean_settings(settings)
    if not problems:
        credentials, problems = connector_class.clean_credentials(settings, credentials)
    if problems:
        raise InvalidIntegration(problems)
    return connector_class, settings, credentials


def create_integration(tenant, connector_key, name, *, settings=None, credentials=None, actor=None, queue_first_sync=True):
    """Create an integration, discover its vendor accounts, and start the first sync when setup is complete.

    A connector that needs no mapping has every discovered account mapped to
    itself; one that needs mapping stays in setup until a person maps them.
    Discovery failing (vendor down, credentials refused) does not stop the
    creation: the first sync will say what is wrong.
    """
    connector_class, settings, credentials = validate(connector_key, settings or {}, credentials or {})
    now = timezone.now()
    needs_mapping = connector_class.requires_mapping(settings)
    with transaction.atomic():
        integration = Integration(tenant=tenant, connector=connector_key, name=name, settings=settings)
        if credentials:
            expire_at = now + connector_class.token_lifetime if connector_class.token_lifetime else None
            integration.set_credentials(credentials, set_at=now, expire_at=expire_at)
        integration.status_changed_at = now
        integration.status_reason = "Created; waiting for setup."
        integration.save()
        if credentials:
            audit.record(
                AuditRecord.Action.CREDENTIALS_CHANGED,
                tenant=tenant,
                target=str(integration),
                actor=actor,
                changes={"integration_id": integration.pk, "fields": sorted(credentials), "how": "created"},
                now=now,
            )
        IntegrationEvent.objects.create(
            integration=integration,
            kind=IntegrationEvent.Kind.CREATED,
            actor=actor,
            to_status=integration.status,
            note=f"Created with the {connector_key} connector.",
            created_at=now,
        )
    discover_accounts(integration)
    if needs_mapping:
        return integration
    with transaction.atomic():
        auto_map(integration)
        perform_action(integration.pk, machine.Action.MAPPING_COMPLETED, actor=actor, note="No mapping needed.")
    integration.refresh_from_db()
    if queue_first_sync:
        try:
            start_sync(integration, kind=SyncSession.Kind.FULL, trigger=SyncSession.Trigger.STAFF, requested_by=actor)
        except SyncRefused as exc:
            logger.info("first sync of integration %s not queued: %s", integration.pk, exc.message)
        integration.refresh_from_db()
    return integration


def discover_accounts(integration):
    """Ask the vendor for its accounts and record new ones unmapped; None if the vendor could not say."""
    connector_class = get_connector_class(integration.connector)
    with VendorHttp.for_integration(integration, web=True) as http:
        connector = connector_class(integration.settings, integration.get_credentials(), http)
        connector.save_credentials = lambda rotated: store_rotated_credentials(integration, rotated)
        try:
            accounts = connector.discover_accounts()
        except errors.ConnectorError as exc:
            logger.info("discovery for integration %s failed: %s %s", integration.pk, exc.code, exc.message)
            return None
    record_accounts(integration, accounts)
    return accounts


def auto_map(integration):
    """For connectors that need no mapping: each vendor account maps to itself."""
    return AccountMapping.objects.filter(integration=integration, tenant_account="", ignored=False).update(
        tenant_account=F("vendor_account_id")
    )


def record_accounts(integration, accounts):
    AccountMapping.objects.bulk_create(
        [AccountMapping(integration=integration, vendor_account_id=a.id, vendor_account_name=a.name) for a in accounts],
        ignore_conflicts=True,
    )


