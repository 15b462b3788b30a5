"""syncconsole/outbox.py: the development outbox and the console's "Outbox (development)" page.

Messages sent through the file backend land one per file; the page lists
them for staff only, shows one with its links, its text and its HTML in a
sandboxed frame, and answers 404 whenever another backend sends the mail.
"""

import re
from html import unescape

import pytest
from django.core.mail import EmailMultiAlternatives, get_connection, send_mail
from django.http import HttpRequest
from django.test import Client

from syncconsole import outbox
from tests.factories import MembershipFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db

HTML = (
    '<p style="color:#111">Sign in again: <a href="http://127.0.0.1:8123/reauth/abc/">re-authenticate</a>, '
    'or open <a href="https://portal.example/portal/">the portal</a>.</p>'
    '<script>document.title = "owned"</script><img src="x" onerror="alert(1)">'
)


@pytest.fixture
def mailbox(settings, tmp_path):
    settings.EMAIL_BACKEND = outbox.BACKEND
    settings.EMAIL_FILE_PATH = str(tmp_path / "outbox")
    return tmp_path / "outbox"


def logged_in(user):
    client = Client()
    assert client.login(request=HttpRequest(), username=user.username, password="password")
    return client


@pytest.fixture
def staff():
    return logged_in(UserFactory(username="support", is_staff=True))


def send_alert_like_email():
    message = EmailMultiAlternatives(
        "[SyncConsole] Pax8: sign-in failing", "Sign in again: http://127.0.0.1:8123/reauth/abc/\n",
        "SyncConsole <syncconsole@localhost>", ["alerts@acme.example"], cc=["noc@acme.example"],
    )
    message.attach_alternative(HTML, "text/html")
    return message.send()


def test_each_message_is_a_file_of_its_own(mailbox):
    assert send_alert_like_email() == 1
    with get_connection() as connection:  # one connection, several messages: still one file each
        send_mail("First", "one", None, ["a@acme.example"], connection=connection)
        send_mail("Second", "two", None, ["b@acme.example"], connection=connection)

    files = sorted(p.name for p in mailbox.iterdir())
    assert len(files) == 3 and all(outbox.NAME_RE.match(name) for name in files)
    listed = outbox.list_messages()
    assert {m.subject for m in listed} == {"[SyncConsole] Pax8: sign-in failing", "First", "Second"}
    assert [m.name for m in listed] == sorted(files, reverse=True)  # newest first


def test_the_page_lists_the_messages_for_staff(mailbox, staff):
    send_alert_like_email()

    response = staff.get("/admin/outbox/")

    assert response.status_code == 200
    content = response.content.decode()
    assert "<title>Outbox (development)" in content
    row = re.search(r"<tr><td>([^<]*)</td><td><a href=\"([^\"]+)\">([^<]*)</a></td><td>([^<]*)</td></tr>", content)
    date, href, subject, recipients = row.groups()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", date)
    assert unescape(subject) == "[SyncConsole] Pax8: sign-in failing"
    assert recipients == "alerts@acme.example, noc@acme.example"
    assert href.startswith("/admin/outbox/") and href.endswith(".eml/")


def test_a_message_shows_its_links_text_and_html_in_a_sandboxed_frame(mailbox, staff):
    send_alert_like_email()
    (message,) = outbox.list_messages()

    response = staff.get(f"/admin/outbox/{message.name}/")

    assert response.status_code == 200
    content = response.content.decode()
    links = re.search(r'<ul id="sc-outbox-links">(.*?)</ul>', content, re.DOTALL).group(1)
    assert re.findall(r'href="([^"]+)"', links) == ["http://127.0.0.1:8123/reauth/abc/", "https://portal.example/portal/"]
    frame = re.search(r"<iframe [^>]*>", content).group(0)
    assert 'sandbox=""' in frame  # no scripts, no forms, no navigation, an opaque origin
    srcdoc = re.search(r'srcdoc="([^"]*)"', frame).group(1)
    assert unescape(srcdoc) == HTML  # the whole message, escaped into the attribute
    assert "<script>document.title" not in content  # never markup of the page itself
    assert "Sign in again: http://127.0.0.1:8123/reauth/abc/" in content  # the text part
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert not re.search(r"<script(?![^>]*\bsrc=)", content)  # no inline script on the page


def test_only_staff_see_it(mailbox):
    send_alert_like_email()
    (message,) = outbox.list_messages()
    customer = UserFactory(username="customer")
    MembershipFactory(user=customer, tenant=TenantFactory())

    for client in (Client(), logged_in(customer)):
        for url in ("/admin/outbox/", f"/admin/outbox/{message.name}/"):
            response = client.get(url)
            assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), url


def test_unknown_or_crafted_names_are_404(mailbox, staff):
    send_alert_like_email()
    (mailbox / "notes.txt").write_text("not a message")

    for name in ("20260101-000000-000000-aaaaaaaaaaaa.eml", "notes.txt", "..%2F..%2Fsettings.py", ".hidden.eml"):
        assert staff.get(f"/admin/outbox/{name}/").status_code == 404, name


def test_404_and_no_header_link_when_another_backend_sends_the_mail(settings, staff, tmp_path):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path)

    assert staff.get("/admin/outbox/").status_code == 404
    assert staff.get("/admin/outbox/20260101-000000-000000-aaaaaaaaaaaa.eml/").status_code == 404
    assert "Outbox (development)" not in staff.get("/admin/").content.decode()


def test_the_console_header_links_to_it_while_it_is_in_use(mailbox, staff):
    content = staff.get("/admin/").content.decode()

    assert '<a href="/admin/outbox/">Outbox (development)</a>' in content


def test_an_empty_outbox_says_so(mailbox, staff):
    assert "No email has been sent yet." in staff.get("/admin/outbox/").content.decode()
