"""Staff actions end to end: log in, open the action page, POST, follow the redirect, check what changed.

Each action is tried as the group that may use it (Support: syncs and links;
Engineering: everything), refusals must change nothing, and the bulk actions
on the changelists show their confirmation page before they apply.
"""

import re
from datetime import date, timedelta

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.core import mail
from django.utils import timezone

from integrations import status as machine
from integrations.models import Integration, IntegrationEvent, ReauthLink, SyncSession
from integrations.services import enter_quality_assurance, perform_action, set_paused
from issues.models import SyncIssue
from tests.factories import (
    IntegrationFactory,
    MembershipFactory,
    SyncIssueFactory,
    SyncSessionFactory,
    UserFactory,
)

Status = Integration.Status
Kind = IntegrationEvent.Kind
live = pytest.mark.django_db(transaction=True)
CHANGELIST = "/admin/integrations/integration/"
ISSUES = "/admin/issues/syncissue/"


def change_url(integration):
    return f"/admin/integrations/integration/{integration.pk}/change/"


def action_url(integration, name):
    return f"/admin/integrations/integration/{integration.pk}/action/{name}/"


def shown(response):
    """The messages the page shows, as (level, text)."""
    return [(m.level_tag, m.message) for m in response.context["messages"]]


def active_integration(**fields):
    """An integration whose last sync succeeded, with consistent status facts."""
    now = timezone.now()
    values = {
        "status": Status.ACTIVE,
        "status_changed_at": now,
        "status_reason": "The last sync succeeded.",
        "first_sync_finished_at": now,
        "last_outcome": Integration.Outcome.SUCCEEDED,
        "last_outcome_at": now,
        "last_success_at": now,
        "credentials": {"api_key": "good-key"},
    }
    values.update(fields)
    return IntegrationFactory(**values)


def events(integration, kind):
    return list(IntegrationEvent.objects.filter(integration=integration, kind=kind).order_by("id"))


def log_entries(integration):
    return list(
        LogEntry.objects.filter(object_id=str(integration.pk), content_type__model="integration").order_by(
            "id"
        )
    )


def snapshot(integration):
    """Everything an action could change about one integration."""
    return {
        "row": Integration.objects.filter(pk=integration.pk).values().get(),
        "sessions": list(SyncSession.objects.filter(integration=integration).values_list("pk", "state")),
        "events": list(IntegrationEvent.objects.filter(integration=integration).values_list("pk", flat=True)),
        "links": list(
            ReauthLink.objects.filter(integration=integration).values_list("pk", "revoked_at", "used_at")
        ),
        "log_entries": len(log_entries(integration)),
    }


