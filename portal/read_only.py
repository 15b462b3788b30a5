"""A rendered portal page made read-only, for staff viewing it as the customer sees it (views_as_customer).

The page is the portal's own, rendered from its templates with its context;
this only takes its power away, whatever the templates hold now or later:
every form loses its action and method (it posts nowhere), every control is
disabled, CSRF tokens are left out, scripts are dropped (nothing polls or
submits), and every link into this site either goes to the read-only
counterpart `link_for` names (the General and Issues tabs) or becomes inert
text. Links elsewhere (the vendor's record, a mailto) stay. The stdlib's
HTMLParser reads the page; what is not changed is written back as it came.
"""

from html import escape
from html.parser import HTMLParser
from urllib.parse import urlsplit

CONTROLS = {"button", "input", "select", "textarea"}
INERT_TITLE = "Not available while viewing as the customer"


def read_only(html, *, link_for, banner=""):
    """The page without a working form, script or link out of the read-only view; `banner` right after <body>.

    `link_for(path, query)` is the read-only URL for a link into this site,
    or None to make the link inert.
    """
    writer = _ReadOnlyWriter(link_for, banner)
    writer.feed(html)
    writer.close()
    return "".join(writer.out)


def _start_tag(tag, attrs, closing):
    parts = [tag]
    for name, value in attrs:
        parts.append(name if value is None else f'{name}="{escape(value, quote=True)}"')
    return f"<{' '.join(parts)}{' /' if closing else ''}>"


class _ReadOnlyWriter(HTMLParser):
    def __init__(self, link_for, banner):
        super().__init__(convert_charrefs=False)
        self.link_for = link_for
        self.banner = banner
        self.out = []
        self.in_script = False

    def _tag(self, tag, attrs, closing):
        if tag == "script":
            self.in_script = not closing
            return
        changed = self._changed(tag, attrs)
        if changed is None:
            self.out.append(self.get_starttag_text())
        elif changed is not False:
            self.out.append(_start_tag(tag, changed, closing))
        if tag == "body" and self.banner:
            self.out.append(self.banner)

    def _changed(self, tag, attrs):
        """The tag's new attributes; None: unchanged; False: leave the tag out."""
        values = dict(attrs)
        if tag == "form":
            return [(n, v) for n, v in attrs if n not in ("action", "method")]
        if tag in CONTROLS:
            if tag == "input" and values.get("name") == "csrfmiddlewaretoken":
                return False
            return [*((n, v) for n, v in attrs if n != "disabled"), ("disabled", None)]
        if tag == "a" and values.get("href"):
            return self._link(attrs, values["href"])
        return None

    def _link(self, attrs, href):
        url = urlsplit(href)
        if url.scheme or url.netloc or not url.path.startswith("/"):
            return None  # elsewhere, or relative to this read-only page (a pager's "?after=", "#top")
        target = self.link_for(url.path, url.query)
        others = [(n, v) for n, v in attrs if n not in ("href", "title", "aria-disabled")]
        if target:
            return [("href", target), *others]
        return [*others, ("aria-disabled", "true"), ("title", INERT_TITLE)]

    def handle_starttag(self, tag, attrs):
        self._tag(tag, attrs, closing=False)

    def handle_startendtag(self, tag, attrs):
        self._tag(tag, attrs, closing=True)

    def handle_endtag(self, tag):
        if tag == "script":
            self.in_script = False
            return
        self.out.append(f"</{tag}>")

    def handle_data(self, data):
        if not self.in_script:
            self.out.append(data)

    def handle_entityref(self, name):
        self.out.append(f"&{name};")

    def handle_charref(self, name):
        self.out.append(f"&#{name};")

    def handle_comment(self, data):
        self.out.append(f"<!--{data}-->")

    def handle_decl(self, decl):
        self.out.append(f"<!{decl}>")

    def handle_pi(self, data):
        self.out.append(f"<?{data}>")

    def unknown_decl(self, data):
        self.out.append(f"<![{data}]>")
