"""A page between the vendor and the database: sorted by account mapping, its problems as issue rows.

Pure functions (no database, no I/O), run in the page feed's thread
(`read_pages`) and by the run that writes the page (runner.py).
"""

from dataclasses import dataclass

from integrations.connectors.base import ItemProblem, Page
from integrations.sync.records import item_contents
from issues.recording import ProblemRow


@dataclass
class SortedPage:
    """A page's items by what happens to them: stored, unmapped (an issue, not stored), ignored (neither)."""

    to_store: list
    unmapped: list
    ignored_ids: list
    held: int = 0


_STORE, _HOLD, _UNMAPPED, _IGNORE = "store", "hold", "unmapped", "ignore"


def _fate(account_id, mappings, held_accounts):
    """What happens to the items of one vendor account."""
    if not account_id:
        return _STORE
    if account_id in held_accounts:
        return _HOLD
    mapping = mappings.get(account_id)
    if mapping is None or not mapping.is_mapped:
        return _UNMAPPED
    return _IGNORE if mapping.ignored else _STORE


def classify(items, mappings, held_accounts=frozenset()):
    """Sort a page's items by their vendor account's mapping. Pure: no database, no I/O.

    Items of a new account waiting for its mapping (`held_accounts`) are
    neither stored nor an issue each: the account's one issue speaks for them.
    A page holds the items of a few accounts: each account is decided once,
    and a page whose accounts are all stored is kept as it is.
    """
    fates = {account_id: _fate(account_id, mappings, held_accounts) for account_id in {item.account_id for item in items}}
    if all(fate == _STORE for fate in fates.values()):
        return SortedPage(list(items), [], [], 0)
    to_store, unmapped, ignored_ids, held = [], [], [], 0
    for item in items:
        fate = fates[item.account_id]
        if fate == _STORE:
            to_store.append(item)
        elif fate == _HOLD:
            held += 1
        elif fate == _IGNORE:
            ignored_ids.append(item.external_id)
        else:
            unmapped.append(
                ProblemRow(
                    item.external_id,
                    "ITEM_UNMAPPED",
                    f"The item belongs to vendor account '{item.account_id}', which is not mapped.",
                    item.label,
                    item.vendor_url,
                    {"vendor_account_id": item.account_id},
                )
            )
    return SortedPage(to_store, unmapped, ignored_ids, held)


@dataclass
class ReadPage:
    """A page as the feed thread hands it over, with what can be worked out without the database."""

    page: Page
    notes: list  # (level, message) the connector noted while reading it
    sorted: SortedPage
    contents: dict  # item_contents of the items to store


def read_pages(connector, *, full, cursor, mappings, held_accounts):
    """The connector's pages, sorted by mapping, their items' JSON and hashes worked out (run in the feed thread)."""
    for page in connector.iter_pages(full=full, cursor=cursor):
        notes = connector.notes[:]
        del connector.notes[: len(notes)]
        sorted_page = classify(page.items, mappings, held_accounts)
        yield ReadPage(page, notes, sorted_page, item_contents(sorted_page.to_store))


def new_account_issue_id(account_id):
    """The external id of the one issue a new vendor account raises."""
    return f"account:{account_id}"[:200]


def mark_duplicates(duplicates):
    """Give each repeated copy the ITEM_DUPLICATE problem; their external ids."""
    for dup in duplicates:
        dup.problems = [
            ItemProblem(
                "ITEM_DUPLICATE", f"The vendor sent item '{dup.external_id}' more than once; the first copy was kept."
            )
        ]
    return {dup.external_id for dup in duplicates}


def item_problems(items, record_ids):
    """One ProblemRow per problem of each item, linked to our record where there is one."""
    return [
        ProblemRow(
            item.external_id,
            problem.code,
            problem.message,
            item.label,
            item.vendor_url,
            problem.details,
            record_ids.get(item.external_id),
        )
        for item in items
        for problem in item.problems
    ]
