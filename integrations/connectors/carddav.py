"""`carddav`: contacts from CardDAV address books (RFC 6352), such as a Radicale server.

Credentials: `url` (the server, a principal or an address book URL),
`username` and `password` (HTTP Basic). Settings:

    addressbook        the address book to sync: its path (/alice/contacts/) or its
                       display name; empty: every address book of the user
    page_size          contacts per addressbook-multiget (default 200)
    mark_source_items  the engine's option: contacts with open issues get the
                       category "Sync Error" on the server, removed once fixed

Discovery follows DAV:current-user-principal to CARDDAV:addressbook-home-set
and lists the address books there; each is a vendor account (id = its path,
name = its display name) and each contact's account is its address book.

A full sync lists a book's members with an RFC 6578 sync-collection from no
token (or PROPFIND Depth 1 where the server lacks it), which also gives the
book's current sync-token, then reads the vCards with addressbook-multiget,
`page_size` hrefs at a time: memory holds the book's hrefs and one page of
contacts. A quick sync asks sync-collection what changed since the stored
token and reads only those members; removed members are not items (full syncs
find deletions). When the server refuses an old token (403/409 with
DAV:valid-sync-token) that book is read in full. The tokens of all books
travel in `next_cursor` as compact JSON, within the 200 characters the
engine stores; a book whose token does not fit is read in full next time.

A contact is keyed by its vCard UID (its path when it has none); `data` holds
the parsed fields without the "Sync Error" category (and without the ETag),
so marking a contact does not make it look changed. Item rules: no family
name in N is ITEM_MISSING_FIELD; an email address Django's validator refuses
is ITEM_INVALID_VALUE; an address already met in this run (ignoring case) is
ITEM_DUPLICATE on the later contact, in path order, so a quick sync only
compares the contacts it reads. Each issue links to the vCard's URL.

Marking: `mark_items` adds or removes the category with a PUT carrying
If-Match with the ETag of the copy it edits; a 412 (someone edited the
contact meanwhile) is retried once on a fresh GET and otherwise logged. There
is never a PUT without If-Match. Contacts already as wanted are not written.
Contacts this run did not keep are looked up by UID (addressbook-query).
Afterwards a book's token moves past our own PUTs when nothing else changed
there, so the next quick sync does not read the marked contacts again. After
a run that read every contact, one that carries the marker and had no problem
loses it: the engine settles duplicates only when a full sync ends, after
`mark_items`, and never hands those to it.
"""

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

import vobject
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email

from integrations.connectors import errors
from integrations.connectors.base import Connector, Field, Item, ItemProblem, Page, VendorAccount, register
from syncconsole import outbound

logger = logging.getLogger(__name__)

DAV = "DAV:"
CARDDAV = "urn:ietf:params:xml:ns:carddav"
MARKER = "Sync Error"
DEFAULT_PAGE_SIZE = 200
MAX_PAGE_SIZE = 1000
CURSOR_LIMIT = 200
UID_LOOKUP_BATCH = 25
XML_HEADERS = {"Content-Type": "application/xml; charset=utf-8"}
_RESOURCETYPE = "<D:resourcetype/>"
_DISPLAYNAME = "<D:displayname/>"
_CARD_PROPS = "<D:prop><D:getetag/><C:address-data/></D:prop>"


def _d(name):
    return f"{{{DAV}}}{name}"


def _c(name):
    return f"{{{CARDDAV}}}{name}"


def _xml(root, body):
    """A request body: `root` (D:... or C:...) holding `body`, with both namespaces declared."""
    head = f'<?xml version="1.0" encoding="utf-8"?>\n<{root} xmlns:D="DAV:" xmlns:C="{CARDDAV}">'
    return f"{head}{body}</{root}>".encode()


# -- multistatus answers ------------------------------------------------------


@dataclass
class DavResponse:
    """One DAV:response of a multistatus: its href, status and the properties found (200)."""

    href: str
    status: int = 200
    props: dict = field(default_factory=dict)  # clark name -> text, or the href it holds
    types: frozenset = frozenset()  # the children of DAV:resourcetype


def _last_segment(path):
    return path.rstrip("/").rsplit("/", 1)[-1]


