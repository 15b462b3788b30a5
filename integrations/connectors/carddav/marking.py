"""Marking contacts on the server: the "Sync Error" category, added and removed with conditional PUTs.

`mark_items` adds or removes the category with a PUT carrying If-Match with
the ETag of the copy it edits; a 412 (someone edited the contact meanwhile)
is retried once on a fresh GET and otherwise logged. There is never a PUT
without If-Match. Contacts already as wanted are not written. Contacts the run
did not keep are looked up by UID (addressbook-query). Afterwards a book's
token moves past our own PUTs when nothing else changed there, so the next
quick sync does not read the marked contacts again. A contact the server
could not serve in this run is left alone (logged).
"""

from dataclasses import dataclass

from integrations.connectors.carddav.cursor import book_key, encode_cursor
from integrations.connectors.carddav.dav import (
    carddav_tag,
    dav_tag,
    parse_multistatus,
    strip_etag,
    uid_query_body,
)
from integrations.connectors.carddav.vcard import uid_of, with_marker

UID_LOOKUP_BATCH = 25


@dataclass
class Card:
    """What marking needs of one contact read in this run."""

    href: str
    etag: str
    text: str
    marked: bool


class MarkingMixin:
    """The marking part of CardDavConnector.

    It relies on the connector's HTTP helpers (request, absolute, path_of,
    multistatus, sync_collection, raise_for_status), its book listing
    (selected_books, missing_book) and what the run kept: `_cards`
    {external id: Card}, `_unservable` (external ids of contacts the server
    could not serve), `_books`, `_tokens` and `_read_everything`.
    """

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
        for external_id in sorted(self._unservable & wanted.keys()):
            log.add("warning", f"Contact {external_id} could not be read from the server; no marker changed.")
            del wanted[external_id]
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
                    written[self.path_of(card.href)] = strip_etag(etag)
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
        # vCards are UTF-8 unless the server names another charset (requests
        # would assume ISO-8859-1 for a text/vcard without one).
        named = "charset=" in response.headers.get("Content-Type", "").lower()
        charset = response.encoding if named else "utf-8"
        try:
            text = response.content.decode(charset or "utf-8", "replace")
        except LookupError:  # a charset Python does not know
            text = response.content.decode("utf-8", "replace")
        return Card(href, response.headers.get("ETag", ""), text, False)

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
            body = uid_query_body(batch)
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
                    text = r.props.get(carddav_tag("address-data"))
                    if r.status != 200 or text is None:
                        continue
                    uid = uid_of(text)
                    if uid in batch:
                        card = Card(r.href, r.props.get(dav_tag("getetag"), ""), text, False)
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
            changes = {
                self.path_of(r.href): strip_etag(r.props.get(dav_tag("getetag"), "")) for r in responses
            }
            if token and not truncated and changes == ours:
                self._tokens[key] = token
        self.next_cursor = encode_cursor(self._tokens)
