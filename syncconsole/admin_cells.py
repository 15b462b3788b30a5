"""Changelist cells that fit 1280 px: two lines in one column, long text cut with its whole in the title.

Any app's admin may use these (no app's models here). The CSS in
static/syncconsole.css cuts `.sc-cell` and `.sc-sub` at the column's width
with an ellipsis; the title attribute keeps the whole text a hover away.
"""

from django.utils.html import format_html


def two_lines(main, sub=""):
    """`main` over a quieter `sub` ("Pax8 billing" over "Acme · simulator"), each cut to the column."""
    title = f"{main} \u2014 {sub}" if sub else str(main)
    if not sub:
        return format_html('<span class="sc-cell" title="{}">{}</span>', title, main)
    return format_html(
        '<span class="sc-cell" title="{}">{}<span class="sc-sub">{}</span></span>', title, main, sub
    )


def cut(text, empty=""):
    """One line of text cut to the column, whole in its title."""
    text = str(text) if text not in (None, "") else empty
    return format_html('<span class="sc-cell" title="{}">{}</span>', text, text)
