"""Typed settings and credentials: what a connector asks for, and reading what people type.

Each connector declares its settings and credentials as `Field`s with a type
and help text. The same declarations serve every door: `add_integration
--setting k=v` (strings parsed by type), the admin's integration form (one
form field per setting), the portal's re-authentication form, manifests (JSON
values), and `manage.py connectors` (the listing). Values are stored typed in
`Integration.settings`, so `false` is False and a list is a list, whoever
wrote them.

Setting names may be dotted (`pagination.type`): a manifest writes them
nested, an integration stores them flat.
"""

import json
from dataclasses import dataclass, field, replace
from enum import StrEnum

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off", ""})
MAX_TEXT = 20_000


class Kind(StrEnum):
    STRING = "string"
    TEXT = "text"  # several lines, e.g. a PEM certificate
    INTEGER = "integer"
    BOOLEAN = "boolean"
    LIST = "list"  # of strings
    OBJECT = "object"  # a JSON object, e.g. extra headers
    URL = "url"
    CHOICE = "choice"
    SECRET = "secret"


class FieldError(ValueError):
    """A value that does not fit its field; the message names the key."""


@dataclass(frozen=True)
class Field:
    """A setting or credential the connector asks for."""

    name: str
    label: str
    kind: Kind = Kind.STRING
    help: str = ""
    default: object = None
    required: bool = False
    choices: tuple = ()
    minimum: int | None = None
    maximum: int | None = None
    # Free-form objects and lists of objects (rules.checks) are checked by the connector.
    item_kind: str = "string"
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def secret(self):
        return self.kind == Kind.SECRET

    def with_default(self, default):
        return replace(self, default=default)

    def describe_default(self):
        if self.default in (None, "", [], {}):
            return "(none)"
        if self.kind == Kind.BOOLEAN:
            return "yes" if self.default else "no"
        if isinstance(self.default, (list, dict)):
            return json.dumps(self.default)
        return str(self.default)

    def type_words(self):
        if self.kind == Kind.CHOICE:
            return "one of " + ", ".join(self.choices)
        if self.kind == Kind.INTEGER and (self.minimum is not None or self.maximum is not None):
            low = "" if self.minimum is None else str(self.minimum)
            high = "" if self.maximum is None else str(self.maximum)
            return f"integer {low}..{high}"
        return str(self.kind)

    def parse(self, value):
        """The typed value of `value` (a string someone typed, or a JSON value); FieldError naming the key."""
        parse = getattr(self, f"_parse_{self.kind}")
        return parse(value)

    # -- one parser per kind ----------------------------------------------------

    def _fail(self, problem):
        raise FieldError(f"{self.name}: {problem}")

    def _parse_string(self, value):
        if not isinstance(value, str):
            self._fail(f"must be text, got {_shown(value)}")
        if len(value) > MAX_TEXT or "\x00" in value:
            self._fail("is too long or holds a NUL character")
        return value.strip() if self.kind != Kind.TEXT else value

    _parse_text = _parse_string

    def _parse_secret(self, value):
        if not isinstance(value, str):
            self._fail("must be text")
        if len(value) > MAX_TEXT or "\x00" in value:
            self._fail("is too long or holds a NUL character")
        return value

    def _parse_integer(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            self._fail(f"must be a whole number, got {_shown(value)}")
        if isinstance(value, str):
            text = value.strip()
            if not text.lstrip("-").isdigit():
                self._fail(f"must be a whole number, got {_shown(value)}")
            value = int(text)
        if self.minimum is not None and value < self.minimum:
            self._fail(f"must be at least {self.minimum}, got {value}")
        if self.maximum is not None and value > self.maximum:
            self._fail(f"must be at most {self.maximum}, got {value}")
        return value

    def _parse_boolean(self, value):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in TRUE_WORDS:
            return True
        if isinstance(value, str) and value.strip().lower() in FALSE_WORDS:
            return False
        self._fail(f"must be true or false (yes/no, 1/0, on/off), got {_shown(value)}")

    def _parse_list(self, value):
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except ValueError as exc:
                    self._fail(f"is not a JSON list: {exc}")
            else:
                return [part.strip() for part in text.split(",") if part.strip()]
        if not isinstance(value, list):
            self._fail(f"must be a list (comma-separated or JSON), got {_shown(value)}")
        if self.item_kind == "string":
            if not all(isinstance(v, str) for v in value):
                self._fail("must be a list of text values")
            return [v.strip() for v in value]
        if not all(isinstance(v, dict) for v in value):
            self._fail("must be a list of JSON objects")
        return value

    def _parse_object(self, value):
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except ValueError as exc:
                self._fail(f"is not a JSON object: {exc}")
        if not isinstance(value, dict):
            self._fail(f"must be a JSON object, got {_shown(value)}")
        if self.item_kind == "string" and not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            self._fail("must map text to text")
        if self.item_kind == "scalar" and not all(
            isinstance(v, (str, int, float, bool)) and v is not None for v in value.values()
        ):
            self._fail("must map names to text, numbers or true/false")
        return value

    def _parse_url(self, value):
        value = self._parse_string(value)
        if value == "":
            return value
        try:
            URLValidator(schemes=["http", "https"])(value)
        except ValidationError:
            self._fail(f"is not an http(s) URL: {_shown(value)}")
        return value

    def _parse_choice(self, value):
        if not isinstance(value, str) or value.strip() not in self.choices:
            self._fail(f"must be one of {', '.join(self.choices)}")
        return value.strip()


def _shown(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_values(fields, raw, *, what="setting", owner=""):
    """(typed values, problems) of `raw` against `fields`: unknown keys and bad values are named.

    Only the keys given come back (defaults are applied where values are
    read), so an integration keeps following a connector's defaults.
    """
    by_name = {f.name: f for f in fields}
    values, problems, failed = {}, [], set()
    for key, value in (raw or {}).items():
        spec = by_name.get(key)
        if spec is None:
            known = ", ".join(sorted(by_name)) or "none"
            problems.append(f"Unknown {what} {key!r}{f' for {owner}' if owner else ''}; known: {known}.")
            continue
        try:
            values[key] = spec.parse(value)
        except FieldError as exc:
            failed.add(key)
            problems.append(f"{what.capitalize()} {exc}.")
    for spec in fields:
        if spec.name not in failed and spec.required and values.get(spec.name) in (None, "", [], {}) and spec.default in (None, "", [], {}):
            problems.append(f"{what.capitalize()} {spec.name!r} is required: {spec.label}.")
    return values, problems


def flatten_for(fields, nested, prefix=""):
    """{"a": {"b": 1}} -> {"a.b": 1}: a manifest's nested settings as stored names; OBJECT fields stay whole."""
    objects = {f.name for f in fields if f.kind == Kind.OBJECT}
    flat = {}
    for key, value in nested.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and name not in objects:
            flat.update(flatten_for(fields, value, f"{name}."))
        else:
            flat[name] = value
    return flat
