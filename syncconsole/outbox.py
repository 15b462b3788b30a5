"""The development outbox: emails kept in a local folder and shown in the console.

In development (`make demo` sets EMAIL_URL=filemail:///var/outbox) emails
are not printed to the terminal, where a few alerts bury the demo's URLs
under hundreds of lines of raw source: `OutboxEmailBackend` writes each
message to a file of its own (Django's file backend appends every message of
a connection to one log), and the console's "Outbox (development)" page,
staff only, lists them (subject, recipients, date) and shows one with its
links, its text and its HTML alternative. The page answers 404 whenever
another backend sends the mail, so production, which refuses the file
backend, never has it.

The HTML is shown in an iframe with `srcdoc` and an empty `sandbox`: no
script, no form, no navigation, an opaque origin, under the page's own
Content-Security-Policy. Its links are listed beside it, so the demo can
follow a re-authentication link.
"""

import email
import email.policy
import os
import re
import uuid
from dataclasses import dataclass, field
from email.utils import getaddresses
from html.parser import HTMLParser
from pathlib import Path

from django.conf import settings
from django.contrib import admin
from django.core.mail.backends.filebased import EmailBackend as FileEmailBackend
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

BACKEND = "syncconsole.outbox.OutboxEmailBackend"
SUFFIX = ".eml"
# <time>-<random>.eml: sorting by name sorts by time.
NAME_RE = re.compile(r"\A[0-9]{8}-[0-9]{6}-[0-9]{6}-[0-9a-f]{12}\.eml\Z")
LISTED = 200


class OutboxEmailBackend(FileEmailBackend):
    """Django's file backend, one `.eml` file per message (written whole, then renamed into place)."""

    def open(self):
        return False  # no stream to open: each message gets its own file

    def close(self):
        pass

    def send_messages(self, email_messages):
        sent = 0
        folder = Path(self.file_path)
        for message in email_messages:
            if not message.recipients():
                continue
            name = f"{timezone.now():%Y%m%d-%H%M%S-%f}-{uuid.uuid4().hex[:12]}{SUFFIX}"
            partial = folder / f".{name}.partial"
            try:
                partial.write_bytes(message.message().as_bytes())
                os.replace(partial, folder / name)
            except OSError:
                if not self.fail_silently:
                    raise
                continue
            sent += 1
        return sent


def in_use():
    return settings.EMAIL_BACKEND == BACKEND


def folder():
    return Path(settings.EMAIL_FILE_PATH)


class _Links(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.hrefs = []

    def handle_starttag(self, tag, attrs):
        href = dict(attrs).get("href") if tag == "a" else None
        if href and href.startswith(("http://", "https://")) and href not in self.hrefs:
            self.hrefs.append(href)


TEXT_LINK_RE = re.compile(r"https?://[^\s<>\"']+")


@dataclass
class OutboxMessage:
    name: str
    subject: str
    sender: str
    recipients: list
    date: object  # an aware datetime, or None
    text: str = ""
    html: str = ""
    links: list = field(default_factory=list)


def read_message(path, *, whole=True):
    """An OutboxMessage from a file; its headers only unless `whole`."""
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    date = parsed["Date"]
    message = OutboxMessage(
        name=path.name,
        subject=str(parsed["Subject"] or ""),
        sender=str(parsed["From"] or ""),
        recipients=[address for _, address in getaddresses([str(parsed[h]) for h in ("To", "Cc") if parsed[h]])],
        date=getattr(date, "datetime", None),
    )
    if whole:
        text_part = parsed.get_body(preferencelist=("plain",))
        html_part = parsed.get_body(preferencelist=("html",))
        message.text = text_part.get_content() if text_part is not None else ""
        message.html = html_part.get_content() if html_part is not None else ""
        if message.html:
            collector = _Links()
            collector.feed(message.html)
            message.links = collector.hrefs
        else:
            message.links = list(dict.fromkeys(TEXT_LINK_RE.findall(message.text)))
    return message


def list_messages(limit=LISTED):
    """The newest messages first (headers only), at most `limit`."""
    where = folder()
    if not where.is_dir():
        return []
    names = sorted((p.name for p in where.iterdir() if NAME_RE.match(p.name)), reverse=True)[:limit]
    return [read_message(where / name, whole=False) for name in names]


def _staff_page(request, template, context):
    if not in_use():
        raise Http404("The outbox exists only while emails go to the local mailbox (EMAIL_URL=filemail://...).")
    return TemplateResponse(
        request, template, {**admin.site.each_context(request), "title": "Outbox (development)", **context}
    )


def outbox_view(request):
    """The list: newest first."""
    return _staff_page(request, "admin/outbox.html", {"outbox_messages": list_messages(), "folder": folder()})


def outbox_message_view(request, name):
    """One message: headers, links, text, and the HTML in a sandboxed frame."""
    if not in_use() or not NAME_RE.match(name) or not (folder() / name).is_file():
        raise Http404("No such message in the outbox.")
    message = read_message(folder() / name)
    return _staff_page(request, "admin/outbox_message.html", {"message": message, "subtitle": message.subject})


def outbox_link(request):
    """Context processor: the header's "Outbox (development)" link, for staff while the outbox is in use."""
    if not in_use():
        return {}
    user = getattr(request, "user", None)
    if user is None or not (user.is_active and user.is_staff):
        return {}
    return {"outbox_url": reverse("outbox")}