def _status_code(text):
    parts = (text or "").split()
    try:
        return int(parts[1])
    except (IndexError, ValueError):
        return 0


def _response(element):
    href = (element.findtext(_d("href")) or "").strip()
    status_text = element.findtext(_d("status"))
    result = DavResponse(href, _status_code(status_text) if status_text else 200)
    types = set()
    for propstat in element.findall(_d("propstat")):
        prop_element = propstat.find(_d("prop"))
        if prop_element is None or _status_code(propstat.findtext(_d("status"))) != 200:
            continue
        for prop in prop_element:
            if prop.tag == _d("resourcetype"):
                types.update(child.tag for child in prop)
                continue
            inner = prop.find(_d("href"))
            result.props[prop.tag] = (inner.text or "").strip() if inner is not None else (prop.text or "")
    result.types = frozenset(types)
    return result


def parse_multistatus(content, what, chunk_size=1 << 16):
    """(responses, sync token or "", truncated) of a 207 body.

    The body is parsed in chunks and each DAV:response is turned into a small
    DavResponse and dropped from the tree, so a long listing never becomes a
    large element tree.
    """
    parser = ET.XMLPullParser(events=("start", "end"))
    responses, token, root, depth = [], "", None, 0
    try:
        for start in range(0, max(len(content), 1), chunk_size):
            parser.feed(content[start : start + chunk_size])
            for event, element in parser.read_events():
                if event == "start":
                    depth += 1
                    if root is None:
                        root = element
                    continue
                if depth == 2 and element.tag == _d("response"):
                    responses.append(_response(element))
                    root.remove(element)
                elif depth == 2 and element.tag == _d("sync-token"):
                    token = (element.text or "").strip()
                depth -= 1
        parser.close()
    except ET.ParseError as exc:
        raise errors.BadResponse(f"The CardDAV server answered {what} with malformed XML: {exc}.") from None
    if root is None or root.tag != _d("multistatus"):
        raise errors.BadResponse(
            f"The CardDAV server answered {what} with XML that is not a DAV:multistatus "
            f"({root.tag if root is not None else 'empty'})."
        )
    truncated = any(r.status == 507 for r in responses)
    return responses, token, truncated


# -- the cursor ---------------------------------------------------------------


def book_key(path):
    return hashlib.sha256(path.encode()).hexdigest()[:8]


def encode_cursor(tokens, limit=CURSOR_LIMIT):
    """{book key: token} as compact JSON within `limit` characters; tokens that do not fit are left out."""
    if not tokens:
        return ""
    values = list(tokens.values())
    prefix = values[0]
    for value in values[1:]:
        while not value.startswith(prefix):
            prefix = prefix[:-1]
    if len(values) == 1:
        prefix = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
    kept = {}
    for key in sorted(tokens):
        trial = {**kept, key: tokens[key][len(prefix):]}
        text = json.dumps({"p": prefix, "t": trial}, separators=(",", ":"))
        if len(text) <= limit:
            kept = trial
    return json.dumps({"p": prefix, "t": kept}, separators=(",", ":")) if kept else ""


def decode_cursor(cursor):
    """{book key: token} of a cursor; {} for an empty or unreadable one (every book is then read in full)."""
    try:
        value = json.loads(cursor or "{}")
        prefix, tails = value.get("p", ""), value.get("t", {})
        return {str(key): prefix + str(tail) for key, tail in tails.items()}
    except (ValueError, AttributeError, TypeError):
        return {}


# -- vCards -------------------------------------------------------------------


def _text(value):
    if isinstance(value, (list, tuple)):
        return " ".join(str(v).strip() for v in value if str(v).strip())
    return str(value or "").strip()


def _values(card, name):
    return [line.value for line in card.contents.get(name, [])]


def is_marker(category):
    return category.strip().casefold() == MARKER.casefold()


def _first(card, name):
    values = _values(card, name)
    return values[0] if values else None


