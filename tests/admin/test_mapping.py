"""Account mapping through the real admin forms ends in the same consequences as in the portal.

Mapping every account in the integration's inline completes setup and
queues the first sync; unmapping one makes the mapping incomplete again and
syncs are refused; the AccountMapping form does the same.
"""

import pytest
from django.test import Client
from django.urls import reverse

from integrations.mapping import mapping_state
from integrations.models import AccountMapping, Integration, IntegrationEvent, SyncSession
from integrations.sync.starting import SyncRefused, start_sync
from tests.factories import IntegrationFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def root():
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def in_setup(error_catalog):
    integration = IntegrationFactory(
        status=Integration.Status.SETUP, mapping_complete=False, credentials={"api_key": "k"}, name="Pax8 billing"
    )
    for n in (1, 2):
        AccountMapping.objects.create(integration=integration, vendor_account_id=f"acct-{n}", vendor_account_name=f"Customer {n}")
    return integration


def change_form_data(integration, targets):
    """The integration change form as the browser posts it, with the mapping inline filled in."""
    mappings = list(integration.account_mappings.order_by("pk"))
    data = {
        "name": integration.name,
        "kind": integration.kind,
        # The simulator connector's one required setting (the form has one field per setting).
        "setting__account": integration.settings.get("account", "healthy"),
        "sync_interval": "01:00:00",
        "account_mappings-TOTAL_FORMS": str(len(mappings)),
        "account_mappings-INITIAL_FORMS": str(len(mappings)),
        "account_mappings-MIN_NUM_FORMS": "0",
        "account_mappings-MAX_NUM_FORMS": "1000",
        "_continue": "Save",
    }
    for n, (m, target) in enumerate(zip(mappings, targets)):
        data[f"account_mappings-{n}-id"] = str(m.pk)
        data[f"account_mappings-{n}-integration"] = str(integration.pk)
        data[f"account_mappings-{n}-tenant_account"] = "" if target == "ignore" else target
        if target == "ignore":
            data[f"account_mappings-{n}-ignored"] = "on"
    return data


def test_mapping_every_account_in_the_inline_queues_the_first_sync(root, in_setup, django_capture_on_commit_callbacks):
    url = reverse("admin:integrations_integration_change", args=[in_setup.pk])
    with django_capture_on_commit_callbacks() as callbacks:
        response = root.post(url, change_form_data(in_setup, ["north", "ignore"]))
    assert response.status_code == 302, response.content.decode()[:2000]

    in_setup.refresh_from_db()
    assert in_setup.mapping_complete
    assert mapping_state(in_setup).complete
    session = SyncSession.objects.get(integration=in_setup)
    assert (session.kind, session.trigger) == (SyncSession.Kind.FULL, SyncSession.Trigger.STAFF)
    assert callbacks, "the first sync is enqueued after commit"
    assert IntegrationEvent.objects.filter(integration=in_setup, kind=IntegrationEvent.Kind.MAPPING_CHANGED, actor__username="root").exists()


def test_unmapping_one_account_in_the_inline_makes_it_incomplete_and_refuses_syncs(root, in_setup):
    url = reverse("admin:integrations_integration_change", args=[in_setup.pk])
    root.post(url, change_form_data(in_setup, ["north", "south"]))
    in_setup.refresh_from_db()
    assert in_setup.mapping_complete
    SyncSession.objects.filter(integration=in_setup).update(state=SyncSession.State.SUCCEEDED)

    response = root.post(url, change_form_data(in_setup, ["north", ""]))

    assert response.status_code == 302
    in_setup.refresh_from_db()
    assert not in_setup.mapping_complete
    assert in_setup.status == Integration.Status.SETUP
    with pytest.raises(SyncRefused) as refused:
        start_sync(in_setup, trigger=SyncSession.Trigger.STAFF, enqueue=False)
    assert refused.value.code == "MAPPING_INCOMPLETE"


def test_the_account_mapping_form_has_the_same_consequences(root, in_setup):
    first, second = in_setup.account_mappings.order_by("pk")
    for mapping, target in ((first, "north"), (second, "south")):
        url = reverse("admin:integrations_accountmapping_change", args=[mapping.pk])
        response = root.post(url, {"tenant_account": target, "integration": in_setup.pk, "vendor_account_id": mapping.vendor_account_id, "vendor_account_name": mapping.vendor_account_name})
        assert response.status_code == 302, response.content.decode()[:2000]
    in_setup.refresh_from_db()
    assert in_setup.mapping_complete
    assert SyncSession.objects.filter(integration=in_setup).count() == 1

    root.post(reverse("admin:integrations_accountmapping_delete", args=[second.pk]), {"post": "yes"})
    root.post(
        reverse("admin:integrations_accountmapping_change", args=[first.pk]),
        {"tenant_account": "", "vendor_account_name": first.vendor_account_name},
    )
    in_setup.refresh_from_db()
    assert not in_setup.mapping_complete
