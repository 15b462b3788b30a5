"""portal/read_only.py: a rendered page loses every working form, control, script and link out, and keeps the rest."""

from html.parser import HTMLParser

from portal.read_only import read_only

PAGE = """<!doctype html>
<html lang="en"><head><title>Acme &amp; Co · Billing</title><link rel="stylesheet" href="/static/portal.css"></head>
<body class="x">
<header><nav><a href="/portal/">Integrations</a>
<form method="post" action="/portal/logout/"><input type="hidden" name="csrfmiddlewaretoken" value="SECRET-TOKEN"><button class="link">Log out</button></form></nav></header>
<main>
<!-- a comment stays -->
<p>Caf&eacute; &#233; &#x27;quoted&#x27; 3 &lt; 4 &amp; more</p>
<a href="/portal/integrations/7/">General</a> <a href="/portal/integrations/7/issues/?state=all">Issues</a>
<a href="/portal/integrations/7/reauthenticate/" class="button" title="old">Re-authenticate</a>
<a href="https://vendor.example/items/1" rel="noopener">At the vendor</a> <a href="mailto:help@example.com">mail</a>
<a href="?after=abc">Next page</a> <a href="#top">Top</a>
<form method="post" action="/portal/integrations/7/sync/"><input type="hidden" name="kind" value="quick"><button>Sync now</button></form>
<form class="filters" method="get"><select name="state"><option value="open" selected>Open</option></select>
<input type="search" name="q" value="a &quot;b&quot;"><textarea name="body">x</textarea><button disabled>Filter</button></form>
<br/><img src="/static/x.png" alt="">
</main>
<script src="/static/portal-progress.js"></script><script>document.title = "<b>";</script>
</body></html>"""


def mapped(path, query):
    if path == "/portal/integrations/7/":
        return "/admin/view/7/"
    if path == "/portal/integrations/7/issues/":
        return f"/admin/view/7/issues/?{query}"
    return None


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text."""

    def __init__(self, html):
        super().__init__()
        self.tags, self.text = [], []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag

    def handle_data(self, data):
        self.text.append(data)

    def all(self, tag):
        return [attrs for name, attrs in self.tags if name == tag]


def test_no_form_posts_and_no_control_works():
    page = Elements(read_only(PAGE, link_for=mapped))
    forms = page.all("form")
    assert len(forms) == 3
    assert all("action" not in f and "method" not in f for f in forms)
    controls = [attrs for tag, attrs in page.tags if tag in ("button", "input", "select", "textarea")]
    assert len(controls) == 7  # the CSRF token's input is gone
    assert all("disabled" in attrs for attrs in controls)


def test_csrf_tokens_and_scripts_are_left_out():
    html = read_only(PAGE, link_for=mapped)
    assert "SECRET-TOKEN" not in html and "csrfmiddlewaretoken" not in html
    assert "<script" not in html and "document.title" not in html and "portal-progress" not in html


def test_links_into_the_site_go_to_the_read_only_tabs_or_nowhere():
    page = Elements(read_only(PAGE, link_for=mapped))
    hrefs = [a.get("href") for a in page.all("a")]
    assert hrefs == [
        None,  # Integrations
        "/admin/view/7/",
        "/admin/view/7/issues/?state=all",
        None,  # Re-authenticate
        "https://vendor.example/items/1",
        "mailto:help@example.com",
        "?after=abc",
        "#top",
    ]
    inert = [a for a in page.all("a") if "href" not in a]
    assert len(inert) == 2 and all(a["aria-disabled"] == "true" and a["title"] for a in inert)
    assert inert[1]["class"] == "button"  # the other attributes stay


def test_what_is_not_changed_comes_back_as_it_was():
    html = read_only(PAGE, link_for=mapped)
    for kept in (
        "<!doctype html>",
        "<title>Acme &amp; Co · Billing</title>",
        '<link rel="stylesheet" href="/static/portal.css">',
        "<!-- a comment stays -->",
        "<p>Caf&eacute; &#233; &#x27;quoted&#x27; 3 &lt; 4 &amp; more</p>",
        '<img src="/static/x.png" alt="">',
        "<br/>",
    ):
        assert kept in html, kept
    # A rewritten attribute is escaped again.
    assert 'value="a &quot;b&quot;"' in html


def test_the_banner_comes_first_in_the_body():
    html = read_only(PAGE, link_for=mapped, banner='<div id="banner">Read-only</div>')
    assert '<body class="x"><div id="banner">Read-only</div>' in html
    assert html.count("Read-only") == 1
