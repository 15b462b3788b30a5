"""Credentials at rest: encrypted, rotatable, never shown."""

import logging

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from integrations import crypto
from integrations.models import Integration
from tests.factories import IntegrationFactory

pytestmark = pytest.mark.django_db

SECRET = "sk-live-7f3a9c-never-show-me"


def raw_column(integration):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT credentials_ciphertext FROM integrations_integration WHERE id = %s", [integration.pk]
        )
        return cursor.fetchone()[0]


def test_raw_column_does_not_contain_the_secret():
    integration = IntegrationFactory(credentials={"api_key": SECRET})
    stored = raw_column(integration)
    assert stored and SECRET not in stored
    assert Integration.objects.get(pk=integration.pk).get_credentials() == {"api_key": SECRET}


def test_repr_and_str_never_show_credentials():
    integration = IntegrationFactory(credentials={"api_key": SECRET})
    for text in (repr(integration), str(integration), str(integration.__dict__.get("name"))):
        assert SECRET not in text
    assert integration.credentials_ciphertext not in repr(integration)


def test_rotation_keeps_every_credential_readable():
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with override_settings(CREDENTIALS_KEYS=[old_key]):
        integrations = [IntegrationFactory(credentials={"api_key": f"{SECRET}-{n}"}) for n in range(5)]
        IntegrationFactory()  # one without credentials
        before = {i.pk: raw_column(i) for i in integrations}
    with override_settings(CREDENTIALS_KEYS=[new_key, old_key]):
        # Readable with the old key still listed, before and after rotating.
        for n, integration in enumerate(integrations):
            assert Integration.objects.get(pk=integration.pk).get_credentials() == {"api_key": f"{SECRET}-{n}"}
        call_command("rotate_credentials", stdout=open("/dev/null", "w"))
        for integration in integrations:
            assert raw_column(integration) != before[integration.pk]
    with override_settings(CREDENTIALS_KEYS=[new_key]):
        # The old key can go: everything reads with the new one alone.
        for n, integration in enumerate(integrations):
            assert Integration.objects.get(pk=integration.pk).get_credentials() == {"api_key": f"{SECRET}-{n}"}


def test_rotation_refuses_unreadable_credentials_and_changes_nothing():
    with override_settings(CREDENTIALS_KEYS=[Fernet.generate_key().decode()]):
        integration = IntegrationFactory(credentials={"api_key": SECRET})
        before = raw_column(integration)
    with override_settings(CREDENTIALS_KEYS=[Fernet.generate_key().decode()]):
        with pytest.raises(Exception, match="readable by none"):
            call_command("rotate_credentials")
    assert raw_column(integration) == before


def test_admin_page_never_shows_credentials(client, staff_user):
    integration = IntegrationFactory(credentials={"api_key": SECRET})
    client.force_login(staff_user)
    response = client.get(f"/admin/integrations/integration/{integration.pk}/change/")
    assert response.status_code == 200
    body = response.content.decode()
    assert SECRET not in body
    assert integration.credentials_ciphertext not in body
    assert "never shown" in body


def test_engine_logs_never_show_credentials(caplog, vendor_simulator, django_db_blocker):
    from integrations.onboarding import create_integration
    from tests.factories import TenantFactory

    caplog.set_level(logging.DEBUG)
    integration = create_integration(
        TenantFactory(),
        "simulator",
        "Logged",
        settings={"account": "invalid-key.t-crypto-log", "base_url": vendor_simulator.base_url},
        credentials={"api_key": SECRET},
        queue_first_sync=False,
    )
    assert integration.pk
    assert SECRET not in caplog.text


def test_set_credentials_records_dates():
    integration = IntegrationFactory()
    now = timezone.now()
    integration.set_credentials({"api_key": SECRET}, set_at=now)
    assert integration.credentials_set_at == now and integration.has_credentials
    integration.set_credentials({}, set_at=now)
    assert not integration.has_credentials and integration.credentials_set_at is None


def test_bad_keys_are_a_configuration_error():
    from django.core.exceptions import ImproperlyConfigured

    with override_settings(CREDENTIALS_KEYS=["not-a-key"]), pytest.raises(ImproperlyConfigured):
        crypto.encrypt_json({"a": 1})