def post_action(client, integration, name, data=None):
    """POST an action from its page and follow the redirect back to the integration."""
    response = client.post(action_url(integration, name), data or {}, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain == [(change_url(integration), 302)]
    return response


def check_done(response, integration, user, *, label, message, event_kind, note):
    """The success message, the timeline event with actor and note, and the admin log entry."""
    assert ("success", message) in shown(response)
    event = events(integration, event_kind)[-1]
    assert event.actor == user
    assert event.note == note
    entry = log_entries(integration)[-1]
    assert entry.user == user
    assert entry.action_flag == CHANGE
    assert entry.change_message == f"{label}: {message}"
    return event


# -- syncs, against the simulator ------------------------------------------------------


@live
@pytest.mark.parametrize("role", ["support", "engineering"])
@pytest.mark.parametrize(
    "name, label, kind", [("sync_now", "Sync now", "quick"), ("full_sync", "Full sync", "full")]
)
def test_sync_actions_start_a_session_against_the_simulator(
    staff_client, users, make_integration, sync, role, name, label, kind
):
    integration = make_integration("healthy")
    first = sync(integration)
    assert integration.status == Status.ACTIVE
    client = staff_client(users[role])

    page = client.get(action_url(integration, name))
    assert page.status_code == 200
    assert label in page.content.decode()

    response = post_action(client, integration, name)

    session = SyncSession.objects.filter(integration=integration).exclude(pk=first.pk).get()
    assert (session.kind, session.trigger, session.requested_by) == (kind, "staff", users[role])
    # The inline broker ran it inside the request.
    assert session.state == SyncSession.State.SUCCEEDED
    integration.refresh_from_db()
    assert integration.status == Status.ACTIVE
    assert integration.last_session == session
    check_done(
        response,
        integration,
        users[role],
        label=label,
        message=f"{session.get_kind_display()} sync queued (session {session.pk}).",
        event_kind=Kind.SYNC_REQUESTED,
        note=f"{session.get_kind_display()} sync requested (Staff).",
    )
    assert events(integration, Kind.SYNC_REQUESTED)[-1].session == session


# -- re-authentication links -------------------------------------------------------------


def sent_url(response):
    match = re.search(r'id="sc-reauth-url"[^>]*value="([^"]+)"', response.content.decode())
    assert match, "the page does not show the link"
    return match.group(1)


@pytest.mark.parametrize("role", ["support", "engineering"])
@pytest.mark.parametrize("to_member", [True, False], ids=["tenant-member", "any-address"])
def test_send_reauth_link(staff_client, users, settings, django_capture_on_commit_callbacks, role, to_member):
    integration = active_integration()
    member = MembershipFactory(
        tenant=integration.tenant,
        user=UserFactory(username="carol", email="carol@customer.example"),
        role="admin",
    )
    MembershipFactory(user=UserFactory(username="mallory", email="mallory@elsewhere.example"))
    older = ReauthLink.objects.create(
        integration=integration,
        token_hash=ReauthLink.hash_token("older-token"),
        recipient="old@customer.example",
        created_at=timezone.now() - timedelta(hours=1),
        expires_at=timezone.now() + timedelta(hours=71),
    )
    client = staff_client(users[role])

    page = client.get(action_url(integration, "send_reauth_link"))
    assert page.status_code == 200
    choices = dict(page.context["form"].fields["member"].choices)
    assert "carol@customer.example" in choices
    assert "mallory@elsewhere.example" not in choices  # another tenant's member

    recipient = member.user.email if to_member else "it-desk@partner.example"
    data = {"member": recipient} if to_member else {"email": recipient}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(action_url(integration, "send_reauth_link"), data)

    assert response.status_code == 200
    url = sent_url(response)
    token = url.rsplit("/", 2)[-2]
    assert url == f"{settings.SITE_URL}/reauth/{token}/"
    link = ReauthLink.objects.exclude(pk=older.pk).get(integration=integration)
    assert (link.recipient, link.created_by) == (recipient, users[role])
    assert link.token_hash == ReauthLink.hash_token(token) != token
    assert link.expires_at == link.created_at + settings.REAUTH_LINK_VALID_FOR
    older.refresh_from_db()
    assert older.revoked_at == link.created_at

    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == [recipient]
    assert integration.name in email.subject
    assert url in email.body

    event = events(integration, Kind.LINK_SENT)[-1]
    assert event.actor == users[role]
    assert recipient in event.note
    entry = log_entries(integration)[-1]
    assert (entry.user, entry.change_message) == (
        users[role],
        f"Sent a re-authentication link to {recipient}.",
    )

    # Shown once: the integration page lists the link, never its URL.
    page = client.get(change_url(integration)).content.decode()
    assert recipient in page
    assert token not in page


def test_send_reauth_link_needs_a_recipient(support_client):
    integration = active_integration()
    before = snapshot(integration)

    response = support_client.post(action_url(integration, "send_reauth_link"), {"member": "", "email": ""})

    assert response.status_code == 400
    assert response.context["form"].non_field_errors() == ["Pick a tenant member or type an address."]
    assert snapshot(integration) == before
    assert mail.outbox == []


# -- engineering actions -------------------------------------------------------------------


def test_enter_quality_assurance(engineering_client, engineering_user):
    integration = active_integration()
    page = engineering_client.get(action_url(integration, "enter_qa"))
    assert page.status_code == 200
    assert set(page.context["form"].fields) == {"reason", "owner", "due"}

    response = post_action(
        engineering_client,
        integration,
        "enter_qa",
        {"reason": "Customer reports duplicated contacts", "owner": engineering_user.pk, "due": "2030-01-15"},
    )

    integration.refresh_from_db()
    assert integration.status == Status.QUALITY_ASSURANCE
    assert integration.quality_assurance_since is not None
    assert integration.quality_assurance_owner == engineering_user
    assert integration.quality_assurance_reason == "Customer reports duplicated contacts"
    assert integration.quality_assurance_due == date(2030, 1, 15)
    event = check_done(
        response,
        integration,
        engineering_user,
        label="Move to quality assurance",
        message="Moved to quality assurance.",
        event_kind=Kind.QA_ENTERED,
        note="Customer reports duplicated contacts",
    )
    assert (event.from_status, event.to_status) == (Status.ACTIVE, Status.QUALITY_ASSURANCE)
    change = events(integration, Kind.STATUS_CHANGED)[-1]
    assert (change.from_status, change.to_status, change.actor) == (
        Status.ACTIVE,
        Status.QUALITY_ASSURANCE,
        engineering_user,
    )
    page = response.content.decode()
    assert "Reason: Customer reports duplicated contacts" in page
    assert "due 2030-01-15" in page


def test_release_quality_assurance_queues_a_sync(engineering_client, engineering_user):
    integration = active_integration()
    enter_quality_assurance(integration.pk, actor=engineering_user, reason="review", owner=engineering_user)

    response = post_action(
        engineering_client, integration, "release_qa", {"note": "Mapping checked with the customer"}
    )

    integration.refresh_from_db()
    assert integration.status == Status.ACTIVE
    assert integration.quality_assurance_since is None
    assert integration.quality_assurance_owner is None
    assert integration.quality_assurance_reason == ""
    check_done(
        response,
        integration,
        engineering_user,
        label="Release from quality assurance",
        message="Released from quality assurance; a sync was queued.",
        event_kind=Kind.QA_RELEASED,
        note="Mapping checked with the customer",
    )
    session = SyncSession.objects.get(integration=integration)
    assert (session.state, session.trigger, session.requested_by) == ("queued", "staff", engineering_user)


def test_pause_and_resume(engineering_client, engineering_user):
    integration = active_integration()

    response = post_action(engineering_client, integration, "pause", {"reason": "Vendor maintenance tonight"})
    integration.refresh_from_db()
    assert (integration.paused, integration.paused_reason) == (True, "Vendor maintenance tonight")
    assert integration.status == Status.ACTIVE
    check_done(
        response,
        integration,
        engineering_user,
        label="Pause",
        message="Syncs paused.",
        event_kind=Kind.PAUSED,
        note="Vendor maintenance tonight",
    )
    assert "paused: Vendor maintenance tonight" in response.content.decode()

    response = post_action(engineering_client, integration, "resume", {"reason": "Maintenance over"})
    integration.refresh_from_db()
    assert (integration.paused, integration.paused_reason) == (False, "")
    check_done(
        response,
        integration,
        engineering_user,
        label="Resume",
        message="Syncs resumed.",
        event_kind=Kind.RESUMED,
        note="Maintenance over",
    )


@pytest.mark.parametrize(
    "off, on, off_status, off_label, on_label, off_kind, on_kind, off_message, on_message",
    [
        (
            "deactivate",
            "reactivate",
            Status.INACTIVE,
            "Deactivate",
            "Reactivate",
            Kind.DEACTIVATED,
            Kind.REACTIVATED,
            "Deactivated.",
            "Reactivated.",
        ),
        (
            "delete",
            "restore",
            Status.DELETED,
            "Delete",
            "Restore",
            Kind.DELETED,
            Kind.RESTORED,
            "Deleted; restorable until purged.",
            "Restored.",
        ),
    ],
)
def test_switch_off_and_back_on(
    error_catalog,
    engineering_client,
    engineering_user,
    off,
    on,
    off_status,
    off_label,
    on_label,
    off_kind,
    on_kind,
    off_message,
    on_message,
):
    integration = active_integration()
    SyncIssueFactory(integration=integration)

    page = engineering_client.get(action_url(integration, off))
    assert page.status_code == 200
    assert "Are you sure?" in page.content.decode()  # destructive: a confirmation page

    response = post_action(engineering_client, integration, off, {"reason": "Customer cancelled"})
    integration.refresh_from_db()
    assert integration.status == off_status
    event = check_done(
        response,
        integration,
        engineering_user,
        label=off_label,
        message=off_message,
        event_kind=off_kind,
        note="Customer cancelled",
    )
    assert (event.from_status, event.to_status) == (Status.ACTIVE, off_status)

    response = post_action(engineering_client, integration, on, {"reason": "Customer is back"})
    integration.refresh_from_db()
    assert integration.status == Status.ACTIVE
    assert integration.deleted_at is None and integration.deactivated_at is None
    event = check_done(
        response,
        integration,
        engineering_user,
        label=on_label,
        message=on_message,
        event_kind=on_kind,
        note="Customer is back",
    )
    assert (event.from_status, event.to_status) == (off_status, Status.ACTIVE)
    # Nothing the integration owns was lost on the way.
    assert integration.issues.count() == 1
    assert [(e.from_status, e.to_status) for e in events(integration, Kind.STATUS_CHANGED)] == [
        (Status.ACTIVE, off_status),
        (off_status, Status.ACTIVE),
    ]


def test_revoke_credentials_wipes_them_and_refuses_syncs(engineering_client, engineering_user):
    integration = active_integration()
    assert integration.has_credentials

    page = engineering_client.get(action_url(integration, "revoke_credentials"))
    assert "Are you sure?" in page.content.decode()
    response = post_action(
        engineering_client, integration, "revoke_credentials", {"reason": "Key leaked in a ticket"}
    )

    integration.refresh_from_db()
    assert integration.status == Status.CREDENTIALS_INVALID
    assert integration.credentials_ciphertext == ""
    assert integration.get_credentials() == {}
    assert integration.credentials_set_at is None and integration.credentials_expire_at is None
    assert integration.credentials_revoked_at is not None
    check_done(
        response,
        integration,
        engineering_user,
        label="Revoke credentials",
        message="Credentials wiped; syncs are paused until a re-authentication.",
        event_kind=Kind.CREDENTIALS_REVOKED,
        note="Key leaked in a ticket",
    )
    assert "No credentials stored." in response.content.decode()

    # Until someone re-authenticates, every sync is refused.
    before = snapshot(integration)
    for name, label in (("sync_now", "Sync now"), ("full_sync", "Full sync")):
        response = post_action(engineering_client, integration, name)
        assert (
            "error",
            f"{label} refused: Syncs are paused until new credentials are saved (re-authenticate). Nothing was changed.",
        ) in shown(response)
    assert snapshot(integration) == before


# -- permissions ---------------------------------------------------------------------------

ENGINEERING_ONLY = {
    # action: (how to get the integration where the action applies, the form)
    "enter_qa": (lambda i, u: None, {"reason": "review"}),
    "release_qa": (lambda i, u: enter_quality_assurance(i.pk, actor=u, reason="review"), {"note": "done"}),
    "pause": (lambda i, u: None, {"reason": "r"}),
    "resume": (lambda i, u: set_paused(i.pk, True, actor=u, reason="r"), {"reason": "r"}),
    "deactivate": (lambda i, u: None, {"reason": "r"}),
    "reactivate": (lambda i, u: perform_action(i.pk, machine.Action.DEACTIVATE, actor=u), {"reason": "r"}),
    "delete": (lambda i, u: None, {"reason": "r"}),
    "restore": (lambda i, u: perform_action(i.pk, machine.Action.DELETE, actor=u), {"reason": "r"}),
    "revoke_credentials": (lambda i, u: None, {"reason": "r"}),
}


@pytest.mark.parametrize("name", sorted(ENGINEERING_ONLY))
def test_support_is_refused_engineering_actions(support_client, engineering_user, name):
    prepare, data = ENGINEERING_ONLY[name]
    integration = active_integration()
    prepare(integration, engineering_user)
    before = snapshot(integration)

    assert support_client.get(action_url(integration, name)).status_code == 403
    assert support_client.post(action_url(integration, name), data).status_code == 403

    assert snapshot(integration) == before


def test_support_sees_only_the_buttons_it_may_use(staff_client, users):
    integration = active_integration()

    def buttons(role):
        page = staff_client(users[role]).get(change_url(integration))
        return {b.name for b in page.context["sc"]["buttons"] + page.context["sc"]["destructive_buttons"]}

    support_buttons, engineering_buttons = buttons("support"), buttons("engineering")

    # Testing the connection asks for the permission to sync.
    assert support_buttons == {"sync_now", "full_sync", "send_reauth_link", "test_connection"}
    assert engineering_buttons == {
        "sync_now",
        "full_sync",
        "send_reauth_link",
        "test_connection",
        "enter_qa",
        "pause",
        "deactivate",
        "delete",
        "revoke_credentials",
    }


def test_a_staff_user_without_a_group_may_not_act(db, staff_client):
    integration = active_integration()
    nobody = UserFactory(username="temp", is_staff=True)
    client = staff_client(nobody)
    before = snapshot(integration)

    assert client.post(action_url(integration, "sync_now")).status_code == 403

    assert snapshot(integration) == before


# -- refusals ----------------------------------------------------------------------------------


def queued_session(integration):
    SyncSessionFactory(integration=integration, state=SyncSession.State.QUEUED)


def deleted(integration):
    perform_action(integration.pk, machine.Action.DELETE)


def inactive(integration):
    perform_action(integration.pk, machine.Action.DEACTIVATE)


def mapping_incomplete(integration):
    Integration.objects.filter(pk=integration.pk).update(
        status=Status.SETUP,
        mapping_complete=False,
        first_sync_finished_at=None,
        last_outcome="",
        last_success_at=None,
    )


def paused(integration):
    Integration.objects.filter(pk=integration.pk).update(paused=True, paused_reason="already")


REFUSALS = [
    # (role, how the integration is, action, form, the refusal shown)
    (
        "support",
        queued_session,
        "sync_now",
        {},
        "Sync now refused: Already syncing: session {session} is queued since",
    ),
    (
        "engineering",
        queued_session,
        "full_sync",
        {},
        "Full sync refused: Already syncing: session {session} is queued",
    ),
    ("support", deleted, "sync_now", {}, "Sync now refused: The integration is deleted; restore it first."),
    (
        "engineering",
        deleted,
        "full_sync",
        {},
        "Full sync refused: The integration is deleted; restore it first.",
    ),
    (
        "support",
        inactive,
        "sync_now",
        {},
        "Sync now refused: The integration is inactive; reactivate it first.",
    ),
    (
        "support",
        mapping_incomplete,
        "sync_now",
        {},
        "Sync now refused: Account mapping is incomplete: map or ignore every vendor account first.",
    ),
    (
        "engineering",
        mapping_incomplete,
        "full_sync",
        {},
        "Full sync refused: Account mapping is incomplete: map or ignore every vendor account first.",
    ),
    (
        "engineering",
        lambda i: None,
        "release_qa",
        {"note": "n"},
        "Release from quality assurance refused: Cannot release qa: It is not in quality assurance.",
    ),
    (
        "engineering",
        lambda i: None,
        "restore",
        {"reason": "r"},
        "Restore refused: Cannot restore: It is not deleted.",
    ),
    (
        "engineering",
        deleted,
        "delete",
        {"reason": "r"},
        "Delete refused: Cannot delete: It is already deleted.",
    ),
    ("engineering", paused, "pause", {"reason": "r"}, "Pause refused: Syncs are already paused."),
    ("engineering", lambda i: None, "resume", {"reason": "r"}, "Resume refused: Syncs are not paused."),
    ("engineering", deleted, "pause", {"reason": "r"}, "Pause refused: The integration is deleted."),
    (
        "engineering",
        deleted,
        "enter_qa",
        {"reason": "r"},
        "Move to quality assurance refused: Cannot enter qa: It is already in quality assurance, or it is inactive",
    ),
    (
        "engineering",
        lambda i: None,
        "reactivate",
        {"reason": "r"},
        "Reactivate refused: Cannot reactivate: It is not inactive",
    ),
]


@pytest.mark.parametrize(
    "role, prepare, name, data, refusal",
    REFUSALS,
    ids=[f"{r[2]}-{r[1].__name__.strip('<>').replace('lambda', 'as-is')}" for r in REFUSALS],
)
def test_refusals_change_nothing(staff_client, users, role, prepare, name, data, refusal):
    integration = active_integration()
    prepare(integration)
    session = SyncSession.objects.filter(integration=integration).first()
    integration.refresh_from_db()
    before = snapshot(integration)

    response = post_action(staff_client(users[role]), integration, name, data)

    messages = shown(response)
    assert len(messages) == 1
    level, text = messages[0]
    assert level == "error"
    assert text.startswith(refusal.format(session=session.pk if session else None))
    assert text.endswith("Nothing was changed.")
    assert snapshot(integration) == before


def test_already_syncing_says_where_the_open_session_stands(staff_client, users):
    integration = active_integration()
    now = timezone.now()
    for _ in range(2):
        SyncSessionFactory(integration=active_integration(), trigger="customer", queued_at=now - timedelta(minutes=1))
    queued = SyncSessionFactory(integration=integration, trigger="staff", queued_at=now)

    [(level, text)] = shown(post_action(staff_client(users["support"]), integration, "sync_now"))
    assert level == "error"
    assert f"session {queued.pk} is queued since" in text
    assert "position 3 in the urgent queue (2 ahead of it)" in text

    SyncSession.objects.filter(pk=queued.pk).update(
        state="running", started_at=now - timedelta(seconds=30), items_seen=40, items_total=90
    )
    [(level, text)] = shown(post_action(staff_client(users["support"]), integration, "sync_now"))
    assert f"session {queued.pk} is running since" in text
    assert "40 of 90 items so far" in text


@pytest.mark.parametrize("method", ["get", "post"])
def test_unknown_action_and_unknown_integration_are_404(engineering_client, method):
    integration = active_integration()
    before = snapshot(integration)
    send = getattr(engineering_client, method)

    assert send(action_url(integration, "explode")).status_code == 404
    assert (
        send(
            f"/admin/integrations/integration/{integration.pk + 1000}/action/pause/", {"reason": "r"}
        ).status_code
        == 404
    )
    assert (
        send("/admin/integrations/integration/not-a-number/action/pause/", {"reason": "r"}).status_code == 404
    )

    assert snapshot(integration) == before


@pytest.mark.parametrize(
    "name, field",
    [
        ("enter_qa", "reason"),
        ("pause", "reason"),
        ("deactivate", "reason"),
        ("delete", "reason"),
        ("revoke_credentials", "reason"),
        ("resume", "reason"),
    ],
)
def test_an_empty_reason_is_a_form_error(engineering_client, engineering_user, name, field):
    integration = active_integration()
    if name == "resume":
        set_paused(integration.pk, True, actor=engineering_user, reason="r")
    before = snapshot(integration)

    response = engineering_client.post(action_url(integration, name), {field: "  "})

    assert response.status_code == 400
    assert response.context["form"].errors == {field: ["This field is required."]}
    assert "This field is required." in response.content.decode()
    assert snapshot(integration) == before


def test_release_needs_a_note(engineering_client, engineering_user):
    integration = active_integration()
    enter_quality_assurance(integration.pk, actor=engineering_user, reason="review")
    before = snapshot(integration)

    response = engineering_client.post(action_url(integration, "release_qa"), {"note": ""})

    assert response.status_code == 400
    assert response.context["form"].errors == {"note": ["This field is required."]}
    assert snapshot(integration) == before


# -- bulk actions on the integration changelist ---------------------------------------------------


def bulk(client, action, integrations, **form):
    data = {"action": f"bulk_{action}", "_selected_action": [i.pk for i in integrations], **form}
    return client.post(CHANGELIST, data)


def hidden_fields(html):
    """The hidden inputs of a page's forms, as POST data (lists for repeated names)."""
    data = {}
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html):
        data.setdefault(name, []).append(value)
    return data