def card_fields(card):
    """The fields we keep of a parsed vCard, and whether it carries the marker."""
    name = _first(card, "n")
    org = _first(card, "org")
    categories = [
        str(category).strip()
        for value in _values(card, "categories")
        for category in (value if isinstance(value, list) else [value])
    ]
    fields = {
        "uid": _text(_first(card, "uid")),
        "fn": _text(_first(card, "fn")),
        "n": {"family": _text(getattr(name, "family", "")), "given": _text(getattr(name, "given", ""))},
        "emails": [_text(v) for v in _values(card, "email") if _text(v)],
        "phones": [_text(v) for v in _values(card, "tel") if _text(v)],
        "org": "; ".join(part for part in map(_text, org if isinstance(org, list) else [org]) if part),
        "categories": [c for c in categories if c and not is_marker(c)],
    }
    return fields, any(is_marker(c) for c in categories)


_UID_RE = re.compile(r"^UID(?:;[^:\r\n]*)?:([^\r\n]*)", re.IGNORECASE | re.MULTILINE)
_CATEGORIES_RE = re.compile(r"^(?:[A-Za-z0-9-]+\.)?CATEGORIES[;:]", re.IGNORECASE)


def uid_of(text):
    match = _UID_RE.search(text)
    return match.group(1).strip() if match else ""


def _logical_lines(text, newline):
    """[(physical lines, unfolded line)] of a vCard text."""
    lines = []
    for line in text.split(newline):
        if line[:1] in (" ", "\t") and lines:
            raw, logical = lines[-1]
            lines[-1] = (raw + newline + line, logical + line[1:])
        else:
            lines.append((line, line))
    return lines


def _split_categories(value):
    """The comma-separated values of a CATEGORIES line, escapes kept as they are."""
    parts, current, escaped = [], "", False
    for char in value:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            current += char
            escaped = True
        elif char == ",":
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _unescape(value):
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def with_marker(text, wanted):
    """The vCard text with the "Sync Error" category added (wanted) or removed; None if already so.

    Only CATEGORIES lines are edited; every other line stays byte for byte.
    """
    newline = "\r\n" if "\r\n" in text else "\n"
    out, present, end_at, first_categories = [], False, None, None
    for raw, logical in _logical_lines(text, newline):
        if _CATEGORIES_RE.match(logical):
            head, _, value = logical.partition(":")
            values = _split_categories(value)
            kept = [v for v in values if not is_marker(_unescape(v))]
            if len(kept) != len(values):
                present = True
                if not wanted:
                    if any(v.strip() for v in kept):
                        out.append(f"{head}:{','.join(kept)}")
                    continue
            if first_categories is None:
                first_categories = (len(out), head, value)
        elif logical.strip().upper() == "END:VCARD":
            end_at = len(out)
        out.append(raw)
    if present == wanted:
        return None
    if wanted:
        if first_categories is not None:
            index, head, value = first_categories
            out[index] = f"{head}:{value},{MARKER}" if value.strip() else f"{head}:{MARKER}"
        elif end_at is not None:
            out.insert(end_at, f"CATEGORIES:{MARKER}")
        else:
            return None
    return newline.join(out)


# -- the connector ------------------------------------------------------------


@dataclass
class _Card:
    """What marking needs of one contact read in this run."""

    href: str
    etag: str
    text: str
    marked: bool


def _strip_etag(etag):
    etag = (etag or "").strip()
    return etag[2:] if etag.startswith("W/") else etag


