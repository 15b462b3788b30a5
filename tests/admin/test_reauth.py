"""Re-authentication links, the whole flow: sent from the console, opened and completed on the public page.

The happy paths run against the live vendor simulator: an `expired-token`
account refuses `good-key` (AUTH_EXPIRED) and accepts `new-key`. Every bad
token and bad credential must leave the integration exactly as it was.
"""

import re
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.core import mail
from django.test import Client
from django.utils import timezone

from integrations import reauth
from integrations import status as machine
from integrations.models import Integration, IntegrationEvent, ReauthLink, SyncSession
from integrations.services import perform_action
from tests.factories import IntegrationFactory, MembershipFactory, UserFactory

Status = Integration.Status
Kind = IntegrationEvent.Kind
live = pytest.mark.django_db(transaction=True)


def change_url(integration):
    return f"/admin/integrations/integration/{integration.pk}/change/"


def reauth_url(token):
    return f"/reauth/{token}/"


def snapshot(integration):
    """Everything completing a link could change."""
    return {
        "row": Integration.objects.filter(pk=integration.pk).values().get(),
        "sessions": list(SyncSession.objects.filter(integration=integration).values_list("pk", "state")),
        "events": list(IntegrationEvent.objects.filter(integration=integration).values_list("pk", flat=True)),
        "links": list(ReauthLink.objects.filter(integration=integration).values().order_by("pk")),
        "log_entries": LogEntry.objects.count(),
    }


def link_states(client, integration):
    """The states the integration page shows for its links, by recipient."""
    page = client.get(change_url(integration)).content.decode()
    return dict(re.findall(r"to ([^\s:]+): <strong>(\w+)</strong>", page))


def kinds(integration):
    return list(
        IntegrationEvent.objects.filter(integration=integration).order_by("id").values_list("kind", flat=True)
    )


# -- the happy path ----------------------------------------------------------------------------