def test_bulk_pause_asks_for_a_reason_then_reports_refusals(engineering_client, engineering_user):
    a, b = active_integration(name="Alpha"), active_integration(name="Bravo")
    already = active_integration(name="Charlie")
    paused(already)
    chosen = [a, b, already]
    before = [snapshot(i) for i in chosen]

    page = bulk(engineering_client, "pause", chosen, index=0)

    assert page.status_code == 200
    assert page.templates[0].name == "admin/integrations/integration/action_form.html"
    content = page.content.decode()
    for integration in chosen:
        assert integration.name in content
        assert f'name="_selected_action" value="{integration.pk}"' in content
    assert 'name="reason"' in content
    assert [snapshot(i) for i in chosen] == before

    # Submit the confirmation page's own form, as the browser would.
    response = engineering_client.post(CHANGELIST, {**hidden_fields(content), "reason": "Vendor outage"})
    assert response.status_code == 302 and response["Location"] == CHANGELIST
    response = engineering_client.get(response["Location"])

    for integration in (a, b):
        integration.refresh_from_db()
        assert (integration.paused, integration.paused_reason) == (True, "Vendor outage")
        event = events(integration, Kind.PAUSED)[-1]
        assert (event.actor, event.note) == (engineering_user, "Vendor outage")
        assert log_entries(integration)[-1].change_message == "Pause (bulk): Syncs paused."
    assert snapshot(already) == before[2]
    assert shown(response) == [
        ("success", "Pause: done for 2 integrations."),
        ("error", f"Pause refused for 1: {already}: Syncs are already paused."),
    ]


