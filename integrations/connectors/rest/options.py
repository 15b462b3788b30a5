"""The `rest` connector's settings, typed, with their defaults and help; and the credentials each auth type needs.

Names are dotted by concern (`auth.*`, `pagination.*`, ...): a manifest
writes them nested, an integration stores them flat. docs/CONNECTORS.md
explains each with examples; `manage.py connectors rest` prints them.
"""

from integrations.connectors.fields import Field, Kind

AUTH_TYPES = (
    "none",
    "api_key_header",
    "api_key_query",
    "bearer",
    "basic",
    "headers",
    "oauth2_client_credentials",
    "oauth2_refresh_token",
)
PAGINATION_TYPES = ("none", "page", "offset", "cursor", "next_url", "link_header")
INCREMENTAL_TYPES = ("none", "updated_since", "cursor")
TIME_FORMATS = ("iso8601", "unix", "unix_ms")

PATH_HELP = "a dotted path (data.items) or a JSON pointer (/data/items); empty: the answer itself"

REST_FIELDS = (
    Field("base_url", "Base URL", Kind.URL, required=True, help="The API's root, e.g. https://api.vendor.example/v2."),
    # -- every request
    Field("request.headers", "Extra headers", Kind.OBJECT, default={}, help="Static headers sent with every request."),
    Field("request.params", "Extra query parameters", Kind.OBJECT, default={}, item_kind="scalar", help="Sent with every request."),
    # -- authentication
    Field("auth.type", "Authentication", Kind.CHOICE, default="none", choices=AUTH_TYPES, help="How requests prove who we are."),
    Field("auth.header", "API key header", default="X-API-Key", help="api_key_header: the header carrying the api_key."),
    Field("auth.query_param", "API key parameter", default="api_key", help="api_key_query: the query parameter carrying the api_key."),
    Field(
        "auth.headers",
        "Credential headers",
        Kind.OBJECT,
        default={},
        help='headers: header name -> credential name, e.g. {"X-User": "username", "X-Password": "password"}.',
    ),
    Field("auth.token_url", "Token URL", default="/oauth/token", help="oauth2_*: absolute, or a path under base_url."),
    Field("auth.token_format", "Token request body", Kind.CHOICE, default="form", choices=("form", "json"), help="oauth2_*: how the token request is encoded."),
    Field("auth.token_params", "Token request extras", Kind.OBJECT, default={}, item_kind="scalar", help='oauth2_*: more fields of the token request, e.g. {"audience": "..."}.'),
    Field("auth.scope", "OAuth2 scope", help="oauth2_*: the scope asked for (empty: none sent)."),
    Field(
        "auth.expired_errors",
        "Expired-credential errors",
        Kind.LIST,
        default=["token_expired", "expired_token"],
        help="A 401 or token answer whose error text contains one of these means the credential expired (AUTH_EXPIRED), "
        "not that it is wrong.",
    ),
    Field("check.endpoint", "Check endpoint", help="A cheap authenticated GET that proves the credentials; empty: the first page of items."),
    # -- vendor accounts
    Field("accounts.endpoint", "Accounts endpoint", help="Lists the vendor's accounts; empty: one account, items are not split by account."),
    Field("accounts.path", "Accounts list path", help=f"Where the list is in the answer: {PATH_HELP}."),
    Field("accounts.id_field", "Account id field", default="id"),
    Field("accounts.name_field", "Account name field", default="name"),
    # -- items
    Field("items.endpoint", "Items endpoint", required=True, help="The list of items to sync, e.g. /contacts."),
    Field("items.path", "Items list path", help=f"Where the items are in the answer: {PATH_HELP}."),
    Field("items.params", "Item list parameters", Kind.OBJECT, default={}, item_kind="scalar", help="Query parameters of the item list only."),
    Field("items.id_field", "Item id field", default="id", help="Dotted path of the item's id."),
    Field("items.label_field", "Item label field", default="name", help="What people read for an item."),
    Field("items.account_field", "Item account field", help="Dotted path of the item's vendor account (e.g. company.id); empty: no accounts."),
    Field("items.url_field", "Item link field", help="A field holding the item's page at the vendor."),
    Field("items.url_template", "Item link template", help="The item's page at the vendor, e.g. https://app.vendor.example/c/{id}."),
    # -- pagination
    Field("pagination.type", "Pagination", Kind.CHOICE, default="none", choices=PAGINATION_TYPES, help="How the vendor splits a list into pages."),
    Field(
        "pagination.page_param",
        "Page parameter",
        default="page",
        help="page: the page number's query parameter. Set explicitly with link_header or next_url, "
        "the first request carries it too (page first_page), for APIs that page only when asked to.",
    ),
    Field("pagination.first_page", "First page", Kind.INTEGER, default=1, minimum=0, help="page: 1, or 0 for zero-based APIs."),
    Field("pagination.size_param", "Page size parameter", default="page_size", help="The page size's query parameter (offset: the limit)."),
    Field("pagination.size", "Page size", Kind.INTEGER, default=100, minimum=1, maximum=10_000),
    Field("pagination.offset_param", "Offset parameter", default="offset", help="offset: the offset's query parameter."),
    Field("pagination.cursor_param", "Cursor parameter", default="cursor", help="cursor: the query parameter carrying the next cursor."),
    Field("pagination.cursor_path", "Next cursor path", default="next_cursor", help="cursor: where the next cursor is in the answer."),
    Field("pagination.next_url_path", "Next URL path", default="next", help="next_url: where the next page's URL is in the answer."),
    Field("pagination.next_page_path", "Next page path", help="page: where the next page number is; when set, its absence ends the list."),
    Field("pagination.total_path", "Total path", help="Where the total number of items is in the answer."),
    Field("pagination.total_header", "Total header", help="A header carrying the total, e.g. X-Total-Count."),
    Field("pagination.max_pages", "Most pages", Kind.INTEGER, default=100_000, minimum=1, help="A guard against a list that never ends."),
    # -- quick syncs
    Field("incremental.type", "Quick syncs", Kind.CHOICE, default="none", choices=INCREMENTAL_TYPES, help="none: every sync reads everything."),
    Field("incremental.param", "Changed-since parameter", default="updated_since", help="The query parameter of a quick sync."),
    Field("incremental.format", "Time format", Kind.CHOICE, default="iso8601", choices=TIME_FORMATS, help="updated_since: how the time is written."),
    Field("incremental.overlap_seconds", "Overlap", Kind.INTEGER, default=300, minimum=0, help="updated_since: read this much before the last run started, for clock skew."),
    Field("incremental.cursor_path", "Vendor cursor path", default="server_time", help="cursor: where the vendor's cursor is in the first page's answer."),
    # -- rate limits
    Field("rate_limit.remaining_header", "Remaining-requests header", help="A vendor-specific name; the standard X-RateLimit-* and RateLimit fields are read anyway."),
    Field("rate_limit.reset_header", "Reset header", help="A vendor-specific name of the header saying when the limit resets."),
    Field(
        "rate_limit.window_ms_header",
        "Window header",
        help="A header giving the limit's window in milliseconds instead of a reset (HubSpot): "
        "when nothing is left, the run waits one window.",
    ),
    # -- item rules
    Field("rules.required_fields", "Required fields", Kind.LIST, default=[], help="Empty or missing -> ITEM_MISSING_FIELD."),
    Field("rules.email_fields", "Email fields", Kind.LIST, default=[], help="Not an email address -> ITEM_INVALID_VALUE."),
    Field("rules.non_negative_fields", "Non-negative fields", Kind.LIST, default=[], help="Negative or not a number -> ITEM_INVALID_VALUE."),
    Field(
        "rules.checks",
        "Custom checks",
        Kind.LIST,
        default=[],
        item_kind="object",
        help='A list of {"field": ..., "one_of": [...]} or {"field": ..., "pattern": "regex"}, with an optional "message".',
    ),
    # -- errors
    Field("errors.message_path", "Error message path", default="message", help="Where the vendor's error message is in an error answer."),
)

