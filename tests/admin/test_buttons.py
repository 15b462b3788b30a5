"""The integration page's buttons (integrations/admin/buttons.py): what destroys looks it, what cannot be done says why.

Delete, Revoke credentials and Deactivate used to look like Sync now, and
Sync now was offered while a sync ran or while the status refused syncs.
"""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.models import Integration, SyncSession
from tests.factories import IntegrationFactory, SyncSessionFactory

Status = Integration.Status
pytestmark = pytest.mark.django_db


def page(client, integration):
    response = client.get(f"/admin/integrations/integration/{integration.pk}/change/")
    assert response.status_code == 200
    return response


def live(**fields):
    now = timezone.now()
    values = {
        "status": Status.ACTIVE,
        "first_sync_finished_at": now,
        "last_outcome": Integration.Outcome.SUCCEEDED,
        "last_outcome_at": now,
        "credentials": {"api_key": "good-key"},
    }
    return IntegrationFactory(**{**values, **fields})


def button_html(content, name):
    match = re.search(rf'<(?:button|a)[^>]*id="sc-action-{name}"[^>]*>', content)
    assert match, name
    return match.group(0)


def test_destructive_actions_are_red_and_apart(engineering_client):
    response = page(engineering_client, live())
    content = response.content.decode()
    sc = response.context["sc"]

    assert {b.name for b in sc["destructive_buttons"]} == {"deactivate", "delete", "revoke_credentials"}
    assert not [b for b in sc["buttons"] if b.destructive]
    zone = re.search(r'<div class="sc-button-group sc-danger-zone" id="sc-destructive-actions">(.*?)</div>', content, re.S)
    assert zone
    for name in ("deactivate", "delete", "revoke_credentials"):
        assert f'id="sc-action-{name}"' in zone.group(1)
        assert "sc-danger" in button_html(content, name)
    for name in ("sync_now", "full_sync", "pause"):
        assert f'id="sc-action-{name}"' not in zone.group(1)
        assert "sc-danger" not in button_html(content, name)


def test_the_confirmation_page_of_a_destructive_action_is_red_too(engineering_client):
    integration = live()
    content = engineering_client.get(f"/admin/integrations/integration/{integration.pk}/action/delete/").content.decode()
    assert 'class="default sc-danger" value="Delete"' in content
    assert "This changes what syncs for the integration below." in content


def test_syncs_are_disabled_with_the_reason_while_a_session_runs(support_client):
    integration = live()
    session = SyncSessionFactory(
        integration=integration,
        state=SyncSession.State.RUNNING,
        started_at=timezone.now() - timedelta(seconds=5),
        items_seen=40,
        items_total=120,
    )

    content = page(support_client, integration).content.decode()

    reason = f"Session {session.pk} is already running: 40 of 120 items so far."
    for name in ("sync_now", "full_sync"):
        tag = button_html(content, name)
        assert "disabled" in tag and f'title="{reason}"' in tag
    assert f"Sync now, Full sync: {reason}" in content
    assert f'action="/admin/integrations/integration/{integration.pk}/action/sync_now/"' not in content


def test_syncs_are_disabled_with_the_statuss_refusal(support_client):
    integration = live(
        status=Status.CREDENTIALS_INVALID,
        last_outcome=Integration.Outcome.AUTH_FAILED,
        last_error_code="AUTH_EXPIRED",
        auth_failing_since=timezone.now() - timedelta(days=4),
    )

    content = page(support_client, integration).content.decode()

    refusal = "Syncs are paused until new credentials are saved (re-authenticate)."
    assert "disabled" in button_html(content, "sync_now") and refusal in button_html(content, "sync_now")
    assert f"Sync now, Full sync: {refusal}" in content


def test_an_inactive_integration_shows_why_it_cannot_sync(engineering_client):
    content = page(engineering_client, live(status=Status.INACTIVE, deactivated_at=timezone.now())).content.decode()

    assert "The integration is inactive; reactivate it first." in button_html(content, "sync_now")
    assert "disabled" not in button_html(content, "reactivate")


def test_nothing_to_revoke_is_said_and_the_button_disabled(engineering_client):
    content = page(engineering_client, live(credentials={})).content.decode()

    tag = button_html(content, "revoke_credentials")
    assert "disabled" in tag and "No credentials are stored: there is nothing to revoke." in tag
    assert "nothing to revoke" in content.split('id="sc-actions"')[1]


def test_a_disabled_button_posts_nothing(support_client):
    """Disabled buttons are not in a form; the action itself still refuses (and says why) if posted."""
    integration = live()
    SyncSessionFactory(integration=integration, state=SyncSession.State.QUEUED)
    content = page(support_client, integration).content.decode()
    assert '<button type="button" class="button" id="sc-action-sync_now" disabled' in content

    response = support_client.post(f"/admin/integrations/integration/{integration.pk}/action/sync_now/", follow=True)

    assert [m.message for m in response.context["messages"]][0].startswith("Sync now refused: Already syncing")
    assert SyncSession.objects.filter(integration=integration).count() == 1