def test_bulk_with_an_empty_reason_shows_the_form_again(engineering_client):
    chosen = [active_integration(), active_integration()]
    before = [snapshot(i) for i in chosen]

    response = bulk(engineering_client, "deactivate", chosen, apply="1", reason="")

    assert response.status_code == 200
    assert response.context["form"].errors == {"reason": ["This field is required."]}
    assert [snapshot(i) for i in chosen] == before


def test_bulk_delete_confirms_then_deletes(engineering_client, engineering_user):
    keep = active_integration(name="Keep")
    a, b = active_integration(name="Alpha"), active_integration(name="Bravo")
    gone = active_integration(name="Gone")
    deleted(gone)
    chosen = [a, b, gone]
    before = [snapshot(i) for i in (*chosen, keep)]

    page = bulk(engineering_client, "delete", chosen, index=0)
    assert page.status_code == 200
    assert "Are you sure?" in page.content.decode()
    assert "Delete: 3 integrations" in page.content.decode()
    assert [snapshot(i) for i in (*chosen, keep)] == before

    response = bulk(engineering_client, "delete", chosen, apply="1", reason="Tenant offboarded")
    response = engineering_client.get(response["Location"])

    for integration in (a, b):
        integration.refresh_from_db()
        assert integration.status == Status.DELETED
        event = events(integration, Kind.DELETED)[-1]
        assert (event.actor, event.note) == (engineering_user, "Tenant offboarded")
    assert snapshot(gone) == before[2]
    assert snapshot(keep)["row"] == before[3]["row"]
    assert shown(response) == [
        ("success", "Delete: done for 2 integrations."),
        ("error", f"Delete refused for 1: {gone}: Cannot delete: It is already deleted."),
    ]