CREDENTIALS = {
    "api_key": Field("api_key", "API key", Kind.SECRET, required=True),
    "username": Field("username", "Username", required=True),
    "password": Field("password", "Password", Kind.SECRET, required=True),
    "client_id": Field("client_id", "Client ID", required=True),
    "client_secret": Field("client_secret", "Client secret", Kind.SECRET, required=True),
    "refresh_token": Field("refresh_token", "Refresh token", Kind.SECRET, required=True),
}
CREDENTIALS_BY_AUTH = {
    "none": (),
    "api_key_header": ("api_key",),
    "api_key_query": ("api_key",),
    "bearer": ("api_key",),
    "basic": ("username", "password"),
    "oauth2_client_credentials": ("client_id", "client_secret"),
    "oauth2_refresh_token": ("client_id", "client_secret", "refresh_token"),
}


def credential_fields(auth_type, header_credentials=None):
    """The credential fields an auth type needs; `headers` names its own."""
    if auth_type == "headers":
        names = dict.fromkeys((header_credentials or {}).values())
        return tuple(
            CREDENTIALS.get(name) or Field(name, name.replace("_", " ").capitalize(), Kind.SECRET, required=True)
            for name in names
        )
    return tuple(CREDENTIALS[name] for name in CREDENTIALS_BY_AUTH.get(auth_type, ()))


def defaults():
    return {f.name: f.default for f in REST_FIELDS}
