"""The connector contract and the registry of connectors by key.

A connector knows one vendor's API. The engine gives it the integration's
settings and decrypted credentials and a VendorHttp; the connector checks the
credentials, discovers the vendor's accounts, and yields pages of items. It
raises the typed errors of `connectors.errors`; it never touches the database.
"""

from dataclasses import dataclass, field
from datetime import timedelta

from integrations.connectors.fields import Field, Kind, parse_values

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
    # Connectors that fingerprint their pages (`fingerprints_pages`) fill these
    # on a full sync: the page's request and rows as SHA-256, and, for a page
    # the engine said it already holds unchanged (`known_pages`), how many
    # rows it had; its items are then not read at all (sync/fingerprints.py).
    page_key: str = ""
    digest: str = ""
    skipped_rows: int | None = None


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
    # What kind of vendor it speaks to (manifests.VENDOR_KINDS: "psa", "mailbox", ...;
    # "" for a connector that can speak to any). Advice per kind reads it (integrations.advice).
    vendor_kind = ""
    setting_fields: tuple = ()
    credential_fields: tuple = ()
    # Connectors that can flag items at the vendor ("Sync Error") say so and
    # implement mark_items; the engine calls it after a completed session when
    # the integration's setting `mark_source_items` is on.
    supports_marking = False
    # Connectors that can tell a page is the same as last time without
    # reading its items set this and honour `known_pages` on full syncs.
    fingerprints_pages = False

    def __init__(self, settings, credentials, http):
        self.settings = settings or {}
        self.credentials = credentials or {}
        self.http = http
        # {page key: digest} of pages the engine holds unchanged; None: read every page.
        self.known_pages = None
        # Where the next quick sync resumes; set by iter_pages as it goes.
        self.next_cursor = ""
        # Called with the whole credential dict when the vendor rotates one
        # (an OAuth2 refresh token); the engine saves it at once.
        self.save_credentials = None
        # (level, message) lines for the session log: what the run decided.
        self.notes = []

    @classmethod
    def requires_mapping(cls, settings):
        return bool((settings or {}).get("manual_mapping", cls.needs_mapping))

    # -- typed settings and credentials ----------------------------------------

    @classmethod
    def all_setting_fields(cls):
        """The connector's own settings, then those the engine reads for every connector."""
        common = [
            Field(
                "manual_mapping",
                "Map vendor accounts by hand",
                Kind.BOOLEAN,
                default=cls.needs_mapping,
                help="Discovered vendor accounts wait for a person to map them before items sync.",
            ),
            Field(
                "ca_certificate",
                "CA certificate (PEM)",
                Kind.TEXT,
                help="For a server whose TLS certificate comes from its own certificate authority: "
                "that authority's certificate, PEM. TLS is verified either way.",
            ),
        ]
        if cls.supports_marking:
            common.append(
                Field(
                    "mark_source_items",
                    "Mark items with problems at the vendor",
                    Kind.BOOLEAN,
                    default=False,
                    help="Writes to the customer's server: items with open issues are flagged there, "
                    "and unflagged once fixed.",
                )
            )
        return (*cls.setting_fields, *common)

    @classmethod
    def credential_fields_for(cls, settings):
        """The credentials these settings need (a REST vendor's depend on its auth type)."""
        return cls.credential_fields

    @classmethod
    def clean_settings(cls, raw):
        """(typed settings, problems): unknown keys and ill-typed values are named."""
        values, problems = parse_values(cls.all_setting_fields(), raw, what="setting", owner=f"connector {cls.key}")
        if not problems:
            problems = cls.validate_settings(values)
        return values, problems

    @classmethod
    def clean_credentials(cls, settings, raw):
        """(typed credentials, problems) for an integration with these (clean) settings."""
        fields = cls.credential_fields_for(settings or {})
        values, problems = parse_values(fields, raw, what="credential", owner=f"connector {cls.key}")
        values = {k: v for k, v in values.items() if v != ""}
        if not problems:
            problems = cls.validate_credentials(values)
        return values, problems

    @classmethod
    def validate_settings(cls, settings):
        """Problems across typed settings ([] when fine); each value's own type is already checked."""
        pem = settings.get("ca_certificate")
        if pem:
            from integrations.connectors.http import ca_certificate_problem

            problem = ca_certificate_problem(pem)
            return [problem] if problem else []
        return []

    @classmethod
    def validate_credentials(cls, credentials):
        """Problems across typed credentials ([] when fine)."""
        return []

    @classmethod
    def option_of(cls, settings, name):
        """A setting's value, or its declared default."""
        value = (settings or {}).get(name)
        if value is not None:
            return value
        for spec in cls.all_setting_fields():
            if spec.name == name:
                return spec.default
        raise KeyError(name)

    @classmethod
    def needs_credentials(cls, settings):
        return any(f.required for f in cls.credential_fields_for(settings or {}))

    def check_credentials(self):
        """Raise an auth error unless the vendor accepts the credentials."""
        raise NotImplementedError

    def discover_accounts(self):
        """The vendor-side accounts items belong to: a list of VendorAccount."""
        raise NotImplementedError

    def iter_pages(self, *, full, cursor):
        """Yield Pages of Items: every item when full, else those changed since cursor."""
        raise NotImplementedError


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
    from integrations.connectors import carddav, manifests, rest, simulator  # noqa: F401

    manifests.register_all()