def test_bulk_restore_restores_only_the_deleted(engineering_client, engineering_user):
    gone = active_integration(name="Gone")
    deleted(gone)
    live_one = active_integration(name="Live")
    before = snapshot(live_one)

    response = bulk(engineering_client, "restore", [gone, live_one], apply="1", reason="Deleted by mistake")
    response = engineering_client.get(response["Location"])

    gone.refresh_from_db()
    assert gone.status == Status.ACTIVE
    assert events(gone, Kind.RESTORED)[-1].note == "Deleted by mistake"
    assert snapshot(live_one) == before
    assert shown(response) == [
        ("success", "Restore: done for 1 integration."),
        ("error", f"Restore refused for 1: {live_one}: Cannot restore: It is not deleted."),
    ]


def test_bulk_sync_now_runs_at_once_and_reports_refusals(support_client, support_user):
    a, b = active_integration(name="Alpha"), active_integration(name="Bravo")
    gone = active_integration(name="Gone")
    deleted(gone)
    busy = active_integration(name="Busy")
    queued_session(busy)
    before = {i.pk: snapshot(i) for i in (gone, busy)}

    response = bulk(support_client, "sync_now", [a, b, gone, busy], index=0)
    assert response.status_code == 302  # no confirmation page: nothing to ask, nothing destroyed
    response = support_client.get(response["Location"])

    for integration in (a, b):
        session = SyncSession.objects.get(integration=integration)
        assert (session.state, session.kind, session.trigger, session.requested_by) == (
            "queued",
            "quick",
            "staff",
            support_user,
        )
        assert events(integration, Kind.SYNC_REQUESTED)[-1].actor == support_user
    assert {i.pk: snapshot(i) for i in (gone, busy)} == before
    messages = shown(response)
    assert messages[0] == ("success", "Sync now: done for 2 integrations.")
    level, text = messages[1]
    assert level == "error"
    assert text.startswith("Sync now refused for 2: ")
    assert f"{gone}: The integration is deleted; restore it first." in text
    assert f"{busy}: Already syncing: session" in text