@register
class CardDavConnector(Connector):
    key = "carddav"
    label = "CardDAV address book"
    item_type = "contact"
    supports_marking = True
    setting_fields = (
        Field("addressbook", "Address book (path or name; empty: all of the user's)", required=False),
        Field("page_size", "Contacts per request", required=False),
    )
    credential_fields = (
        Field("url", "Server URL"),
        Field("username", "Username"),
        Field("password", "Password", secret=True),
    )

    def __init__(self, settings, credentials, http):
        super().__init__(settings, credentials, http)
        self.base_url = str(self.credentials.get("url", "")).strip()
        parts = urlsplit(self.base_url)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.page_size = self.page_size_of(self.settings)
        self._reset_run()

    def _reset_run(self):
        # Per run: the books read, their tokens, what marking needs, and the
        # normalised emails met so far (for ITEM_DUPLICATE).
        self._books = None
        self._tokens = {}
        self._cards = {}
        self._emails = {}
        self._read_everything = False

    # -- settings ----------------------------------------------------------

    @staticmethod
    def page_size_of(settings):
        try:
            return int((settings or {}).get("page_size") or DEFAULT_PAGE_SIZE)
        except (TypeError, ValueError):
            return DEFAULT_PAGE_SIZE

    @classmethod
    def validate_settings(cls, settings):
        problems = []
        raw = settings.get("page_size")
        if raw not in (None, ""):
            try:
                if not 1 <= int(raw) <= MAX_PAGE_SIZE:
                    raise ValueError
            except (TypeError, ValueError):
                problems.append(f"Setting 'page_size' must be a whole number from 1 to {MAX_PAGE_SIZE}.")
        if not isinstance(settings.get("addressbook", ""), str):
            problems.append("Setting 'addressbook' must be an address book path or name.")
        return problems

    @classmethod
    def validate_credentials(cls, credentials):
        problems = super().validate_credentials(credentials)
        url = credentials.get("url")
        if url:
            try:
                URLValidator(schemes=["http", "https"])(url)
            except ValidationError:
                problems.append(f"Credential 'url' is not an http(s) URL: {url!r}.")
        return problems

    # -- HTTP --------------------------------------------------------------

    def absolute(self, href):
        """The URL of an href the server sent, refused unless it stays on the server's origin.

        The saved credentials go with every request: a server that names
        another host, port or scheme (or a javascript: URL) is not followed.
        """
        if href.startswith("/") and not href.startswith("//"):
            return self.origin + href  # the common case, without urljoin's cost per contact
        url = urljoin(self.base_url, href)
        if outbound.origin(url) != outbound.origin(self.base_url):
            raise errors.BadResponse(
                f"The server pointed at {href[:200]!r}, outside {self.origin}; contacts are read only from "
                "the server the integration was set up with."
            )
        return url

    def path_of(self, href):
        if href.startswith("/") and not href.startswith("//") and "?" not in href and "#" not in href:
            return href
        return urlsplit(self.absolute(href)).path or "/"

    def request(self, method, url, *, body=None, depth=None, headers=None):
        all_headers = dict(XML_HEADERS) if body is not None and method in ("PROPFIND", "REPORT") else {}
        if depth is not None:
            all_headers["Depth"] = str(depth)
        all_headers.update(headers or {})
        return self.http.request(
            method,
            url,
            data=body,
            headers=all_headers,
            auth=(self.credentials.get("username", ""), self.credentials.get("password", "")),
            allow_redirects=False,
        )

    def raise_for_status(self, response, what, *, missing=None):
        status = response.status_code
        if status == 401:
            raise errors.AuthInvalid(
                f"The CardDAV server rejected the username or password (401 on {what}).", status=status
            )
        if status == 403:
            raise errors.Forbidden(
                f"The CardDAV server refused access to {what} (403): the user may not read it.", status=status
            )
        if status == 404:
            raise errors.BadResponse(missing or f"The CardDAV server has no {what} (404).", status=status)
        if 300 <= status < 400:
            location = response.headers.get("Location", "")
            raise errors.BadResponse(
                f"The CardDAV server redirected {what} to {location or 'another address'} ({status}): "
                "use that address as the server URL.",
                status=status,
            )
        raise errors.BadResponse(
            f"The CardDAV server answered {what} with HTTP {status} {response.reason}.", status=status
        )

    def multistatus(self, method, url, body, *, depth, what, missing=None):
        response = self.request(method, url, body=body, depth=depth)
        if response.status_code != 207:
            self.raise_for_status(response, what, missing=missing)
        return parse_multistatus(response.content, what)

    def propfind(self, url, props, *, depth, what, missing=None):
        body = _xml("D:propfind", "<D:prop>" + "".join(props) + "</D:prop>")
        responses, _, _ = self.multistatus("PROPFIND", url, body, depth=depth, what=what, missing=missing)
        return responses

    # -- credentials and discovery ------------------------------------------

    def check_credentials(self):
        self.propfind(self.base_url, ["<D:current-user-principal/>"], depth=0, what="the server URL")

    def discover_books(self):
        """Every address book of the user: [VendorAccount(path, display name)]."""
        found = self.propfind(
            self.base_url,
            ["<D:current-user-principal/>", "<C:addressbook-home-set/>", _RESOURCETYPE, _DISPLAYNAME],
            depth=0,
            what="the server URL",
            missing=f"Nothing answers at {self.base_url} (404): check the server URL.",
        )
        first = found[0] if found else DavResponse(self.base_url)
        if _c("addressbook") in first.types:
            return [self.account(first)]
        home = first.props.get(_c("addressbook-home-set"))
        if not home:
            principal = first.props.get(_d("current-user-principal"))
            if not principal:
                raise errors.BadResponse(
                    f"The server at {self.base_url} does not say who the user is "
                    "(no DAV:current-user-principal): is it a CardDAV server?"
                )
            answer = self.propfind(
                self.absolute(principal), ["<C:addressbook-home-set/>"], depth=0, what="the user's principal"
            )
            home = answer[0].props.get(_c("addressbook-home-set")) if answer else ""
            if not home:
                raise errors.BadResponse(
                    f"The user's principal {principal} names no address book home "
                    "(CARDDAV:addressbook-home-set)."
                )
        members = self.propfind(
            self.absolute(home), [_RESOURCETYPE, _DISPLAYNAME], depth=1, what="the address book home"
        )
        return [self.account(m) for m in members if _c("addressbook") in m.types]

    def account(self, response):
        path = self.path_of(response.href)
        return VendorAccount(path, response.props.get(_d("displayname")) or _last_segment(path))

    def selected_books(self):
        """The address books this integration syncs, per its `addressbook` setting."""
        wanted = str(self.settings.get("addressbook") or "").strip()
        if wanted.startswith(("/", "http://", "https://")):
            path = self.path_of(wanted)
            return [VendorAccount(path if path.endswith("/") else path + "/", "")]
        books = self.discover_books()
        if not books:
            # Syncing nothing would read as "every contact was deleted".
            raise errors.BadResponse(
                f"The CardDAV server lists no address book for {self.credentials.get('username', '')!r}."
            )
        if not wanted:
            return books
        folded = wanted.casefold()
        matches = [b for b in books if b.name.casefold() == folded] or [
            b for b in books if _last_segment(b.id).casefold() == folded
        ]
        if not matches:
            names = ", ".join(repr(b.name) for b in books) or "none"
            raise errors.BadResponse(
                f"The user has no address book named {wanted!r} (404); their address books: {names}. "
                "Check the integration's 'addressbook' setting.",
                status=404,
            )
        return matches

    def discover_accounts(self):
        books = self.selected_books()
        if books and not books[0].name:
            # A path in the settings: make sure it is an address book, and name it.
            found = self.propfind(
                self.absolute(books[0].id),
                [_RESOURCETYPE, _DISPLAYNAME],
                depth=0,
                what=f"the address book {books[0].id}",
                missing=self.missing_book(books[0].id),
            )
            if not found or _c("addressbook") not in found[0].types:
                raise errors.BadResponse(f"{books[0].id} on the CardDAV server is not an address book.")
            books = [VendorAccount(books[0].id, self.account(found[0]).name)]
        return books

    def raise_for_book(self, response, book):
        self.raise_for_status(response, f"the address book {book.id}", missing=self.missing_book(book.id))

    @staticmethod
    def missing_book(path):
        return (
            f"The address book {path} does not exist on the CardDAV server (404): it was deleted or renamed; "
            "check the integration's 'addressbook' setting."
        )

    # -- reading -------------------------------------------------------------

    def iter_pages(self, *, full, cursor):
        self._reset_run()
        old_tokens = {} if full else decode_cursor(cursor)
        self._books = self.selected_books()
        whole_reads = 0
        total = 0
        for book in self._books:
            key = book_key(book.id)
            hrefs = None
            if old_tokens.get(key):
                hrefs, token = self.changes_since(book, old_tokens[key])
            if hrefs is None:
                hrefs, token = self.members(book)
                whole_reads += 1
            if token:
                self._tokens[key] = token
            self.next_cursor = encode_cursor(self._tokens)
            total += len(hrefs)
            for start in range(0, len(hrefs), self.page_size):
                yield Page(self.read_cards(book, hrefs[start : start + self.page_size]), total=total)
        self._read_everything = whole_reads == len(self._books)

    def sync_collection(self, book, token):
        body = _xml(
            "D:sync-collection",
            f"<D:sync-token>{escape(token)}</D:sync-token><D:sync-level>1</D:sync-level>"
            "<D:prop><D:getetag/></D:prop>",
        )
        return self.request("REPORT", self.absolute(book.id), body=body, depth=0)

    def changes_since(self, book, token):
        """(changed member hrefs, new token), or (None, "") when the server refuses the token."""
        changed, asked = {}, token
        while True:
            response = self.sync_collection(book, asked)
            if response.status_code in (403, 409) and b"valid-sync-token" in response.content:
                logger.info("the server refused the sync token of %s; reading it in full", book.id)
                return None, ""
            if response.status_code != 207:
                self.raise_for_book(response, book)
            responses, token, truncated = parse_multistatus(response.content, f"the changes of {book.id}")
            for r in responses:
                if r.status == 200 and self.is_member(book, r):
                    changed[r.href] = True
                elif r.status == 404:
                    changed.pop(r.href, None)
            if not truncated:
                return sorted(changed), token
            if not token or token == asked:  # a truncated answer that does not move on
                return None, ""
            asked = token

    def members(self, book):
        """(every member href, current sync token or "") of an address book."""
        response = self.sync_collection(book, "")
        if response.status_code == 207:
            responses, token, truncated = parse_multistatus(response.content, f"the listing of {book.id}")
            if not truncated:
                return sorted(r.href for r in responses if r.status == 200 and self.is_member(book, r)), token
        else:
            unsupported = response.status_code in (400, 405, 415, 501) or (
                response.status_code == 403 and b"supported-report" in response.content
            )
            if not unsupported:
                self.raise_for_book(response, book)
        # No (complete) sync-collection here: list the members with PROPFIND.
        found = self.propfind(
            self.absolute(book.id),
            [_RESOURCETYPE, "<D:getetag/>"],
            depth=1,
            what=f"the address book {book.id}",
            missing=self.missing_book(book.id),
        )
        itself = [r for r in found if self.path_of(r.href).rstrip("/") == book.id.rstrip("/")]
        if itself and _c("addressbook") not in itself[0].types:
            raise errors.BadResponse(f"{book.id} on the CardDAV server is not an address book.")
        return sorted(r.href for r in found if r.status == 200 and self.is_member(book, r)), ""

    def is_member(self, book, response):
        if _d("collection") in response.types:
            return False
        return self.path_of(response.href).rstrip("/") != book.id.rstrip("/")

    def read_cards(self, book, hrefs):
        """The Items of these members, read with one addressbook-multiget."""
        body = _xml(
            "C:addressbook-multiget",
            _CARD_PROPS + "".join(f"<D:href>{escape(h)}</D:href>" for h in hrefs),
        )
        responses, _, _ = self.multistatus(
            "REPORT",
            self.absolute(book.id),
            body,
            depth=0,
            what=f"the contacts of {book.id}",
            missing=self.missing_book(book.id),
        )
        # Servers answer in any order (Radicale's is a set's); keep the listing's
        # order so that which of two contacts is "the second" does not change.
        order = {self.path_of(h): n for n, h in enumerate(hrefs)}
        responses.sort(key=lambda r: order.get(self.path_of(r.href), len(order)))
        items = []
        for r in responses:
            if r.status == 404:
                continue  # removed since it was listed
            text = r.props.get(_c("address-data"))
            if r.status != 200 or text is None:
                raise errors.BadResponse(
                    f"The CardDAV server answered the contacts of {book.id} without the vCard of {r.href} "
                    f"(status {r.status})."
                )
            items.append(self.item(book, r.href, r.props.get(_d("getetag"), ""), text))
        return items

    def item(self, book, href, etag, text):
        path = self.path_of(href)
        url = self.absolute(href)
        try:
            card = vobject.readOne(text)
            fields, marked = card_fields(card)
        except Exception as exc:  # vobject raises many types on bad input
            external_id = self.external_id(uid_of(text), path)
            self._cards[external_id] = _Card(href, etag, text, False)
            return Item(
                external_id=external_id,
                data={"href": path, "unreadable": True},
                label=external_id,
                account_id=book.id,
                vendor_url=url,
                problems=[
                    ItemProblem(
                        "ITEM_INVALID_VALUE",
                        f"The vCard could not be read: {str(exc)[:300] or type(exc).__name__}.",
                        {"field": "vCard"},
                    )
                ],
            )
        external_id = self.external_id(fields["uid"], path)
        data = {**fields, "href": path}
        label = (
            fields["fn"]
            or " ".join(p for p in (fields["n"]["given"], fields["n"]["family"]) if p)
            or (fields["emails"][0] if fields["emails"] else external_id)
        )
        problems = self.problems(external_id, label, fields)
        if problems or marked:
            self._cards[external_id] = _Card(href, etag, text, marked)
        return Item(external_id, data, label=label, account_id=book.id, vendor_url=url, problems=problems)

    @staticmethod
    def external_id(uid, path):
        if not uid:
            return path[:200]
        return uid if len(uid) <= 200 else "sha256:" + hashlib.sha256(uid.encode()).hexdigest()

    def problems(self, external_id, label, fields):
        problems = []
        if not fields["n"]["family"]:
            problems.append(
                ItemProblem(
                    "ITEM_MISSING_FIELD",
                    "The contact has no last name (the family part of its N property is empty).",
                    {"field": "N.family"},
                )
            )
        for email in fields["emails"]:
            try:
                validate_email(email)
            except ValidationError:
                problems.append(
                    ItemProblem(
                        "ITEM_INVALID_VALUE",
                        f"Email address {email!r} is not valid.",
                        {"field": "EMAIL", "value": email[:200]},
                    )
                )
                continue
            normalized = email.casefold()
            first = self._emails.setdefault(normalized, (external_id, label))
            if first[0] != external_id:
                problems.append(
                    ItemProblem(
                        "ITEM_DUPLICATE",
                        f"Email address {email} is also on contact {first[1]!r} ({first[0]}); "
                        "only the first contact keeps it.",
                        {"field": "EMAIL", "value": email[:200], "other_external_id": first[0]},
                    )
                )
        return problems

    # -- marking -------------------------------------------------------------

    def mark_items(self, *, mark, unmark, log):
        mark = set(mark)
        unmark = set(unmark) - mark
        if self._read_everything:
            # Every contact was read: one that carries the marker and had no
            # problem has none left (a duplicate the engine settles only at the
            # end of the run included).
            unmark |= {eid for eid, card in self._cards.items() if card.marked} - mark
        wanted = {**dict.fromkeys(unmark, False), **dict.fromkeys(mark, True)}
        if not wanted:
            return
        unknown = [eid for eid in wanted if eid not in self._cards]
        found = self.find_cards(unknown) if unknown else {}
        written, disturbed = {}, set()
        done = skipped = 0
        for external_id in sorted(wanted):
            cards = [self._cards[external_id]] if external_id in self._cards else found.get(external_id, [])
            if not cards:
                log.add("warning", f"Contact {external_id} is not on the CardDAV server; no marker changed.")
                continue
            for card in cards:
                outcome = self.set_marker(external_id, card, wanted[external_id], log)
                if outcome is None:
                    skipped += 1
                    continue
                done += 1
                etag, clean = outcome
                if clean and etag:
                    written[self.path_of(card.href)] = _strip_etag(etag)
                else:
                    disturbed.add(self.path_of(card.href))
        if done:
            log.add("info", f"Changed the marker of {done} contact(s) on the server; {skipped} left as is.")
        self.advance_tokens(written, disturbed)

    def set_marker(self, external_id, card, wanted, log):
        """Add or remove the marker with a conditional PUT.

        Returns None when nothing was written, else (new ETag, True when the
        PUT applied to the copy this run read).
        """
        action = "mark" if wanted else "unmark"
        for attempt in (1, 2):
            new_text = with_marker(card.text, wanted)
            if new_text is None:
                return None
            if not card.etag:
                log.add("warning", f"Contact {external_id} has no ETag on the server; it was not {action}ed.")
                return None
            response = self.request(
                "PUT",
                self.absolute(card.href),
                body=new_text.encode("utf-8"),
                headers={"Content-Type": "text/vcard; charset=utf-8", "If-Match": card.etag},
            )
            if response.status_code in (200, 201, 204):
                return response.headers.get("ETag", ""), attempt == 1
            if response.status_code == 412:
                if attempt == 2:
                    log.add(
                        "warning",
                        f"Contact {external_id} changed on the server again while it was updated (412); "
                        f"it was not {action}ed, the next sync tries again.",
                        href=card.href,
                    )
                    return None
                log.add(
                    "info",
                    f"Contact {external_id} changed on the server since it was read (412); "
                    f"retrying on the current copy ({action}).",
                    href=card.href,
                )
                fresh = self.fetch_card(card.href)
                if fresh is None:
                    log.add("info", f"Contact {external_id} was deleted on the server; nothing to {action}.")
                    return None
                card = fresh
                continue
            if response.status_code in (401, 403):
                self.raise_for_status(response, f"contact {card.href}")
            if response.status_code == 404:
                log.add("info", f"Contact {external_id} was deleted on the server; nothing to {action}.")
                return None
            log.add(
                "warning",
                f"The CardDAV server refused to {action} contact {external_id} "
                f"(HTTP {response.status_code} {response.reason}).",
                href=card.href,
            )
            return None
        return None

    def fetch_card(self, href):
        """The current copy of a contact (GET), or None when it is gone."""
        response = self.request("GET", self.absolute(href))
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            self.raise_for_status(response, f"contact {href}")
        text = response.content.decode(response.encoding or "utf-8", "replace")
        return _Card(href, response.headers.get("ETag", ""), text, False)

    def find_cards(self, external_ids):
        """{external id: [cards]} of contacts this run did not keep, looked up by UID (or path)."""
        found = {}
        books = self._books if self._books is not None else self.selected_books()
        by_uid = []
        for external_id in external_ids:
            if external_id.startswith("/"):
                card = self.fetch_card(external_id)
                if card is not None:
                    found[external_id] = [card]
            elif not external_id.startswith("sha256:"):
                by_uid.append(external_id)
        for start in range(0, len(by_uid), UID_LOOKUP_BATCH):
            batch = by_uid[start : start + UID_LOOKUP_BATCH]
            filters = "".join(
                '<C:prop-filter name="UID"><C:text-match collation="i;octet" match-type="equals">'
                f"{escape(uid)}</C:text-match></C:prop-filter>"
                for uid in batch
            )
            body = _xml("C:addressbook-query", f'{_CARD_PROPS}<C:filter test="anyof">{filters}</C:filter>')
            for book in books:
                responses, _, _ = self.multistatus(
                    "REPORT",
                    self.absolute(book.id),
                    body,
                    depth=1,
                    what=f"the contacts of {book.id}",
                    missing=self.missing_book(book.id),
                )
                for r in responses:
                    text = r.props.get(_c("address-data"))
                    if r.status != 200 or text is None:
                        continue
                    uid = uid_of(text)
                    if uid in batch:
                        card = _Card(r.href, r.props.get(_d("getetag"), ""), text, False)
                        found.setdefault(uid, []).append(card)
        return found

    def advance_tokens(self, written, disturbed):
        """Move each book's token past the PUTs of this run when nothing else changed there meanwhile.

        Otherwise the next quick sync would read every contact marked now. A
        book where anyone else changed something keeps its old token.
        """
        if not written or not self._tokens or not self._books:
            return
        for book in self._books:
            key = book_key(book.id)
            prefix = book.id.rstrip("/") + "/"
            ours = {href: etag for href, etag in written.items() if href.startswith(prefix)}
            if not ours or key not in self._tokens or any(h.startswith(prefix) for h in disturbed):
                continue
            response = self.sync_collection(book, self._tokens[key])
            if response.status_code != 207:
                continue
            responses, token, truncated = parse_multistatus(response.content, f"the changes of {book.id}")
            changes = {self.path_of(r.href): _strip_etag(r.props.get(_d("getetag"), "")) for r in responses}
            if token and not truncated and changes == ours:
                self._tokens[key] = token
        self.next_cursor = encode_cursor(self._tokens)
