"""The connector contract and the registry of connectors by key.

A connector knows one vendor's API. The engine gives it the integration's
settings and decrypted credentials and a VendorHttp; the connector checks the
credentials, discovers the vendor's accounts, and yields pages of items. It
raises the typed errors of `connectors.errors`; it never touches the database.
"""

from dataclasses import dataclass, field
from datetime import timedelta

_REGISTRY = {}


@dataclass(frozen=True)
class VendorAccount:
    id: str
    name: str = ""


@dataclass(frozen=True)
class ItemProblem:
    code: str  # an ErrorCode, e.g. ITEM_MISSING_FIELD
    message: str
    details: dict = field(default_factory=dict)


@dataclass
class Item:
    external_id: str
    data: dict
    label: str = ""
    account_id: str = ""
    vendor_url: str = ""
    problems: list = field(default_factory=list)


@dataclass
class Page:
    items: list
    total: int | None = None


@dataclass(frozen=True)
class Field:
    """A setting or credential the connector asks for."""

    name: str
    label: str
    secret: bool = False
    required: bool = True


class Connector:
    # Templates receive the class itself (for its label and fields).
    do_not_call_in_templates = True
    key = ""
    label = ""
    item_type = "item"
    # Discovered vendor accounts must be mapped by a person before syncing.
    needs_mapping = False
    # Vendors that force re-authentication (None: credentials do not expire).
    token_lifetime: timedelta | None = None
    setting_fields: tuple = ()
    credential_fields: tuple = ()

    def __init__(self, settings, credentials, http):
        self.settings = settings or {}
        self.credentials = credentials or {}
        self.http = http
        # Where the next quick sync resumes; set by iter_pages as it goes.
        self.next_cursor = ""

    @classmethod
    def requires_mapping(cls, settings):
        return bool((settings or {}).get("manual_mapping", cls.needs_mapping))

    @classmethod
    def validate_settings(cls, settings):
        """Error messages for missing or malformed settings ([] when fine)."""
        return [f"Setting {f.name!r} is required." for f in cls.setting_fields if f.required and not settings.get(f.name)]

    @classmethod
    def validate_credentials(cls, credentials):
        return [
            f"Credential {f.name!r} is required."
            for f in cls.credential_fields
            if f.required and not credentials.get(f.name)
        ]

    def check_credentials(self):
        """Raise an auth error unless the vendor accepts the credentials."""
        raise NotImplementedError

    def discover_accounts(self):
        """The vendor-side accounts items belong to: a list of VendorAccount."""
        raise NotImplementedError

    def iter_pages(self, *, full, cursor):
        """Yield Pages of Items: every item when full, else those changed since cursor."""
        raise NotImplementedError

    # Connectors that can flag items at the vendor ("Sync Error") say so and
    # implement mark_items; the engine calls it after a completed session when
    # the integration's setting `mark_source_items` is on.
    supports_marking = False

    def mark_items(self, *, mark, unmark, log):
        """Flag the items in `mark` at the source and unflag those in `unmark` (sets of external ids).

        Must never overwrite a concurrent edit; reports what it could not do
        through `log.add(level, message)`.
        """
        raise NotImplementedError


def register(cls):
    if not cls.key:
        raise ValueError("A connector needs a key.")
    _REGISTRY[cls.key] = cls
    return cls


def get_connector_class(key):
    _load_builtin()
    try:
        return _REGISTRY[key]
    except KeyError:
        raise KeyError(f"No connector is registered under {key!r}; known: {', '.join(sorted(_REGISTRY))}.") from None


def connector_keys():
    _load_builtin()
    return sorted(_REGISTRY)


def _load_builtin():
    # Imported here so that registering happens on first use, not at import
    # of the models.
    from integrations.connectors import carddav, rest, simulator  # noqa: F401