def test_bulk_quality_assurance_is_not_offered_to_support(support_client):
    chosen = [active_integration(), active_integration()]
    before = [snapshot(i) for i in chosen]

    changelist = support_client.get(CHANGELIST)
    offered = {value for value, _ in changelist.context["action_form"].fields["action"].choices}
    assert {"bulk_sync_now", "bulk_full_sync"} <= offered
    assert not offered & {"bulk_enter_qa", "bulk_pause", "bulk_delete", "bulk_revoke_credentials"}

    response = bulk(support_client, "enter_qa", chosen, apply="1", reason="r")
    response = support_client.get(response["Location"])

    assert ("warning", "No action selected.") in shown(response)
    assert [snapshot(i) for i in chosen] == before


# -- sync issues: bulk resolve and ignore -----------------------------------------------------------


@pytest.mark.parametrize(
    "action, label, state",
    [("resolved_issues", "Resolve", "resolved"), ("ignored_issues", "Ignore", "ignored")],
)
def test_issue_bulk_close_with_a_note(
    support_client, support_user, engineering_user, error_catalog, action, label, state
):
    integration = active_integration()
    first, second = SyncIssueFactory(integration=integration), SyncIssueFactory(integration=integration)
    earlier = timezone.now() - timedelta(days=2)
    closed = SyncIssueFactory(
        integration=integration,
        state=SyncIssue.State.RESOLVED,
        resolved_by=engineering_user,
        resolved_at=earlier,
        resolution_note="fixed at the vendor",
    )
    untouched = SyncIssueFactory(integration=integration)
    chosen = [first.pk, second.pk, closed.pk]

    page = support_client.post(ISSUES, {"action": action, "_selected_action": chosen, "index": 0})
    assert page.status_code == 200
    assert "note" in page.context["form"].fields
    assert SyncIssue.objects.filter(state=SyncIssue.State.OPEN).count() == 3

    response = support_client.post(
        ISSUES, {**hidden_fields(page.content.decode()), "note": "Customer fixed the records"}
    )
    assert response.status_code == 302
    response = support_client.get(response["Location"])

    for issue in (first, second):
        issue.refresh_from_db()
        assert issue.state == state
        assert issue.resolved_by == support_user
        assert issue.resolved_at is not None
        assert issue.resolution_note == "Customer fixed the records"
    closed.refresh_from_db()
    assert (closed.state, closed.resolved_by, closed.resolved_at, closed.resolution_note) == (
        "resolved",
        engineering_user,
        earlier,
        "fixed at the vendor",
    )
    untouched.refresh_from_db()
    assert untouched.state == "open"
    assert ("success", f"{label}: 2 issues.") in shown(response)


