"""A page's rows as Items: the configured fields read and the item rules applied, a page at a time.

A first full sync reads every row the vendor sends, and at 100,000 items a
function call per row and field costs more than fetching them. So the
reader takes one field of every row of the page in one pass (a list
comprehension) and applies each rule the same way, rule after rule, which
gives each row its problems in the order a row-by-row reading finds them.
"""

import re

from integrations.connectors import errors
from integrations.connectors.base import Item, ItemProblem
from integrations.connectors.rest.paging import MISSING, fill_template, path_getter, plain_key

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# What a required field must not be (compared with ==, as `in` does).
EMPTY_VALUES = (None, "", [], {})


def _field(path):
    """(plain key or None, getter) of a configured path; (None, None) for an empty one."""
    return (plain_key(path), path_getter(path)) if path else (None, None)


def _column(rows, key, getter):
    """The value at one configured path of every row (all objects): a dict lookup for a plain key."""
    if key is None:
        return [getter(row) for row in rows]
    return [row.get(key) for row in rows]


def _without_id(raw_id):
    return raw_id in (None, "") or isinstance(raw_id, (dict, list))


class ItemReader:
    """One configuration's item fields and rules, read from the rows of a page.

    Built once per connector: the paths are resolved to plain keys or getters
    and the rules to lists.
    """

    def __init__(self, conf):
        self.id_field = conf["items.id_field"]
        self.id_key, self.id_of = _field(self.id_field)
        self.label_key, self.label_of = _field(conf["items.label_field"])
        self.account_key, self.account_of = _field(conf["items.account_field"])
        self.url_template = conf["items.url_template"]
        self.url_key, self.url_of = _field(conf["items.url_field"])
        self.rules = ItemRules(conf)

    def read_page(self, rows):
        """The rows as Items, in order; BadResponse for the first row that is not an object or has no id."""
        if not all([isinstance(row, dict) for row in rows]):
            self._refuse(rows)
        raw_ids = _column(rows, self.id_key, self.id_of)
        if any([raw_id in (None, "") or isinstance(raw_id, (dict, list)) for raw_id in raw_ids]):
            self._refuse(rows)
        ids = [str(raw_id)[:300] for raw_id in raw_ids]
        count = len(rows)
        if self.label_of is None:
            labels = ids
        else:
            labels = [
                str(label or raw_id)[:300]
                for label, raw_id in zip(_column(rows, self.label_key, self.label_of), raw_ids, strict=True)
            ]
        if self.account_of is None:
            accounts = [""] * count
        else:
            accounts = ["" if account is None else str(account) for account in _column(rows, self.account_key, self.account_of)]
        if self.url_template:
            urls = [fill_template(self.url_template, row)[:500] for row in rows]
        elif self.url_of is not None:
            urls = [str(url or "")[:500] for url in _column(rows, self.url_key, self.url_of)]
        else:
            urls = [""] * count
        return list(map(Item, ids, rows, labels, accounts, urls, self.rules.for_page(rows)))

    def _refuse(self, rows):
        """Raise for the first row a row-by-row reading refuses."""
        for row in rows:
            if not isinstance(row, dict):
                raise errors.BadResponse("The vendor's item page holds an entry that is not an object.")
            if _without_id(row.get(self.id_key) if self.id_key is not None else self.id_of(row)):
                raise errors.BadResponse(f"The vendor sent an item without {self.id_field!r}.")


class ItemRules:
    """The item rules of the settings, ready to apply to page after page; all empty by default."""

    def __init__(self, conf):
        self.required = [(name, *_field(name)) for name in conf["rules.required_fields"]]
        self.emails = [(name, *_field(name)) for name in conf["rules.email_fields"]]
        self.non_negative = [(name, *_field(name)) for name in conf["rules.non_negative_fields"]]
        self.checks = [(check, path_getter(check["field"])) for check in conf["rules.checks"]]

    def for_page(self, rows):
        """A list of problems per row (objects), in order: the required fields, the emails, the numbers, the checks."""
        problems = [[] for _ in rows]
        for name, key, getter in self.required:
            values = _column(rows, key, getter)
            # Only a false value can be empty: the others skip the comparisons.
            for index in [i for i, value in enumerate(values) if not value and value in EMPTY_VALUES]:
                problems[index].append(
                    ItemProblem("ITEM_MISSING_FIELD", f"Required field '{name}' is missing.", {"field": name})
                )
        match = EMAIL_RE.match
        for name, key, getter in self.emails:
            values = _column(rows, key, getter)
            wrong = [
                i for i, value in enumerate(values)
                if value not in (None, "") and not (isinstance(value, str) and match(value))
            ]
            for index in wrong:
                value = values[index]
                problems[index].append(invalid(name, value, f"Field '{name}' is not a valid email address: {value!r}."))
        for name, key, getter in self.non_negative:
            values = _column(rows, key, getter)
            wrong = [
                i for i, value in enumerate(values)
                if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0)
            ]
            for index in wrong:
                value = values[index]
                problems[index].append(
                    invalid(name, value, f"Field '{name}' must be a number of at least 0, got {value!r}.")
                )
        if self.checks:
            for index, row in enumerate(rows):
                problems[index] += self._checked(row)
        return problems

    def _checked(self, row):
        problems = []
        for check, getter in self.checks:
            name = check["field"]
            value = getter(row, MISSING)
            if value is MISSING or value is None:
                continue
            if "one_of" in check and value not in check["one_of"]:
                allowed = ", ".join(map(str, check["one_of"]))
                problems.append(invalid(name, value, check.get("message") or f"Field '{name}' must be one of {allowed}, got {value!r}."))
            if "pattern" in check and not (isinstance(value, str) and re.fullmatch(check["pattern"], value)):
                problems.append(invalid(name, value, check.get("message") or f"Field '{name}' does not have the expected form: {value!r}."))
        return problems


def invalid(name, value, message):
    return ItemProblem("ITEM_INVALID_VALUE", message, {"field": name, "value": str(value)[:200]})
