"""The portal's pages as a customer reads them: General tab, Issues tab, help requests, accounts.

The General tab answers "what is wrong, since when, what do I do"; the Issues
tab filters and pages through issues without counting them and refuses bad
input with a clear 400; "Help me resolve this issue" reaches support and
shows its state back to the customer; logging in, resetting a password by
email and logging out work from the portal's own pages.
"""

import re
from datetime import timedelta
from html import unescape
from types import SimpleNamespace

import pytest
from django.core import mail, signing
from django.http import HttpRequest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from integrations import pagination
from integrations.models import Integration, Membership, SyncSession
from issues.models import ErrorCode, SupportRequest, SyncIssue
from tests.factories import SyncIssueFactory, SyncSessionFactory, TenantFactory
from tests.portal.conftest import PASSWORD, snapshot

Status = Integration.Status
live = pytest.mark.django_db(transaction=True)


def text_of(html):
    """The visible text of an HTML fragment, whitespace collapsed."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()


def section(content, element_id):
    match = re.search(rf'<(\w+)[^>]*\bid="{element_id}"[^>]*>(.*?)</\1>', content, re.DOTALL)
    assert match, f"no #{element_id} on the page"
    return match.group(2)


def badge(content):
    return re.search(r'<span class="badge s-(\w+)">([^<]*)</span>', content).groups()


@pytest.fixture
def acme(member):
    tenant = TenantFactory(name="Acme")
    return SimpleNamespace(
        tenant=tenant,
        admin=member(tenant, Membership.Role.ADMIN, username="alice", email="alice@acme.example"),
        viewer=member(tenant, Membership.Role.VIEWER, username="victor", email="victor@acme.example"),
    )


# -- General tab ------------------------------------------------------------------------------------


@live
def test_general_tab_explains_a_failing_integration(acme, log_in, make_integration, sync):
    integration = make_integration("expired-token", tenant=acme.tenant, name="Pax8 billing")
    failed = sync(integration)
    assert integration.status == Status.AUTH_FAILING
    code = ErrorCode.objects.get(code="AUTH_EXPIRED")

    content = log_in(acme.viewer).get(reverse("portal:general", args=[integration.pk])).content.decode()
    status_code, words = badge(content)
    assert (status_code, words) == ("auth_failing", "Sign-in to the vendor failing")
    visible = text_of(content)
    # Plain words, never the code name or the console's label.
    assert "auth_failing" not in visible
    assert "Authentication failing" not in visible
    assert "The vendor no longer accepts the saved credentials. Re-authenticate to resume syncing." in visible

    error = section(content, "last-error")
    assert code.title in text_of(error)
    assert escape(code.customer_advice) in error
    assert escape(failed.error_message) in error
    assert "Show details" in error
    last = text_of(section(content, "last-session"))
    assert "Result Failed" in last

    assert re.search(r"What happens next: Next sync in \d+ minutes?\.", visible), visible


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "headline", "what_next"),
    [
        (Status.ACTIVE, "Syncing normally", r"Next sync in 1[12] minutes\."),
        (Status.SETUP, "Setting up", r"Map your vendor accounts to start the first sync\."),
        (
            Status.CREDENTIALS_INVALID,
            "Paused: new credentials needed",
            r"Syncs are paused until you re-authenticate\.",
        ),
        (
            Status.QUALITY_ASSURANCE,
            "Under review by our team",
            r"Scheduled syncs resume when our review is done\.",
        ),
        (Status.INACTIVE, "Switched off", r"Nothing runs until the integration is reactivated\."),
    ],
    ids=["active", "setup", "credentials_invalid", "quality_assurance", "inactive"],
)
def test_general_tab_says_the_status_and_what_happens_next(
    acme, log_in, integration_in, status, headline, what_next
):
    integration = integration_in(acme.tenant, status, name="Acme billing")
    content = log_in(acme.viewer).get(reverse("portal:general", args=[integration.pk])).content.decode()
    assert badge(content) == (status, headline)
    visible = text_of(content)
    assert status not in visible.split()
    assert re.search(rf"What happens next: {what_next}", visible), visible


@pytest.mark.django_db
def test_progress_json_and_the_general_tab_follow_a_running_session(acme, log_in, integration_in):
    integration = integration_in(acme.tenant, name="Acme billing")
    client = log_in(acme.viewer)
    url = reverse("portal:progress", args=[integration.pk])
    idle = client.get(url).json()
    assert (idle["status"], idle["status_words"], idle["syncing"], idle["session"]) == (
        "active",
        "Syncing normally",
        False,
        None,
    )

    session = SyncSessionFactory(
        integration=integration, state=SyncSession.State.RUNNING, items_seen=400, items_total=2500
    )
    running = client.get(url).json()
    assert running["syncing"] is True
    assert running["session"] == {
        "id": session.pk,
        "state": "running",
        "items_seen": 400,
        "items_total": 2500,
        "error_code": None,
    }
    general = client.get(reverse("portal:general", args=[integration.pk])).content.decode()
    progress = re.search(r'<span id="sync-progress" class="syncing"( hidden)?>(.*?)</span>', general)
    assert progress.group(1) is None
    assert progress.group(2) == "Syncing: 400 of 2500 items"
    listing = text_of(client.get(reverse("portal:list")).content.decode())
    assert "Syncing 400 / 2500" in listing

    SyncSession.objects.filter(pk=session.pk).update(items_seen=1800)
    assert client.get(url).json()["session"]["items_seen"] == 1800

    SyncSession.objects.filter(pk=session.pk).update(
        state=SyncSession.State.SUCCEEDED, items_seen=2500, finished_at=timezone.now()
    )
    finished = client.get(url).json()
    assert finished["syncing"] is False
    assert finished["session"]["state"] == "succeeded"
    general = client.get(reverse("portal:general", args=[integration.pk])).content.decode()
    assert re.search(r'<span id="sync-progress" class="syncing" hidden></span>', general)


# -- Issues tab: filters ------------------------------------------------------------------------------


@pytest.fixture
def issue_log(acme, integration_in):
    """Issues of every kind on one integration, and one on another integration of the same tenant."""
    integration = integration_in(acme.tenant, Status.WARNINGS, name="Acme address book")
    now = timezone.now()

    def issue(label, code, severity="warning", state=SyncIssue.State.OPEN, minutes=0, **fields):
        return SyncIssueFactory(
            integration=integration,
            error_code=ErrorCode.objects.get(code=code),
            severity=severity,
            state=state,
            item_label=label,
            external_id=fields.pop("external_id", f"item-{label.lower().replace(' ', '-')}"),
            last_seen_at=now - timedelta(minutes=minutes),
            **fields,
        )

    issues = {
        "Ada Adler": issue("Ada Adler", "ITEM_MISSING_FIELD", minutes=1),
        "Ben Baker": issue("Ben Baker", "ITEM_INVALID_VALUE", "error", minutes=2),
        "Chloe Castro": issue("Chloe Castro", "ITEM_UNMAPPED", minutes=3, source=SyncIssue.Source.MAPPING),
        "Dmitri Dubois": issue("Dmitri Dubois", "ITEM_DUPLICATE", "info", minutes=4),
        "Elena Eriksen": issue(
            "Elena Eriksen", "ITEM_MISSING_FIELD", "critical", SyncIssue.State.RESOLVED, 5
        ),
        "Farid Fischer": issue(
            "Farid Fischer", "ITEM_INVALID_VALUE", state=SyncIssue.State.IGNORED, minutes=6
        ),
        "Session": issue("", "AUTH_EXPIRED", "error", minutes=7, item_type="", external_id=""),
    }
    other = integration_in(acme.tenant, name="Acme billing")
    SyncIssueFactory(
        integration=other,
        item_label="Grace Garcia",
        error_code=ErrorCode.objects.get(code="ITEM_MISSING_FIELD"),
    )
    return SimpleNamespace(integration=integration, issues=issues)


def listed(client, integration, **params):
    response = client.get(reverse("portal:issues", args=[integration.pk]), params)
    assert response.status_code == 200, response.content.decode()
    return [issue.pk for issue, _ in response.context["issues"]]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["Ada Adler", "Ben Baker", "Chloe Castro", "Dmitri Dubois", "Session"]),
        ({"state": "open"}, ["Ada Adler", "Ben Baker", "Chloe Castro", "Dmitri Dubois", "Session"]),
        ({"state": "resolved"}, ["Elena Eriksen"]),
        ({"state": "ignored"}, ["Farid Fischer"]),
        (
            {"state": "all"},
            [
                "Ada Adler",
                "Ben Baker",
                "Chloe Castro",
                "Dmitri Dubois",
                "Elena Eriksen",
                "Farid Fischer",
                "Session",
            ],
        ),
        ({"code": "ITEM_MISSING_FIELD"}, ["Ada Adler"]),
        ({"code": "ITEM_MISSING_FIELD", "state": "all"}, ["Ada Adler", "Elena Eriksen"]),
        ({"code": "AUTH_EXPIRED"}, ["Session"]),
        ({"code": "SYNC_TIMEOUT"}, []),
        (
            {"category": "data", "state": "all"},
            ["Ada Adler", "Ben Baker", "Dmitri Dubois", "Elena Eriksen", "Farid Fischer"],
        ),
        ({"category": "mapping"}, ["Chloe Castro"]),
        ({"category": "auth"}, ["Session"]),
        ({"severity": "error"}, ["Ben Baker", "Session"]),
        ({"severity": "critical", "state": "all"}, ["Elena Eriksen"]),
        ({"severity": "info"}, ["Dmitri Dubois"]),
        ({"q": "Ben"}, ["Ben Baker"]),
        ({"q": "ben"}, ["Ben Baker"]),
        ({"q": "item-chloe"}, ["Chloe Castro"]),
        ({"q": "  Dmitri  "}, ["Dmitri Dubois"]),
        ({"q": "Baker"}, []),
        ({"q": "Grace"}, []),
        ({"q": "E", "state": "all"}, ["Elena Eriksen"]),
        ({"code": "ITEM_INVALID_VALUE", "severity": "warning", "state": "all"}, ["Farid Fischer"]),
        ({"category": "data", "severity": "error", "q": "Ben"}, ["Ben Baker"]),
        (
            {"code": "", "category": "", "severity": "", "q": ""},
            ["Ada Adler", "Ben Baker", "Chloe Castro", "Dmitri Dubois", "Session"],
        ),
    ],
    ids=lambda v: (
        ("&".join(f"{k}={val.strip()[:12]}" for k, val in v.items()) or "none")
        if isinstance(v, dict)
        else f"{len(v)} rows"
    ),
)
def test_issues_tab_filters(acme, log_in, issue_log, params, expected):
    ids = listed(log_in(acme.viewer), issue_log.integration, **params)
    assert ids == [issue_log.issues[label].pk for label in expected]


@pytest.mark.django_db
def test_issues_tab_rows_show_the_issue(acme, log_in, issue_log):
    issue = issue_log.issues["Ben Baker"]
    SyncIssue.objects.filter(pk=issue.pk).update(vendor_url="https://vendor.example/items/ben", occurrences=7)
    content = (
        log_in(acme.viewer).get(reverse("portal:issues", args=[issue_log.integration.pk])).content.decode()
    )
    row = next(r for r in re.findall(r"<tr>(.*?)</tr>", content, re.DOTALL) if "Ben Baker" in r)
    visible = text_of(row)
    assert "Invalid value" in visible or ErrorCode.objects.get(code="ITEM_INVALID_VALUE").title in visible
    assert "ITEM_INVALID_VALUE" in visible
    assert "Error" in visible and "Vendor" in visible and " 7 " in f" {visible} "
    assert 'href="https://vendor.example/items/ben"' in row
    assert "Help me resolve this issue" in visible
    selected = re.search(r'<select name="code">.*?</select>', content, re.DOTALL).group(0)
    assert "ITEM_MISSING_FIELD" in selected and "AUTH_EXPIRED" in selected


# -- Issues tab: keyset pagination --------------------------------------------------------------------


def walk(client, url):
    """Follow the "Next page" links from url; returns the issue ids of each page."""
    pages = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content.decode()
        pages.append([issue.pk for issue, _ in response.context["issues"]])
        match = re.search(r'<a href="([^"]+)" rel="next">Next page</a>', response.content.decode())
        url = (
            reverse("portal:issues", args=[response.context["integration"].pk]) + unescape(match.group(1))
            if match
            else None
        )
        assert len(pages) < 10, "the pager does not end"
    return pages


@pytest.mark.django_db
def test_keyset_pagination_walks_60_issues_without_duplicates(acme, log_in, integration_in):
    integration = integration_in(acme.tenant, Status.WARNINGS, name="Acme address book")
    now = timezone.now()
    code = ErrorCode.objects.get(code="ITEM_MISSING_FIELD")
    # Groups of five share a last-seen time: the id breaks the tie.
    SyncIssue.objects.bulk_create(
        SyncIssue(
            tenant=acme.tenant,
            integration=integration,
            error_code=code,
            severity="warning",
            item_type="item",
            external_id=f"item-{n:04d}",
            item_label=f"Item {n}",
            first_seen_at=now - timedelta(days=1),
            last_seen_at=now - timedelta(minutes=n // 5),
        )
        for n in range(60)
    )
    # A resolved one, and another integration's, which the default filter leaves out.
    SyncIssueFactory(
        integration=integration, error_code=code, state=SyncIssue.State.RESOLVED, last_seen_at=now
    )
    SyncIssueFactory(integration=integration_in(acme.tenant, name="Other"), error_code=code, last_seen_at=now)
    expected = list(
        SyncIssue.objects.filter(integration=integration, state="open")
        .order_by("-last_seen_at", "-pk")
        .values_list("pk", flat=True)
    )
    client = log_in(acme.viewer)

    pages = walk(client, reverse("portal:issues", args=[integration.pk]))
    assert [len(p) for p in pages] == [25, 25, 10]
    walked = [pk for page in pages for pk in page]
    assert len(set(walked)) == len(walked) == 60
    assert walked == expected

    # The filters travel with the cursor.
    pages = walk(
        client, reverse("portal:issues", args=[integration.pk]) + "?state=all&code=ITEM_MISSING_FIELD"
    )
    assert [len(p) for p in pages] == [25, 25, 11]
    second = client.get(
        reverse("portal:issues", args=[integration.pk]),
        {
            "state": "all",
            "code": "ITEM_MISSING_FIELD",
            "after": pagination.encode(SyncIssue.objects.get(pk=pages[0][-1])),
        },
    )
    assert [i.pk for i, _ in second.context["issues"]] == pages[1]
    assert 'href="?state=all&amp;code=ITEM_MISSING_FIELD">First page</a>' in second.content.decode()


# -- Issues tab: bad input ----------------------------------------------------------------------------


def tampered_cursor(integration):
    issue = SyncIssue.objects.filter(integration=integration).first()
    token = pagination.encode(issue)
    return token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"code": "NOT_A_CODE"}, "Unknown error code 'NOT_A_CODE'."),
        ({"code": "item_missing_field"}, "Unknown error code 'item_missing_field'."),
        (
            {"category": "weather"},
            "Unknown category 'weather'; use one of auth, vendor, mapping, data, engine, configuration.",
        ),
        (
            {"severity": "apocalyptic"},
            "Unknown severity 'apocalyptic'; use one of info, warning, error, critical.",
        ),
        ({"state": "closed"}, "Unknown state 'closed'; use open, resolved, ignored or all."),
        ({"after": "garbage"}, "The page cursor is not valid; start again from the first page."),
        ({"after": "tampered"}, "The page cursor is not valid; start again from the first page."),
        ({"after": "forged"}, "The page cursor is not valid; start again from the first page."),
        ({"q": "x" * 201}, "The search text is too long (200 characters at most)."),
    ],
    ids=[
        "code",
        "code in lower case",
        "category",
        "severity",
        "state",
        "garbage cursor",
        "tampered cursor",
        "cursor signed elsewhere",
        "search over 200",
    ],
)
def test_malformed_issue_filters_get_a_clear_400(acme, log_in, issue_log, params, message):
    if params.get("after") == "tampered":
        params = {"after": tampered_cursor(issue_log.integration)}
    if params.get("after") == "forged":
        params = {"after": signing.dumps([timezone.now().isoformat(), 1], salt="another.salt", compress=True)}
    response = log_in(acme.viewer).get(reverse("portal:issues", args=[issue_log.integration.pk]), params)
    assert response.status_code == 400
    alert = re.search(r'<p class="error" role="alert">(.*?)</p>', response.content.decode(), re.DOTALL)
    assert alert and unescape(alert.group(1)).startswith(message), response.content.decode()[:2000]
    # The filter form is still there to fix the mistake.
    assert '<form class="filters card" method="get">' in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["code", "category", "severity", "state", "q", "after"])
def test_a_nul_character_in_a_filter_is_not_a_server_error(acme, log_in, issue_log, name):
    # PostgreSQL refuses NUL in text; the page must still answer (no match, or a 400 that says why).
    response = log_in(acme.viewer).get(
        reverse("portal:issues", args=[issue_log.integration.pk]), {name: "Ada\x00"}
    )
    assert response.status_code in (200, 400)
    if response.status_code == 200:
        assert response.context["issues"] == []
    else:
        assert 'role="alert"' in response.content.decode()


@pytest.mark.django_db
def test_a_search_of_exactly_200_characters_is_fine(acme, log_in, issue_log):
    assert listed(log_in(acme.viewer), issue_log.integration, q="x" * 200) == []


# -- Help me resolve this issue -----------------------------------------------------------------------


@pytest.mark.django_db
def test_help_request_reaches_support_and_its_state_shows(
    acme, log_in, issue_log, settings, django_capture_on_commit_callbacks
):
    settings.SUPPORT_EMAIL = "help@syncconsole.example"
    integration, issue = issue_log.integration, issue_log.issues["Ben Baker"]
    now = timezone.now()
    older = SyncSessionFactory(
        integration=integration,
        state="succeeded",
        queued_at=now - timedelta(hours=2),
        finished_at=now - timedelta(hours=2),
    )
    newer = SyncSessionFactory(
        integration=integration,
        state="warnings",
        queued_at=now - timedelta(hours=1),
        finished_at=now - timedelta(hours=1),
        items_seen=120,
    )
    client = log_in(acme.viewer)
    url = reverse("portal:help", args=[integration.pk, issue.pk])

    page = client.get(url)
    assert page.status_code == 200
    assert ErrorCode.objects.get(code="ITEM_INVALID_VALUE").customer_advice in unescape(page.content.decode())
    assert 'id="requests"' not in page.content.decode()

    before = snapshot(acme.tenant)
    empty = client.post(url, {"message": "   "})
    assert empty.status_code == 400
    too_long = client.post(url, {"message": "x" * 4001})
    assert too_long.status_code == 400
    assert snapshot(acme.tenant) == before

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url, {"message": "Ben's quantity is right at our end; why is it refused?"}, follow=True
        )
    assert response.redirect_chain == [(url, 302)]
    request = SupportRequest.objects.get()
    assert (request.issue, request.user, request.state) == (issue, acme.viewer, SupportRequest.State.NEW)
    assert request.integration == integration
    assert request.message == "Ben's quantity is right at our end; why is it refused?"
    assert [h["id"] for h in request.history] == [newer.pk, older.pk]
    assert request.history[0] == {
        "id": newer.pk,
        "state": "warnings",
        "error_code": None,
        "queued_at": newer.queued_at.isoformat(),
        "finished_at": newer.finished_at.isoformat(),
        "items_seen": 120,
    }

    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == ["help@syncconsole.example"]
    assert "ITEM_INVALID_VALUE" in email.subject
    assert "Ben's quantity is right at our end; why is it refused?" in email.body
    assert "victor@acme.example" in email.body
    assert f"{settings.SITE_URL}/admin/issues/supportrequest/{request.pk}/change/" in email.body
    assert email.reply_to == ["victor@acme.example"]  # support's answer by email goes to the customer

    assert "Your request was sent to our support team. You can follow it here." in unescape(
        response.content.decode()
    )
    requests_box = text_of(section(response.content.decode(), "requests"))
    assert "Sent to support" in requests_box and "why is it refused?" in requests_box

    issues_page = client.get(reverse("portal:issues", args=[integration.pk])).content.decode()
    assert "Help: Sent to support" in issues_page

    # Support takes it on: the customer sees that too.
    SupportRequest.objects.filter(pk=request.pk).update(state=SupportRequest.State.IN_PROGRESS)
    assert "Support is on it" in text_of(section(client.get(url).content.decode(), "requests"))
    assert "Help: Support is on it" in client.get(reverse("portal:issues", args=[integration.pk])).content.decode()


@pytest.mark.django_db
def test_the_issues_row_shows_the_latest_help_request(
    acme, log_in, issue_log, django_capture_on_commit_callbacks
):
    integration, issue = issue_log.integration, issue_log.issues["Ada Adler"]
    client = log_in(acme.viewer)
    url = reverse("portal:help", args=[integration.pk, issue.pk])
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"message": "The name is there in the vendor's screen."})
    first = SupportRequest.objects.get()
    SupportRequest.objects.filter(pk=first.pk).update(
        state=SupportRequest.State.RESOLVED, created_at=timezone.now() - timedelta(days=3)
    )
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"message": "It is back again."})
    assert SupportRequest.objects.count() == 2

    help_page = text_of(section(client.get(url).content.decode(), "requests"))
    assert help_page.index("Sent to support") < help_page.index("Resolved")  # newest first
    row = next(
        r
        for r in re.findall(
            r"<tr>(.*?)</tr>",
            client.get(reverse("portal:issues", args=[integration.pk])).content.decode(),
            re.DOTALL,
        )
        if "Ada Adler" in r
    )
    assert "Help: Sent to support" in row


# -- Accounts: log in, password reset, log out --------------------------------------------------------


@pytest.mark.django_db
def test_logging_in_at_the_login_page_lands_on_the_integrations(acme, integration_in):
    integration_in(acme.tenant, name="Acme billing")
    client = Client()
    page = client.get(reverse("portal:login"))
    assert page.status_code == 200
    wrong = client.post(reverse("portal:login"), {"username": "alice", "password": "nope"})
    assert wrong.status_code == 200
    assert "Your username and password did not match." in wrong.content.decode()

    response = client.post(reverse("portal:login"), {"username": "alice", "password": PASSWORD}, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == reverse("portal:list")
    assert "Acme billing" in response.content.decode()


@pytest.mark.django_db
def test_logging_in_returns_to_the_page_asked_for(acme, integration_in):
    integration = integration_in(acme.tenant, name="Acme billing")
    client = Client()
    wanted = reverse("portal:issues", args=[integration.pk])
    login_page = client.get(wanted, follow=True)
    assert login_page.redirect_chain == [(f"{reverse('portal:login')}?next={wanted}", 302)]
    response = client.post(
        f"{reverse('portal:login')}?next={wanted}",
        {"username": "alice", "password": PASSWORD, "next": wanted},
    )
    assert response["Location"] == wanted


@pytest.mark.django_db
def test_password_reset_by_email_and_logout(acme, integration_in):
    integration_in(acme.tenant, name="Acme billing")
    client = Client()
    form = client.get(reverse("portal:password_reset"))
    assert form.status_code == 200
    sent = client.post(reverse("portal:password_reset"), {"email": "alice@acme.example"}, follow=True)
    assert sent.redirect_chain == [(reverse("portal:password_reset_done"), 302)]
    assert "Check your email" in sent.content.decode()
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == ["alice@acme.example"]
    assert email.subject == "Reset your SyncConsole password"
    link = re.search(r"https?://testserver(/portal/password-reset/[^/\s]+/[^/\s]+/)", email.body).group(1)

    choose = client.get(link, follow=True)
    assert choose.status_code == 200
    assert "Choose a new password" in choose.content.decode()
    set_url = choose.redirect_chain[-1][0]
    done = client.post(
        set_url,
        {"new_password1": "a-Much-better-one-42", "new_password2": "a-Much-better-one-42"},
        follow=True,
    )
    assert done.redirect_chain == [(reverse("portal:password_reset_complete"), 302)]
    assert "Password changed" in done.content.decode()

    # The link worked once; the old password is gone, the new one logs in.
    assert "This link is not valid" in client.get(link, follow=True).content.decode()
    assert not Client().login(request=HttpRequest(), username="alice", password=PASSWORD)
    session = Client()
    assert session.login(request=HttpRequest(), username="alice", password="a-Much-better-one-42")
    assert session.get(reverse("portal:list")).status_code == 200

    out = session.post(reverse("portal:logout"))
    assert out.status_code == 302
    assert out["Location"] == reverse("portal:login")
    assert session.get(reverse("portal:list"))["Location"].startswith(reverse("portal:login"))


@pytest.mark.django_db
def test_password_reset_for_an_unknown_address_sends_nothing(acme):
    response = Client().post(reverse("portal:password_reset"), {"email": "nobody@acme.example"})
    assert response.status_code == 302
    assert mail.outbox == []