@live
def test_a_link_from_the_console_brings_an_auth_failing_integration_back(
    staff_client, support_user, make_integration, sync, settings
):
    integration = make_integration("expired-token")
    failed = sync(integration)
    assert (failed.state, failed.error_code_id) == ("failed", "AUTH_EXPIRED")
    assert integration.status == Status.AUTH_FAILING
    old_ciphertext = integration.credentials_ciphertext
    member = MembershipFactory(
        tenant=integration.tenant,
        user=UserFactory(username="ada", email="ada@customer.example"),
        role="admin",
    )
    console = staff_client(support_user)

    # Staff send the link to a tenant member; the page shows it once.
    sent = console.post(
        f"/admin/integrations/integration/{integration.pk}/action/send_reauth_link/",
        {"member": member.user.email},
    )
    assert sent.status_code == 200
    url = re.search(r'id="sc-reauth-url"[^>]*value="([^"]+)"', sent.content.decode()).group(1)
    token = url.rsplit("/", 2)[-2]
    assert url == settings.SITE_URL + reauth_url(token)
    assert [m.to for m in mail.outbox] == [["ada@customer.example"]]
    assert url in mail.outbox[0].body and url in mail.outbox[0].alternatives[0][0]
    link = ReauthLink.objects.get(integration=integration)
    assert link.token_hash == ReauthLink.hash_token(token)
    assert link_states(console, integration) == {"ada@customer.example": "sent"}

    # The customer opens it: no login, the page names the integration and the vendor.
    customer = Client()
    page = customer.get(reauth_url(token), follow=True)
    assert page.status_code == 200
    content = page.content.decode()
    assert f"Re-authenticate {integration.name}" in content
    assert integration.tenant.name in content
    assert 'name="api_key"' in content and 'type="password"' in content
    link.refresh_from_db()
    assert link.opened_at is not None and link.used_at is None
    assert link_states(console, integration) == {"ada@customer.example": "opened"}
    assert (
        integration.credentials_ciphertext
        == Integration.objects.get(pk=integration.pk).credentials_ciphertext
    )

    # The new key is checked with the vendor, saved, and a full sync runs (inline here).
    done = customer.post(reauth_url(token), {"api_key": "new-key"})

    assert done.status_code == 200
    assert "Thank you: the new credentials work" in done.content.decode()
    integration.refresh_from_db()
    assert integration.get_credentials() == {"api_key": "new-key"}
    assert integration.credentials_ciphertext != old_ciphertext
    assert "new-key" not in integration.credentials_ciphertext
    assert integration.credentials_expire_at == integration.credentials_set_at + timedelta(days=90)

    session = SyncSession.objects.filter(integration=integration).exclude(pk=failed.pk).get()
    assert (session.kind, session.trigger, session.state) == ("full", "reauth", "succeeded")
    assert f"(session {session.pk})" in done.content.decode()
    assert session.items_created == 120

    # Never succeeded before, and the first clean sync makes it active.
    assert integration.status == Status.ACTIVE
    assert integration.auth_failing_since is None
    assert integration.consecutive_unsuccessful == 0
    assert integration.last_session == session
    changes = IntegrationEvent.objects.filter(integration=integration, kind=Kind.STATUS_CHANGED).order_by(
        "id"
    )
    assert [(e.from_status, e.to_status) for e in changes] == [
        (Status.SETUP, Status.AUTH_FAILING),
        (Status.AUTH_FAILING, Status.ACTIVE),
    ]

    timeline = kinds(integration)
    for kind in (Kind.LINK_SENT, Kind.LINK_USED, Kind.CREDENTIALS_UPDATED):
        assert kind in timeline
    assert (
        timeline.index(Kind.LINK_SENT)
        < timeline.index(Kind.LINK_USED)
        < timeline.index(Kind.CREDENTIALS_UPDATED)
    )
    sent_event = IntegrationEvent.objects.get(integration=integration, kind=Kind.LINK_SENT)
    assert sent_event.actor == support_user
    used_event = IntegrationEvent.objects.get(integration=integration, kind=Kind.LINK_USED)
    assert "ada@customer.example" in used_event.note
    requested = (
        IntegrationEvent.objects.filter(integration=integration, kind=Kind.SYNC_REQUESTED)
        .order_by("id")
        .last()
    )
    assert requested.session == session

    link.refresh_from_db()
    assert link.used_at is not None
    assert link_states(console, integration) == {"ada@customer.example": "completed"}
    page = console.get(change_url(integration)).content.decode()
    assert "Re-authentication" in page  # the last session's trigger

    # Single use.
    again = Client().post(reauth_url(token), {"api_key": "new-key"})
    assert again.status_code == 410
    assert SyncSession.objects.filter(integration=integration).count() == 2

    # The page the customer opened named the vendor too.
    assert "Vendor simulator" in content


def test_the_public_page_names_the_integration_and_the_vendor(failing):
    integration, new = failing

    response = Client().get(reauth_url(new.token), follow=True)

    assert response.status_code == 200
    text = " ".join(response.content.decode().split())
    assert f"<h1>Re-authenticate {integration.name}</h1>" in text
    assert f"<p>{integration.tenant.name} · Vendor simulator</p>" in text
    assert "we check them with Vendor simulator before saving anything" in text


@live
def test_revoked_credentials_pause_syncs_until_a_link_brings_new_ones(
    staff_client, engineering_user, make_integration, sync
):
    integration = make_integration("expired-token")
    sync(integration)
    console = staff_client(engineering_user)
    response = console.post(
        f"/admin/integrations/integration/{integration.pk}/action/revoke_credentials/", {"reason": "leaked"}
    )
    assert response.status_code == 302
    integration.refresh_from_db()
    assert integration.status == Status.CREDENTIALS_INVALID and not integration.has_credentials
    sessions = SyncSession.objects.filter(integration=integration).count()

    response = console.post(f"/admin/integrations/integration/{integration.pk}/action/sync_now/", follow=True)
    assert "Syncs are paused until new credentials are saved" in response.content.decode()
    assert SyncSession.objects.filter(integration=integration).count() == sessions

    new = reauth.create_link(integration, recipient="ops@customer.example", created_by=engineering_user)
    done = Client().post(reauth_url(new.token), {"api_key": "new-key"})

    assert done.status_code == 200
    integration.refresh_from_db()
    assert integration.get_credentials() == {"api_key": "new-key"}
    assert integration.credentials_revoked_at is None
    assert integration.status == Status.ACTIVE
    last = SyncSession.objects.filter(integration=integration).order_by("-id").first()
    assert (last.trigger, last.state) == ("reauth", "succeeded")


