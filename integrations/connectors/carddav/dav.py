"""WebDAV and CardDAV XML: the namespaces, the request bodies, and reading multistatus answers."""

from dataclasses import dataclass, field
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

from integrations.connectors import errors

DAV = "DAV:"
CARDDAV = "urn:ietf:params:xml:ns:carddav"
XML_HEADERS = {"Content-Type": "application/xml; charset=utf-8"}
RESOURCETYPE = "<D:resourcetype/>"
DISPLAYNAME = "<D:displayname/>"
CARD_PROPS = "<D:prop><D:getetag/><C:address-data/></D:prop>"


def dav_tag(name):
    return f"{{{DAV}}}{name}"


def carddav_tag(name):
    return f"{{{CARDDAV}}}{name}"


def xml_body(root, body):
    """A request body: `root` (D:... or C:...) holding `body`, with both namespaces declared."""
    head = f'<?xml version="1.0" encoding="utf-8"?>\n<{root} xmlns:D="DAV:" xmlns:C="{CARDDAV}">'
    return f"{head}{body}</{root}>".encode()


# -- request bodies -----------------------------------------------------------


def propfind_body(props):
    return xml_body("D:propfind", "<D:prop>" + "".join(props) + "</D:prop>")


def sync_collection_body(token):
    """An RFC 6578 sync-collection asking what changed since `token` ("": every member)."""
    return xml_body(
        "D:sync-collection",
        f"<D:sync-token>{escape(token)}</D:sync-token><D:sync-level>1</D:sync-level>"
        "<D:prop><D:getetag/></D:prop>",
    )


def multiget_body(hrefs):
    """An addressbook-multiget of these members' ETags and vCards."""
    return xml_body(
        "C:addressbook-multiget",
        CARD_PROPS + "".join(f"<D:href>{escape(h)}</D:href>" for h in hrefs),
    )


def uid_query_body(uids):
    """An addressbook-query for the contacts whose UID is any of `uids`."""
    filters = "".join(
        '<C:prop-filter name="UID"><C:text-match collation="i;octet" match-type="equals">'
        f"{escape(uid)}</C:text-match></C:prop-filter>"
        for uid in uids
    )
    return xml_body("C:addressbook-query", f'{CARD_PROPS}<C:filter test="anyof">{filters}</C:filter>')


# -- hrefs and ETags ----------------------------------------------------------


def last_segment(path):
    return path.rstrip("/").rsplit("/", 1)[-1]


def strip_etag(etag):
    etag = (etag or "").strip()
    return etag[2:] if etag.startswith("W/") else etag


# -- multistatus answers ------------------------------------------------------


@dataclass
class DavResponse:
    """One DAV:response of a multistatus: its href, status and the properties found (200)."""

    href: str
    status: int = 200
    props: dict = field(default_factory=dict)  # clark name -> text, or the href it holds
    types: frozenset = frozenset()  # the children of DAV:resourcetype


def _status_code(text):
    parts = (text or "").split()
    try:
        return int(parts[1])
    except (IndexError, ValueError):
        return 0


def _response(element):
    href = (element.findtext(dav_tag("href")) or "").strip()
    status_text = element.findtext(dav_tag("status"))
    result = DavResponse(href, _status_code(status_text) if status_text else 200)
    types = set()
    for propstat in element.findall(dav_tag("propstat")):
        prop_element = propstat.find(dav_tag("prop"))
        if prop_element is None or _status_code(propstat.findtext(dav_tag("status"))) != 200:
            continue
        for prop in prop_element:
            if prop.tag == dav_tag("resourcetype"):
                types.update(child.tag for child in prop)
                continue
            inner = prop.find(dav_tag("href"))
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
                if depth == 2 and element.tag == dav_tag("response"):
                    responses.append(_response(element))
                    root.remove(element)
                elif depth == 2 and element.tag == dav_tag("sync-token"):
                    token = (element.text or "").strip()
                depth -= 1
        parser.close()
    except ET.ParseError as exc:
        raise errors.BadResponse(f"The CardDAV server answered {what} with malformed XML: {exc}.") from None
    if root is None or root.tag != dav_tag("multistatus"):
        raise errors.BadResponse(
            f"The CardDAV server answered {what} with XML that is not a DAV:multistatus "
            f"({root.tag if root is not None else 'empty'})."
        )
    truncated = any(r.status == 507 for r in responses)
    return responses, token, truncated
