"""Reading contacts: sync-collection or PROPFIND listings, refused tokens, multiget in halves."""

from integrations.connectors import errors
from integrations.connectors.base import Item, ItemProblem
from integrations.connectors.carddav.dav import (
    RESOURCETYPE,
    carddav_tag,
    dav_tag,
    last_segment,
    multiget_body,
    parse_multistatus,
    sync_collection_body,
)
from integrations.connectors.carddav.marking import Card
from integrations.connectors.carddav.vcard import (
    contact_id,
    contact_label,
    contact_problems,
    read_vcard,
    uid_of,
    unreadable_problem,
)

# Statuses with which servers refuse a sync token (RFC 6578 3.2 names 403 and
# DAV:valid-sync-token; Xandikos answers 412, others 409).
REFUSED_TOKEN_STATUSES = (403, 409, 412)
# A run stops when the server cannot serve more contacts than this: past a
# few, the server is failing, not a contact.
MAX_UNSERVABLE = 10


class ReadingMixin:
    """The reading part of CardDavConnector.

    It relies on the connector's HTTP helpers (request, multistatus, propfind,
    absolute, path_of, raise_for_book, missing_book, note), `fetch_card` of
    MarkingMixin, and what the run keeps: `_cards`, `_emails` and
    `_unservable`.
    """

    def sync_collection(self, book, token):
        return self.request("REPORT", self.absolute(book.id), body=sync_collection_body(token), depth=0)

    def changes_since(self, book, token):
        """(changed member hrefs, new token), or (None, "") when the server refuses the token."""
        changed, asked = {}, token
        while True:
            response = self.sync_collection(book, asked)
            if response.status_code != 207 and (
                response.status_code in REFUSED_TOKEN_STATUSES or b"valid-sync-token" in response.content
            ):
                self.note(
                    "info",
                    f"The CardDAV server refused the sync token of {book.id} (HTTP {response.status_code}); "
                    "reading that address book in full.",
                )
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
            if not token or token == asked:
                self.note(
                    "info",
                    f"The CardDAV server's list of changes in {book.id} stopped short without moving on; "
                    "reading that address book in full.",
                )
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
        """The Items of these members, read with addressbook-multiget (see `multiget`)."""
        answers = self.multiget(book, hrefs)
        # Servers answer in any order (Radicale's is a set's); keep the listing's
        # order so that which of two contacts is "the second" does not change.
        order = {self.path_of(h): n for n, h in enumerate(hrefs)}
        answers.sort(key=lambda answer: order.get(self.path_of(answer[0]), len(order)))
        return [
            self.item(book, href, etag, text) if text is not None else self.unservable(book, href, why)
            for href, etag, text, why in answers
        ]

    def multiget(self, book, hrefs, *, part=False):
        """[(href, ETag, vCard text, "")] of these members; (href, "", None, why) when not servable.

        A multiget that fails (an HTTP error, a malformed answer) is asked
        again in halves, down to single contacts; a contact that fails alone
        is fetched with a GET, and when that fails too, it is one the server
        cannot serve (an item issue). Members removed since the listing are
        left out.
        """
        try:
            responses, _, _ = self.multistatus(
                "REPORT",
                self.absolute(book.id),
                multiget_body(hrefs),
                depth=0,
                what=f"the contacts of {book.id}",
                missing=self.missing_book(book.id),
            )
        except errors.ConnectorError as exc:
            if not self.contact_level(exc):
                raise
            if len(hrefs) > 1:
                if not part:
                    self.note(
                        "info",
                        f"Reading {len(hrefs)} contacts of {book.id} failed ({exc.message.rstrip('.')}); "
                        "asking again in halves.",
                    )
                middle = len(hrefs) // 2
                return self.multiget(book, hrefs[:middle], part=True) + self.multiget(
                    book, hrefs[middle:], part=True
                )
            return self.fetch_alone(hrefs[0], exc.message)
        answers = []
        for r in responses:
            if r.status == 404:
                continue  # removed since it was listed
            text = r.props.get(carddav_tag("address-data"))
            if r.status == 200 and text is not None:
                answers.append((r.href, r.props.get(dav_tag("getetag"), ""), text, ""))
            else:
                why = f"The server answered without its vCard (status {r.status})."
                answers += self.fetch_alone(r.href, why)
        return answers

    @staticmethod
    def contact_level(exc):
        """Whether a failed request may be one contact's fault: an HTTP error answer or a malformed one.

        Not a refused login or access, a missing book, a redirect, a timeout or
        a server that cannot be reached: asking again in parts would not help.
        """
        status = exc.status or 0
        if isinstance(exc, errors.Unavailable):
            return status >= 500
        if isinstance(exc, errors.BadResponse):
            return status != 404 and not 300 <= status < 400
        return False

    def fetch_alone(self, href, why):
        """What `multiget` gives for one contact it could not read, fetched alone with a GET.

        [] when it is gone since the listing; (href, "", None, why) when the
        server cannot serve it.
        """
        try:
            card = self.fetch_card(href)
        except errors.ConnectorError as exc:
            if not (self.contact_level(exc) or isinstance(exc, errors.Forbidden)):
                raise
            why = f"{why.rstrip('.')}; alone: {exc.message}"
        else:
            return [] if card is None else [(card.href, card.etag, card.text, "")]
        path = self.path_of(href)
        self._unservable.add(contact_id("", path))
        if len(self._unservable) > MAX_UNSERVABLE:
            raise errors.BadResponse(
                f"The CardDAV server could not serve more than {MAX_UNSERVABLE} contacts in this sync; "
                f"the last, {path}: {why}"
            )
        self.note("warning", f"The CardDAV server could not serve contact {path}: {why}")
        return [(href, "", None, why)]

    def unservable(self, book, href, why):
        """The Item of a contact the server could not serve: an issue naming its href, keyed by its path."""
        path = self.path_of(href)
        return Item(
            external_id=contact_id("", path),
            data={"href": path, "unreadable": True},
            label=last_segment(path),
            account_id=book.id,
            vendor_url=self.absolute(href),
            problems=[
                ItemProblem(
                    "ITEM_INVALID_VALUE",
                    f"The CardDAV server could not serve this contact ({path}), in a batch nor alone: "
                    f"{why[:500]}",
                    {"field": "vCard", "href": path},
                )
            ],
        )

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