# -- bad tokens ----------------------------------------------------------------------------------


@pytest.fixture
def failing(db, error_catalog):
    """An integration whose auth is failing, with a link sent to the customer."""
    now = timezone.now()
    integration = IntegrationFactory(
        status=Status.AUTH_FAILING,
        first_sync_finished_at=now - timedelta(days=1),
        last_outcome=Integration.Outcome.AUTH_FAILED,
        last_outcome_at=now - timedelta(hours=2),
        last_error_code="AUTH_EXPIRED",
        consecutive_unsuccessful=2,
        auth_failing_since=now - timedelta(hours=5),
        credentials={"api_key": "good-key"},
    )
    new = reauth.create_link(integration, recipient="it@customer.example", send=False)
    return integration, new


def try_link(token, data):
    client = Client()
    return client.get(reauth_url(token), follow=True), client.post(reauth_url(token), data)


def test_an_unknown_token_is_404(failing):
    integration, _ = failing
    before = snapshot(integration)

    for response in try_link("no-such-token", {"api_key": "new-key"}):
        assert response.status_code == 404
        assert "This link is not valid" in response.content.decode()
        assert "Nothing was changed." in response.content.decode()
    assert snapshot(integration) == before


def test_a_tampered_token_is_404(failing):
    integration, new = failing
    tampered = new.token[:-1] + ("A" if new.token[-1] != "A" else "B")
    before = snapshot(integration)

    for response in try_link(tampered, {"api_key": "new-key"}):
        assert response.status_code == 404
    assert snapshot(integration) == before
    assert snapshot(integration)["links"][0]["opened_at"] is None


