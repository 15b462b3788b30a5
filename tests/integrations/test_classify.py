"""The page classification of the runner is a pure function: no database, no vendor."""

from types import SimpleNamespace

from integrations.connectors.base import Item
from integrations.sync.pages import classify


def mapping(target="", ignored=False):
    return SimpleNamespace(ignored=ignored, is_mapped=bool(target) or ignored)


def test_items_go_where_their_accounts_mapping_says():
    items = [
        Item("a", {}, account_id="north"),
        Item("b", {}, account_id="skip"),
        Item("c", {}, account_id="new", label="Item C", vendor_url="https://v.example/c"),
        Item("d", {}, account_id="half"),
        Item("e", {}),  # a vendor without accounts
    ]
    mappings = {"north": mapping("North"), "skip": mapping(ignored=True), "half": mapping()}

    page = classify(items, mappings)

    assert [i.external_id for i in page.to_store] == ["a", "e"]
    assert page.ignored_ids == ["b"]
    assert [(p.external_id, p.code) for p in page.unmapped] == [("c", "ITEM_UNMAPPED"), ("d", "ITEM_UNMAPPED")]
    first = page.unmapped[0]
    assert (first.label, first.vendor_url, first.details) == ("Item C", "https://v.example/c", {"vendor_account_id": "new"})
    assert "'new'" in first.message


def test_held_accounts_are_counted_not_stored_and_a_page_of_mapped_accounts_is_kept_as_it_is():
    items = [Item(str(n), {}, account_id=account) for n, account in enumerate(["north", "new", "north", "new", ""])]
    mappings = {"north": mapping("North")}

    page = classify(items, mappings, held_accounts={"new"})
    assert [i.external_id for i in page.to_store] == ["0", "2", "4"]
    assert (page.held, page.unmapped, page.ignored_ids) == (2, [], [])

    whole = classify([items[0], items[2], items[4]], mappings)
    assert [i.external_id for i in whole.to_store] == ["0", "2", "4"]
    assert (whole.held, whole.unmapped, whole.ignored_ids) == (0, [], [])
