"""`carddav`: contacts from CardDAV address books (RFC 6352), such as a Radicale or Xandikos server.

Credentials: `url` (the server, a principal or an address book URL),
`username` and `password` (HTTP Basic), both or neither: without them no
Authorization header is sent (a server without authentication). Settings:

    addressbook        the address book to sync: its path (/alice/contacts/) or its
                       display name; empty: every address book of the user
    page_size          contacts per addressbook-multiget (default 200)
    mark_source_items  the engine's option: contacts with open issues get the
                       category "Sync Error" on the server, removed once fixed

Discovery follows DAV:current-user-principal to CARDDAV:addressbook-home-set
and lists the address books there; each is a vendor account (id = its path,
name = its display name) and each contact's account is its address book.
When `url` is a bare server root (path "/" or none), discovery asks
/.well-known/carddav first (RFC 6764; VendorHttp follows its redirects within
the origin) and the root itself when that names no user (missing, not
WebDAV, or a redirect to another site, where the credentials never go).

A full sync lists a book's members with an RFC 6578 sync-collection from no
token (or PROPFIND Depth 1 where the server lacks it), which also gives the
book's current sync-token, then reads the vCards with addressbook-multiget,
`page_size` hrefs at a time: memory holds the book's hrefs and one page of
contacts. A multiget that fails (an HTTP error answer or a malformed one) is
asked again in halves, down to single contacts, and a contact that fails
alone is fetched with a GET; one the server cannot serve even so is an item
(keyed by its path) with an ITEM_INVALID_VALUE issue naming its href, and
the rest of the book syncs. More than MAX_UNSERVABLE (10) such contacts in a
run fail the sync (VENDOR_BAD_RESPONSE): that is a failing server.

A quick sync asks sync-collection what changed since the stored token and
reads only those members; removed members are not items (full syncs find
deletions). When the server refuses an old token (HTTP 403, 409 or 412, or a
body with DAV:valid-sync-token whatever the status) that book is read in
full, once, and the session log says so (the connector's `notes`, which the
engine moves into the log). The tokens of all books travel in `next_cursor`
as compact JSON, within the 200 characters the engine stores; a book whose
token does not fit is read in full next time.

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
Only the CATEGORIES line changes (refolded at 75 octets, never inside a UTF-8
sequence); every other line goes back byte for byte, with CRLF line breaks
(a vCard read out of XML has lost its CRs). A contact the server could not
serve is not marked (logged). Contacts this run did not keep are looked up
by UID (addressbook-query).
Afterwards a book's token moves past our own PUTs when nothing else changed
there, so the next quick sync does not read the marked contacts again. After
a run that read every contact, one that carries the marker and had no problem
loses it: the engine settles duplicates only when a full sync ends, after
`mark_items`, and never hands those to it.

The modules: `dav` (WebDAV/CardDAV XML: namespaces, request bodies,
multistatus answers), `cursor` (the sync tokens in `next_cursor`), `vcard`
(fields, item rules, the marker in a vCard's text), `connector` (the
connector class: settings, credentials, HTTP helpers and the contract
methods), `discovery` (/.well-known/carddav, principal, home set, the
selected books), `reading` (listings, refused tokens, multiget in halves,
contacts the server cannot serve) and `marking` (the conditional PUTs);
`connector` mixes in the last three. Importing the package registers the
connector.
"""

from integrations.connectors.base import VendorAccount
from integrations.connectors.carddav.connector import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, CardDavConnector
from integrations.connectors.carddav.cursor import CURSOR_LIMIT, book_key, decode_cursor, encode_cursor
from integrations.connectors.carddav.dav import CARDDAV, DAV, XML_HEADERS, DavResponse, parse_multistatus
from integrations.connectors.carddav.marking import UID_LOOKUP_BATCH
from integrations.connectors.carddav.vcard import MARKER, card_fields, is_marker, uid_of, with_marker

__all__ = [
    "CARDDAV",
    "CURSOR_LIMIT",
    "DAV",
    "DEFAULT_PAGE_SIZE",
    "MARKER",
    "MAX_PAGE_SIZE",
    "UID_LOOKUP_BATCH",
    "XML_HEADERS",
    "CardDavConnector",
    "DavResponse",
    "VendorAccount",
    "book_key",
    "card_fields",
    "decode_cursor",
    "encode_cursor",
    "is_marker",
    "parse_multistatus",
    "uid_of",
    "with_marker",
]