def test_an_expired_link_is_410(failing, support_client):
    integration, new = failing
    ReauthLink.objects.filter(pk=new.link.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    before = snapshot(integration)

    for response in try_link(new.token, {"api_key": "new-key"}):
        assert response.status_code == 410
        assert "This link has expired" in response.content.decode()
    assert snapshot(integration) == before
    assert link_states(support_client, integration) == {"it@customer.example": "expired"}


def test_a_link_expires_after_72_hours(failing, settings):
    _, new = failing
    assert new.link.expires_at - new.link.created_at == timedelta(hours=72) == settings.REAUTH_LINK_VALID_FOR

    with pytest.raises(reauth.LinkUnusable) as late:
        reauth.find_link(new.token, now=new.link.created_at + timedelta(hours=72))
    assert late.value.http_status == 410
    assert reauth.find_link(new.token, now=new.link.created_at + timedelta(hours=71, minutes=59)) == new.link


def test_a_used_link_is_410(failing):
    integration, new = failing
    ReauthLink.objects.filter(pk=new.link.pk).update(used_at=timezone.now() - timedelta(minutes=5))
    before = snapshot(integration)

    for response in try_link(new.token, {"api_key": "new-key"}):
        assert response.status_code == 410
        assert "This link was already used" in response.content.decode()
    assert snapshot(integration) == before


def test_a_link_replaced_by_a_newer_one_is_410(failing):
    integration, older = failing
    newer = reauth.create_link(integration, recipient="it@customer.example", send=False)
    before = snapshot(integration)

    for response in try_link(older.token, {"api_key": "new-key"}):
        assert response.status_code == 410
        assert "This link was replaced" in response.content.decode()
    assert snapshot(integration) == before
    assert Client().get(reauth_url(newer.token), follow=True).status_code == 200


def test_a_link_of_a_deleted_integration_is_410(failing):
    integration, new = failing
    perform_action(integration.pk, machine.Action.DELETE)
    before = snapshot(integration)

    for response in try_link(new.token, {"api_key": "new-key"}):
        assert response.status_code == 410
    assert snapshot(integration) == before


def test_an_empty_form_is_400(failing):
    integration, new = failing
    Client().get(reauth_url(new.token), follow=True)  # opening it is the one change a GET makes
    before = snapshot(integration)

    response = Client().post(reauth_url(new.token), {"api_key": ""})

    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert snapshot(integration) == before


# -- bad credentials, checked with the vendor -----------------------------------------------------------


@pytest.fixture
def simulated(make_integration):
    """An expired-token simulator integration with a link; the vendor is asked before anything is saved."""
    integration = make_integration("expired-token")
    new = reauth.create_link(integration, recipient="it@customer.example", send=False)
    return integration, new


@pytest.mark.parametrize(
    "key, reason",
    [
        ("wrong-key", "The API key is not valid"),
        ("good-key", "The API key has expired"),  # the old key, which the vendor no longer takes
    ],
)
def test_credentials_the_vendor_rejects_keep_the_old_ones(simulated, key, reason):
    integration, new = simulated
    customer = Client()
    customer.get(reauth_url(new.token), follow=True)
    before = snapshot(integration)

    response = customer.post(reauth_url(new.token), {"api_key": key})

    assert response.status_code == 400
    content = response.content.decode()
    assert "The vendor rejected these credentials." in content
    assert reason in content
    assert "Your old credentials were kept." in content
    assert key not in content  # the secret is not echoed back
    assert snapshot(integration) == before
    integration.refresh_from_db()
    assert integration.get_credentials() == {"api_key": "good-key"}

    # The link still works for the right key.
    assert customer.get(reauth_url(new.token), follow=True).status_code == 200
    response = customer.post(reauth_url(new.token), {"api_key": "new-key"})
    assert response.status_code == 200
    integration.refresh_from_db()
    assert integration.get_credentials() == {"api_key": "new-key"}
    session = SyncSession.objects.get(integration=integration)
    assert (session.kind, session.trigger) == ("full", "reauth")


def test_a_vendor_that_cannot_answer_changes_nothing(simulated, vendor_simulator):
    integration, new = simulated
    vendor_simulator.control(integration.settings["account"], fail=True)
    before = snapshot(integration)
    try:
        response = Client().post(reauth_url(new.token), {"api_key": "new-key"})
    finally:
        vendor_simulator.control(integration.settings["account"], recover=True)

    assert response.status_code == 400
    assert "The vendor could not check the credentials right now" in response.content.decode()
    assert snapshot(integration) == before


# -- the console shows each link's life ----------------------------------------------------------------


def test_the_console_shows_each_links_state(failing, support_client):
    integration, _ = failing
    ReauthLink.objects.filter(integration=integration).delete()
    now = timezone.now()

    def link(recipient, hours_ago, **fields):
        ReauthLink.objects.create(
            integration=integration,
            token_hash=ReauthLink.hash_token(recipient),
            recipient=recipient,
            created_at=now - timedelta(hours=hours_ago),
            expires_at=now - timedelta(hours=hours_ago) + timedelta(hours=72),
            **fields,
        )

    link("sent@customer.example", 1)
    link("opened@customer.example", 2, opened_at=now - timedelta(hours=1))
    link(
        "completed@customer.example", 3, opened_at=now - timedelta(hours=2), used_at=now - timedelta(hours=2)
    )
    link("revoked@customer.example", 4, revoked_at=now - timedelta(hours=3))
    link("expired@customer.example", 80)

    assert link_states(support_client, integration) == {
        "sent@customer.example": "sent",
        "opened@customer.example": "opened",
        "completed@customer.example": "completed",
        "revoked@customer.example": "revoked",
        "expired@customer.example": "expired",
    }
    listing = support_client.get("/admin/integrations/reauthlink/").content.decode()
    for state in ("sent", "opened", "completed", "revoked", "expired"):
        assert f'<td class="field-state">{state}</td>' in listing


@live
def test_an_integration_whose_key_was_rotated_recovers_through_a_link(make_integration, sync):
    integration = make_integration("invalid-key")
    failed = sync(integration)
    assert (failed.error_code_id, integration.status) == ("AUTH_INVALID", Status.AUTH_FAILING)
    new = reauth.create_link(integration, recipient="it@customer.example", send=False)

    wrong = Client().post(reauth_url(new.token), {"api_key": "good-key"})
    assert wrong.status_code == 400
    done = Client().post(reauth_url(new.token), {"api_key": "new-key"})

    assert done.status_code == 200
    integration.refresh_from_db()
    assert integration.get_credentials() == {"api_key": "new-key"}
    assert integration.status == Status.ACTIVE
    session = integration.last_session
    assert (session.kind, session.trigger, session.state) == ("full", "reauth", "succeeded")