def test_issue_bulk_close_needs_a_note(support_client, error_catalog):
    issue = SyncIssueFactory(integration=active_integration())

    response = support_client.post(
        ISSUES, {"action": "resolved_issues", "_selected_action": [issue.pk], "apply": "1", "note": ""}
    )

    assert response.status_code == 200
    assert response.context["form"].errors == {"note": ["This field is required."]}
    issue.refresh_from_db()
    assert issue.state == "open" and issue.resolved_by is None


def test_issue_bulk_close_of_closed_issues_changes_nothing(support_client, error_catalog):
    issue = SyncIssueFactory(integration=active_integration(), state=SyncIssue.State.IGNORED)

    response = support_client.post(
        ISSUES, {"action": "resolved_issues", "_selected_action": [issue.pk], "apply": "1", "note": "n"}
    )
    response = support_client.get(response["Location"])

    issue.refresh_from_db()
    assert (issue.state, issue.resolved_by, issue.resolution_note) == ("ignored", None, "")
    assert ("warning", "None of the selected issues was open; nothing changed.") in shown(response)


def test_issue_bulk_close_needs_the_resolve_permission(staff_client, staff_groups, error_catalog):
    viewer = UserFactory(username="viewer", is_staff=True)
    viewer.user_permissions.set(staff_groups["Support"].permissions.filter(codename="view_syncissue"))
    client = staff_client(viewer)
    issue = SyncIssueFactory(integration=active_integration())

    changelist = client.get(ISSUES)
    assert changelist.status_code == 200
    # No action is left for this user: the changelist offers none at all.
    assert changelist.context["action_form"] is None

    response = client.post(
        ISSUES, {"action": "resolved_issues", "_selected_action": [issue.pk], "apply": "1", "note": "n"}
    )

    assert response.status_code == 200
    issue.refresh_from_db()
    assert issue.state == "open" and issue.resolved_by is None


# -- what the page must not do -----------------------------------------------------------------------


