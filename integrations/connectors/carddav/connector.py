"""The `carddav` connector class: settings, credentials, HTTP helpers and the contract methods."""

import logging
from urllib.parse import urljoin, urlsplit

from integrations.connectors import errors
from integrations.connectors.base import Connector, Page, VendorAccount, register
from integrations.connectors.carddav.cursor import book_key, decode_cursor, encode_cursor
from integrations.connectors.carddav.dav import (
    DISPLAYNAME,
    RESOURCETYPE,
    XML_HEADERS,
    carddav_tag,
    parse_multistatus,
    propfind_body,
)
from integrations.connectors.carddav.discovery import DiscoveryMixin
from integrations.connectors.carddav.marking import MarkingMixin
from integrations.connectors.carddav.reading import ReadingMixin
from integrations.connectors.fields import Field, Kind
from syncconsole import outbound

logger = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 200
MAX_PAGE_SIZE = 1000


@register
class CardDavConnector(DiscoveryMixin, ReadingMixin, MarkingMixin, Connector):
    key = "carddav"
    label = "CardDAV address book"
    item_type = "contact"
    vendor_kind = "mailbox"
    supports_marking = True
    setting_fields = (
        Field(
            "addressbook",
            "Address book",
            help="The address book to sync: its path (/alice/contacts/) or its display name; "
            "empty: every address book of the user.",
        ),
        Field(
            "page_size",
            "Contacts per request",
            Kind.INTEGER,
            default=DEFAULT_PAGE_SIZE,
            minimum=1,
            maximum=MAX_PAGE_SIZE,
            help="How many vCards one addressbook-multiget asks for.",
        ),
    )
    credential_fields = (
        Field(
            "url",
            "Server URL",
            Kind.URL,
            required=True,
            help="The server, a principal or an address book URL; a bare server root is looked up "
            "through /.well-known/carddav.",
        ),
        Field("username", "Username", help="Empty with the password for a server without authentication."),
        Field("password", "Password", Kind.SECRET),
    )

    def __init__(self, settings, credentials, http):
        super().__init__(settings, credentials, http)
        self.base_url = str(self.credentials.get("url", "")).strip()
        parts = urlsplit(self.base_url)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.page_size = self.page_size_of(self.settings)
        username, password = self.credentials.get("username", ""), self.credentials.get("password", "")
        # Neither: a server without authentication, and no Authorization header.
        self.auth = (username, password) if username or password else None
        self._reset_run()

    def _reset_run(self):
        # Per run: the books read, their tokens, what marking needs, and the
        # normalised emails met so far (for ITEM_DUPLICATE).
        self._books = None
        self._tokens = {}
        self._cards = {}
        self._emails = {}
        self._unservable = set()
        self._read_everything = False

    # -- settings ----------------------------------------------------------

    @staticmethod
    def page_size_of(settings):
        try:
            return int((settings or {}).get("page_size") or DEFAULT_PAGE_SIZE)
        except (TypeError, ValueError):
            return DEFAULT_PAGE_SIZE

    @classmethod
    def validate_credentials(cls, credentials):
        if bool(credentials.get("username")) != bool(credentials.get("password")):
            return [
                "Credentials 'username' and 'password' go together: "
                "give both, or neither for a server without authentication."
            ]
        return []

    # -- HTTP --------------------------------------------------------------

    def note(self, level, message):
        """A line for the session log (the engine moves the connector's `notes` there)."""
        logger.info("%s", message)
        self.notes.append((level, message))

    def absolute(self, href, base=None):
        """The URL of an href the server sent, refused unless it stays on the server's origin.

        The saved credentials go with every request: a server that names
        another host, port or scheme (or a javascript: URL) is not followed.
        A relative href is resolved against `base` (the URL that answered),
        else the server URL.
        """
        if href.startswith("/") and not href.startswith("//"):
            return self.origin + href  # the common case, without urljoin's cost per contact
        url = urljoin(base or self.base_url, href)
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
            auth=self.auth,
            allow_redirects=False,
        )

    def raise_for_status(self, response, what, *, missing=None):
        status = response.status_code
        if status == 401:
            if self.auth is None:
                raise errors.AuthInvalid(
                    f"The CardDAV server asks for a username and password (401 on {what}); "
                    "the integration has none.",
                    status=status,
                )
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

    def raise_for_book(self, response, book):
        self.raise_for_status(response, f"the address book {book.id}", missing=self.missing_book(book.id))

    @staticmethod
    def missing_book(path):
        return (
            f"The address book {path} does not exist on the CardDAV server (404): it was deleted or renamed; "
            "check the integration's 'addressbook' setting."
        )

    # -- the contract ------------------------------------------------------

    def check_credentials(self):
        self.starting_point()

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
