"""Admin actions answer wrong input with a message and change nothing."""

import pytest
from django.contrib.admin import helpers
from django.test import Client
from django.urls import reverse

from integrations.admin.integration import IntegrationAdmin
from integrations.models import Integration, IntegrationEvent
from issues.admin import SyncIssueAdmin
from tests.factories import IntegrationFactory, SyncIssueFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def root_client():
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def action_names(admin_class):
    return [action if isinstance(action, str) else action.__name__ for action in admin_class.actions]


@pytest.mark.parametrize("action", action_names(IntegrationAdmin))
def test_integration_bulk_actions_over_an_empty_search_say_so(root_client, action, error_catalog):
    integration = IntegrationFactory(status=Integration.Status.ACTIVE)
    url = reverse("admin:integrations_integration_changelist") + "?q=matches-nothing-at-all"

    # "Select all" over an empty search, with a stale row id from the page before.
    data = {"action": action, "select_across": "1", "index": "0", helpers.ACTION_CHECKBOX_NAME: [str(integration.pk)]}
    response = root_client.post(url, data, follow=True)

    assert response.status_code == 200
    assert "nothing was changed" in response.content.decode()
    integration.refresh_from_db()
    assert integration.status == Integration.Status.ACTIVE
    assert not IntegrationEvent.objects.exists()


@pytest.mark.parametrize("action", action_names(SyncIssueAdmin))
def test_issue_bulk_actions_over_an_empty_search_say_so(root_client, action, error_catalog):
    issue = SyncIssueFactory()
    url = reverse("admin:issues_syncissue_changelist") + "?q=matches-nothing-at-all"

    data = {"action": action, "select_across": "1", "index": "0", helpers.ACTION_CHECKBOX_NAME: [str(issue.pk)]}
    response = root_client.post(url, data, follow=True)

    assert response.status_code == 200
    assert "nothing was changed" in response.content.decode()
    issue.refresh_from_db()
    assert issue.state == "open"