def test_actions_need_the_csrf_token(engineering_user):
    from django.test import Client

    integration = active_integration()
    client = Client(enforce_csrf_checks=True)
    client.force_login(engineering_user)
    before = snapshot(integration)

    assert client.post(action_url(integration, "pause"), {"reason": "r"}).status_code == 403
    assert client.post(action_url(integration, "sync_now")).status_code == 403
    assert snapshot(integration) == before

    page = client.get(action_url(integration, "pause"))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    response = client.post(action_url(integration, "pause"), {"reason": "r", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    integration.refresh_from_db()
    assert integration.paused


def test_opening_an_action_page_changes_nothing(support_client):
    integration = active_integration()
    before = snapshot(integration)

    page = support_client.get(action_url(integration, "sync_now"))

    assert page.status_code == 200
    assert 'type="submit"' in page.content.decode()
    assert snapshot(integration) == before


def test_no_reauth_link_for_a_deleted_integration(support_client, django_capture_on_commit_callbacks):
    """A link for a deleted integration could never be used (the public page answers 410): refuse to send it."""
    integration = active_integration()
    deleted(integration)
    MembershipFactory(
        tenant=integration.tenant, user=UserFactory(username="dora", email="dora@customer.example")
    )
    before = snapshot(integration)

    with django_capture_on_commit_callbacks(execute=True):
        response = support_client.post(
            action_url(integration, "send_reauth_link"), {"member": "dora@customer.example"}, follow=True
        )

    assert 'id="sc-reauth-url"' not in response.content.decode()
    assert mail.outbox == []
    assert snapshot(integration) == before
    assert any(level == "error" and "deleted" in text for level, text in shown(response))


def test_deleted_integrations_are_restorable_until_the_retention_has_passed(
    engineering_client, settings, error_catalog
):
    from integrations.models import SyncedRecord
    from integrations.services import purge_deleted
    from tests.factories import SyncedRecordFactory

    integration = active_integration()
    SyncSessionFactory(integration=integration, state=SyncSession.State.SUCCEEDED)
    SyncedRecordFactory(integration=integration)
    SyncIssueFactory(integration=integration)
    other = active_integration()
    post_action(engineering_client, integration, "delete", {"reason": "offboarding"})
    integration.refresh_from_db()

    assert purge_deleted(now=integration.deleted_at + settings.DELETED_RETENTION - timedelta(minutes=1)) == []
    assert Integration.objects.filter(pk=integration.pk).exists()

    assert purge_deleted(now=integration.deleted_at + settings.DELETED_RETENTION + timedelta(minutes=1)) == [
        integration.pk
    ]
    assert not Integration.objects.filter(pk=integration.pk).exists()
    assert not SyncSession.objects.filter(integration_id=integration.pk).exists()
    assert not SyncedRecord.objects.filter(integration_id=integration.pk).exists()
    assert not SyncIssue.objects.filter(integration_id=integration.pk).exists()
    assert Integration.objects.filter(pk=other.pk).exists()


def test_buttons_that_ask_for_something_open_their_page(engineering_client):
    """Actions with a form or a confirmation are links to their page; the others POST at once."""
    from integrations.admin.actions import ACTIONS

    integration = active_integration()
    page = engineering_client.get(change_url(integration))
    content = page.content.decode()
    buttons = [b for b in page.context["sc"]["buttons"] + page.context["sc"]["destructive_buttons"] if b.name in ACTIONS]
    assert buttons

    for button in buttons:
        spec = ACTIONS[button.name]
        link = f'id="sc-action-{spec.name}" href="{action_url(integration, spec.name)}">{spec.label}</a>'
        form = f'<form method="post" action="{action_url(integration, spec.name)}">'
        if spec.form is not None or spec.destructive:
            assert link in content and form not in content, f"{spec.name} should open its page"
        else:
            assert form in content and link not in content, f"{spec.name} should POST from the page"


@pytest.mark.parametrize(
    "name, status",
    [("delete", Status.DELETED), ("deactivate", Status.INACTIVE), ("revoke_credentials", Status.CREDENTIALS_INVALID)],
)
def test_a_sync_queued_before_the_action_does_not_run_after_it(
    engineering_client, make_integration, vendor_simulator, name, status
):
    """Deleted, inactive and revoked integrations do not sync, even a session queued just before."""
    from integrations import tasks
    from integrations.models import SyncedRecord
    from integrations.sync.starting import start_sync

    integration = make_integration("healthy")
    # Queued behind the backlog: this test's transaction never commits, so nothing runs it yet.
    session = start_sync(integration, kind=SyncSession.Kind.FULL, trigger=SyncSession.Trigger.STAFF)
    post_action(engineering_client, integration, name, {"reason": "offboarding"})
    integration.refresh_from_db()
    assert integration.status == status
    account = integration.settings["account"]
    vendor_requests = vendor_simulator.stats(account)["requests"]["total"]

    tasks.run_session(session.pk)  # the worker reaches the queued session

    session.refresh_from_db()
    integration.refresh_from_db()
    assert vendor_simulator.stats(account)["requests"]["total"] == vendor_requests
    assert not SyncedRecord.objects.filter(integration=integration).exists()
    assert session.state in SyncSession.FINISHED_STATES
    assert session.items_seen == 0
    assert integration.status == status


def test_release_says_when_no_sync_could_be_queued(engineering_client, engineering_user):
    integration = active_integration()
    enter_quality_assurance(integration.pk, actor=engineering_user, reason="review")
    busy = SyncSessionFactory(integration=integration, state=SyncSession.State.RUNNING)

    response = post_action(engineering_client, integration, "release_qa", {"note": "checked"})

    integration.refresh_from_db()
    assert integration.status == Status.ACTIVE
    assert list(SyncSession.objects.filter(integration=integration)) == [busy]
    [(level, text)] = shown(response)
    assert level == "success"
    assert text.startswith("Released from quality assurance")
    assert "a sync was queued" not in text  # none was: one is already running


def test_a_superuser_may_do_everything(staff_client, superuser):
    integration = active_integration()
    client = staff_client(superuser)

    sc = client.get(change_url(integration)).context["sc"]
    buttons = {b.name for b in sc["buttons"] + sc["destructive_buttons"]}
    response = post_action(client, integration, "enter_qa", {"reason": "spot check"})

    assert {"sync_now", "send_reauth_link", "enter_qa", "pause", "delete", "revoke_credentials"} <= buttons
    integration.refresh_from_db()
    assert integration.status == Status.QUALITY_ASSURANCE
    assert events(integration, Kind.QA_ENTERED)[-1].actor == superuser
    assert ("success", "Moved to quality assurance.") in shown(response)


@pytest.mark.parametrize(
    "url", ["javascript:alert(document.cookie)", " JavaScript:alert(1)", "data:text/html,<b>x</b>"]
)
def test_vendor_links_from_item_data_are_never_scripts(support_client, error_catalog, url):
    """An item's vendor URL comes from the vendor's data: only http(s) may become a link staff click."""
    integration = active_integration()
    issue = SyncIssueFactory(integration=integration, vendor_url=url, item_label="Crafted item")

    pages = [
        support_client.get(change_url(integration)).content.decode(),
        support_client.get(ISSUES).content.decode(),
        support_client.get(f"{ISSUES}{issue.pk}/change/").content.decode(),
    ]

    for page in pages:
        assert "Crafted item" in page or "ITEM_MISSING_FIELD" in page
        for href in re.findall(r'href="([^"]*)"', page):
            scheme = href.strip().split(":", 1)[0].lower() if ":" in href else ""
            assert scheme in ("", "http", "https", "mailto"), href
