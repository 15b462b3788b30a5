"""A page's rows become Items field by field and rule by rule (connectors/rest/items.py): pure, no vendor."""

import pytest

from integrations.connectors import errors
from integrations.connectors.base import Item
from integrations.connectors.rest.items import ItemReader
from integrations.connectors.rest.options import REST_FIELDS


def reader(**settings):
    return ItemReader({**{field.name: field.default for field in REST_FIELDS}, **settings})


def problems(item):
    return [(problem.code, problem.message) for problem in item.problems]


def test_each_row_gets_its_problems_in_the_order_of_the_rules():
    rules = reader(
        **{
            "rules.required_fields": ["name", "email"],
            "rules.email_fields": ["email"],
            "rules.non_negative_fields": ["quantity"],
            "rules.checks": [{"field": "status", "one_of": ["active"]}],
        }
    )
    rows = [
        {"id": "fine", "name": "Ann", "email": "ann@example.com", "quantity": 0, "status": "active"},
        {"id": "empty", "name": "", "email": None, "quantity": -1, "status": "gone"},
        {"id": "falsy", "name": 0, "email": "ann@localhost", "quantity": True},
        {"id": "listed", "name": [], "email": {}, "quantity": "7"},
        {"id": "floats", "name": False, "email": "a b@example.com", "quantity": 0.5},
    ]

    items = rules.read_page(rows)

    assert [item.external_id for item in items] == ["fine", "empty", "falsy", "listed", "floats"]
    assert [item.data for item in items] == rows
    assert problems(items[0]) == []
    assert problems(items[1]) == [
        ("ITEM_MISSING_FIELD", "Required field 'name' is missing."),
        ("ITEM_MISSING_FIELD", "Required field 'email' is missing."),
        ("ITEM_INVALID_VALUE", "Field 'quantity' must be a number of at least 0, got -1."),
        ("ITEM_INVALID_VALUE", "Field 'status' must be one of active, got 'gone'."),
    ]
    # 0 and False are values, not missing ones; a boolean is not a number.
    assert problems(items[2]) == [
        ("ITEM_INVALID_VALUE", "Field 'email' is not a valid email address: 'ann@localhost'."),
        ("ITEM_INVALID_VALUE", "Field 'quantity' must be a number of at least 0, got True."),
    ]
    assert problems(items[3]) == [
        ("ITEM_MISSING_FIELD", "Required field 'name' is missing."),
        ("ITEM_MISSING_FIELD", "Required field 'email' is missing."),
        ("ITEM_INVALID_VALUE", "Field 'email' is not a valid email address: {}."),
        ("ITEM_INVALID_VALUE", "Field 'quantity' must be a number of at least 0, got '7'."),
    ]
    assert problems(items[4]) == [
        ("ITEM_INVALID_VALUE", "Field 'email' is not a valid email address: 'a b@example.com'."),
    ]
    assert items[1].problems[2].details == {"field": "quantity", "value": "-1"}
    # Each row has a list of its own.
    assert items[0].problems is not items[4].problems


def test_fields_at_paths_labels_accounts_and_links():
    rows = [
        {"key": {"id": 7}, "who": {"name": "Ann"}, "org": 12, "links": {"self": "https://v.example/7"}},
        {"key": {"id": "x" * 400}, "who": {}, "org": None, "links": {}},
    ]
    items = reader(
        **{
            "items.id_field": "key.id",
            "items.label_field": "who.name",
            "items.account_field": "org",
            "items.url_field": "/links/self",
        }
    ).read_page(rows)

    assert items == [
        Item("7", rows[0], label="Ann", account_id="12", vendor_url="https://v.example/7", problems=[]),
        Item("x" * 300, rows[1], label="x" * 300, account_id="", vendor_url="", problems=[]),
    ]
    templated = reader(**{"items.url_template": "https://v.example/{id}"}).read_page([{"id": "a/b"}])
    assert templated[0].vendor_url == "https://v.example/a%2Fb"
    assert templated[0].label == "a/b"  # no label field: the id


@pytest.mark.parametrize(
    "rows, message",
    [
        ([{"id": "a"}, "text", {"name": "no id"}], "not an object"),
        ([{"id": "a"}, {"name": "no id"}, "text"], "without 'id'"),
        ([{"id": ""}], "without 'id'"),
        ([{"id": {"nested": 1}}], "without 'id'"),
        ([{"id": [1]}], "without 'id'"),
        ([None], "not an object"),
    ],
)
def test_the_first_row_that_cannot_be_read_is_named(rows, message):
    with pytest.raises(errors.BadResponse, match=message):
        reader().read_page(rows)


def test_ids_of_other_kinds_are_text():
    items = reader().read_page([{"id": 0}, {"id": 1.5}, {"id": True}])
    assert [item.external_id for item in items] == ["0", "1.5", "True"]
    assert reader().read_page([]) == []
