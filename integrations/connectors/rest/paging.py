"""Reading a vendor's answers: values at a path, and where the next page is.

Pure functions and a small state machine, no HTTP: the connector sends the
requests `Pager` describes and hands back each answer.
"""

import re
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urljoin

from requests.utils import parse_header_links

from integrations.connectors import errors

MISSING = object()


def get_path(document, path, default=None):
    """The value at `path`: "" (the document), a JSON pointer (/a/0/b) or a dotted path (a.0.b).

    A dotted path first tries the whole remaining path as one key, so keys
    that hold dots (`@odata.nextLink`) need no escaping.
    """
    if path in ("", None):
        return document
    if path.startswith("/"):
        parts = [unquote(p).replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]
        value = _walk(document, parts)
    else:
        value = _dotted(document, path)
    return default if value is MISSING else value


def plain_key(path):
    """The path itself when it is a plain key (no dot, not a pointer): in an object, `document.get(path)`; else None."""
    return path if path and "." not in path and not path.startswith("/") else None


def path_getter(path):
    """`get_path` with the path fixed, for reading the same path of many rows: `getter(document, default=None)`.

    A plain key is one dict lookup; any other path, or a document that is
    not an object, goes through `get_path`.
    """
    if plain_key(path) is not None:

        def getter(document, default=None):
            if isinstance(document, dict):
                return document.get(path, default)
            return get_path(document, path, default)

        return getter
    return lambda document, default=None: get_path(document, path, default)


def _walk(document, parts):
    value = document
    for part in parts:
        value = _step(value, part)
        if value is MISSING:
            return MISSING
    return value


def _dotted(document, path):
    if isinstance(document, dict) and path in document:
        return document[path]
    head, dot, rest = path.partition(".")
    value = _step(document, head)
    if value is MISSING or not dot:
        return value
    return _dotted(value, rest)


def _step(value, part):
    if isinstance(value, dict):
        return value.get(part, MISSING)
    if isinstance(value, list) and part.isdigit() and int(part) < len(value):
        return value[int(part)]
    return MISSING


def list_at(document, path, what):
    """The list at `path`, or BadResponse saying what was there instead."""
    rows = get_path(document, path, MISSING)
    if isinstance(rows, list):
        return rows
    where = f"at {path!r}" if path else "at the top of the answer"
    found = "nothing" if rows is MISSING or rows is None else f"JSON {type(rows).__name__.replace('dict', 'object')}"
    raise errors.BadResponse(f"The vendor's {what} has no list {where} (found {found}).")


def whole_number(value):
    """An int from a JSON number or a numeric string; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


@dataclass
class Pager:
    """Where the pages of one list are, page after page.

    `first()` gives the first request (url, params); `next(answer)` the one
    after the answer just read, or None when the list has ended: on an empty
    page, a missing next (cursor, URL, Link header, next page number), or
    the total reached.
    """

    conf: dict
    url: str
    params: dict
    same_origin: object  # callable(url) -> bool
    fetched: int = 0
    pages: int = 0
    total: int | None = None
    last_body: object = None
    last_key: str = ""  # the last request read, as `connector.request_key` gives it
    # link_header / next_url: send page_param=first_page on the first request (page_param set explicitly).
    page_on_first: bool = False
    _seen: set = field(default_factory=set)

    @property
    def kind(self):
        return self.conf["pagination.type"]

    def first(self):
        conf, params = self.conf, dict(self.params)
        if self.kind != "none" and conf["pagination.size_param"]:
            params[conf["pagination.size_param"]] = conf["pagination.size"]
        if self.kind == "page" or (self.kind in ("link_header", "next_url") and self.page_on_first):
            # Some Link-header APIs page only when the first request names a page (json-server's _page).
            params[conf["pagination.page_param"]] = conf["pagination.first_page"]
        elif self.kind == "offset":
            params[conf["pagination.offset_param"]] = 0
        self.params = params
        return self.url, params

    def next(self, response, body, rows):
        """The next (url, params), or None."""
        conf = self.conf
        self.pages += 1
        self.fetched += len(rows)
        self.total = self._total(response, body)
        if self.kind == "none" or not rows:
            return None
        if self.total is not None and self.fetched >= self.total:
            return None
        if self.pages >= conf["pagination.max_pages"]:
            raise errors.BadResponse(
                f"The vendor's list went on past {conf['pagination.max_pages']} pages (pagination.max_pages); stopped."
            )
        if self.kind == "page":
            return self._next_page(body)
        if self.kind == "offset":
            self.params[conf["pagination.offset_param"]] = self.fetched
            return self.url, dict(self.params)
        if self.kind == "cursor":
            cursor = get_path(body, conf["pagination.cursor_path"])
            if cursor in (None, "", False):
                return None
            self._once(("cursor", str(cursor)))
            self.params[conf["pagination.cursor_param"]] = cursor
            return self.url, dict(self.params)
        if self.kind == "next_url":
            target = get_path(body, conf["pagination.next_url_path"])
            if not target or not isinstance(target, str):
                return None
            return self._follow(target, "next page URL")
        target = next_link(response.headers.get("Link", "") if response is not None else "")
        if not target:
            return None
        return self._follow(target, "Link header")

    def _next_page(self, body):
        conf = self.conf
        page_param = conf["pagination.page_param"]
        current = whole_number(self.params.get(page_param))
        if conf["pagination.next_page_path"]:
            announced = get_path(body, conf["pagination.next_page_path"])
            if announced in (None, "", False):
                return None
            number = whole_number(announced)
            self.params[page_param] = number if number is not None else current + 1
        else:
            self.params[page_param] = current + 1
        self._once(("page", self.params[page_param]))
        return self.url, dict(self.params)

    def _follow(self, target, what):
        url = urljoin(self.url, target)
        if not self.same_origin(url):
            raise errors.DestinationRefused(
                f"The vendor's {what} points to another site; credentials are not sent there."
            )
        self._once(("url", url))
        self.url = url
        # The next URL carries the query it needs.
        return url, {}

    def _once(self, key):
        if key in self._seen:
            raise errors.BadResponse(
                "The vendor's pagination does not advance (the same page was announced twice); stopped."
            )
        self._seen.add(key)

    def _total(self, response, body):
        conf = self.conf
        if conf["pagination.total_path"]:
            total = whole_number(get_path(body, conf["pagination.total_path"]))
            if total is not None:
                return total
        if conf["pagination.total_header"] and response is not None:
            return whole_number(response.headers.get(conf["pagination.total_header"], ""))
        return None


PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


def next_link(header):
    """The target of the RFC 8288 link whose relation types include "next" (compared without case), or None.

    `rel` may hold several space-separated types (`rel="next last"`).
    """
    for link in parse_header_links(header) if header else ():
        if "next" in link.get("rel", "").lower().split():
            return link.get("url") or None
    return None


def fill_template(template, row):
    """`https://x/{id}` with the item's values (dotted paths), each URL-quoted."""
    return PLACEHOLDER.sub(lambda m: quote(str(get_path(row, m.group(1), "")), safe=""), template)
