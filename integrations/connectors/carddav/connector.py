"""The `carddav` connector: discovery, full and quick reads (the package docstring describes it)."""

import logging
from urllib.parse import urljoin, urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from integrations.connectors import errors
from integrations.connectors.base import Connector, Field, Item, Page, VendorAccount, register
from integrations.connectors.carddav.cursor import book_key, decode_cursor, encode_cursor
from integrations.connectors.carddav.dav import (
    DISPLAYNAME,
    RESOURCETYPE,
    XML_HEADERS,
    DavResponse,
    carddav_tag,
    dav_tag,
    last_segment,
    multiget_body,
    parse_multistatus,
    propfind_body,
    sync_collection_body,
)
from integrations.connectors.carddav.marking import Card, MarkingMixin
from integrations.connectors.carddav.vcard import (
    contact_id,
    contact_label,
    contact_problems,
    read_vcard,
    uid_of,
    unreadable_problem,
)
from syncconsole import outbound

logger = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 200
MAX_PAGE_SIZE = 1000


@register
class CardDavConnector(MarkingMixin, Connector):
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
        body = propfind_body(props)
        responses, _, _ = self.multistatus("PROPFIND", url, body, depth=depth, what=what, missing=missing)
        return responses

    # -- credentials and discovery ------------------------------------------

    def check_credentials(self):
        self.propfind(self.base_url, ["<D:current-user-principal/>"], depth=0, what="the server URL")

    def discover_books(self):
        """Every address book of the user: [VendorAccount(path, display name)]."""
        found = self.propfind(
            self.base_url,
            ["<D:current-user-principal/>", "<C:addressbook-home-set/>", RESOURCETYPE, DISPLAYNAME],
            depth=0,
            what="the server URL",
            missing=f"Nothing answers at {self.base_url} (404): check the server URL.",
        )
        first = found[0] if found else DavResponse(self.base_url)
        if carddav_tag("addressbook") in first.types:
            return [self.account(first)]
        home = first.props.get(carddav_tag("addressbook-home-set"))
        if not home:
            principal = first.props.get(dav_tag("current-user-principal"))
            if not principal:
                raise errors.BadResponse(
                    f"The server at {self.base_url} does not say who the user is "
                    "(no DAV:current-user-principal): is it a CardDAV server?"
                )
            answer = self.propfind(
                self.absolute(principal), ["<C:addressbook-home-set/>"], depth=0, what="the user's principal"
            )
            home = answer[0].props.get(carddav_tag("addressbook-home-set")) if answer else ""
            if not home:
                raise errors.BadResponse(
                    f"The user's principal {principal} names no address book home "
                    "(CARDDAV:addressbook-home-set)."
                )
        members = self.propfind(
            self.absolute(home), [RESOURCETYPE, DISPLAYNAME], depth=1, what="the address book home"
        )
        return [self.account(m) for m in members if carddav_tag("addressbook") in m.types]

    def account(self, response):
        path = self.path_of(response.href)
        return VendorAccount(path, response.props.get(dav_tag("displayname")) or last_segment(path))

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
            b for b in books if last_segment(b.id).casefold() == folded
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
                [RESOURCETYPE, DISPLAYNAME],
                depth=0,
                what=f"the address book {books[0].id}",
                missing=self.missing_book(books[0].id),
            )
            if not found or carddav_tag("addressbook") not in found[0].types:
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
        return self.request("REPORT", self.absolute(book.id), body=sync_collection_body(token), depth=0)

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
            [RESOURCETYPE, "<D:getetag/>"],
            depth=1,
            what=f"the address book {book.id}",
            missing=self.missing_book(book.id),
        )
        itself = [r for r in found if self.path_of(r.href).rstrip("/") == book.id.rstrip("/")]
        if itself and carddav_tag("addressbook") not in itself[0].types:
            raise errors.BadResponse(f"{book.id} on the CardDAV server is not an address book.")
        return sorted(r.href for r in found if r.status == 200 and self.is_member(book, r)), ""

    def is_member(self, book, response):
        if dav_tag("collection") in response.types:
            return False
        return self.path_of(response.href).rstrip("/") != book.id.rstrip("/")

    def read_cards(self, book, hrefs):
        """The Items of these members, read with one addressbook-multiget."""
        responses, _, _ = self.multistatus(
            "REPORT",
            self.absolute(book.id),
            multiget_body(hrefs),
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
            text = r.props.get(carddav_tag("address-data"))
            if r.status != 200 or text is None:
                raise errors.BadResponse(
                    f"The CardDAV server answered the contacts of {book.id} without the vCard of {r.href} "
                    f"(status {r.status})."
                )
            items.append(self.item(book, r.href, r.props.get(dav_tag("getetag"), ""), text))
        return items

    def item(self, book, href, etag, text):
        path = self.path_of(href)
        url = self.absolute(href)
        try:
            fields, marked = read_vcard(text)
        except Exception as exc:  # vobject raises many types on bad input
            external_id = contact_id(uid_of(text), path)
            self._cards[external_id] = Card(href, etag, text, False)
            return Item(
                external_id=external_id,
                data={"href": path, "unreadable": True},
                label=external_id,
                account_id=book.id,
                vendor_url=url,
                problems=[unreadable_problem(exc)],
            )
        external_id = contact_id(fields["uid"], path)
        data = {**fields, "href": path}
        label = contact_label(fields, external_id)
        problems = contact_problems(external_id, label, fields, self._emails)
        if problems or marked:
            self._cards[external_id] = Card(href, etag, text, marked)
        return Item(external_id, data, label=label, account_id=book.id, vendor_url=url, problems=problems)
