"""`rest`: a generic paginated REST/JSON connector for real vendors.

Configured entirely by the integration's settings:

    base_url              https://api.vendor.example/v2          (required)
    auth                  api_key_header | bearer | basic | oauth2_client_credentials
    api_key_header        X-API-Key (for api_key_header)
    token_url             /oauth/token (for oauth2, relative to base_url or absolute)
    check_endpoint        /me        a cheap authenticated GET to check credentials
    accounts_endpoint     /accounts  (empty: one account, "default")
    accounts_key          accounts
    items_endpoint        /items
    items_key             items
    pagination            page | cursor
    page_param            page
    page_size_param       page_size
    page_size             500
    cursor_param          cursor
    next_cursor_key       next_cursor
    next_page_key         next_page
    total_key             total
    updated_since_param   updated_since   (empty: quick syncs read everything)
    server_time_key       server_time     (the next quick sync's cursor)
    id_field, label_field, account_field, url_field     field mapping of an item
    required_fields       ["name", "email"]              missing -> ITEM_MISSING_FIELD
    email_fields          ["email"]                      malformed -> ITEM_INVALID_VALUE
    non_negative_fields   ["quantity"]                   negative or not a number -> ITEM_INVALID_VALUE
    expired_error_values  ["token_expired"]  a 401 whose "error" is one of these is AUTH_EXPIRED

Credentials: `api_key` (api_key_header, bearer), `username` / `password`
(basic), `client_id` / `client_secret` (oauth2_client_credentials).
"""

import re
from urllib.parse import urljoin

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from integrations.connectors import errors
from integrations.connectors.base import Connector, Field, Item, ItemProblem, Page, VendorAccount, register

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

DEFAULTS = {
    "auth": "api_key_header",
    "api_key_header": "X-API-Key",
    "token_url": "/oauth/token",
    "check_endpoint": "/me",
    "accounts_endpoint": "/accounts",
    "accounts_key": "accounts",
    "items_endpoint": "/items",
    "items_key": "items",
    "pagination": "page",
    "page_param": "page",
    "page_size_param": "page_size",
    "page_size": 500,
    "cursor_param": "cursor",
    "next_cursor_key": "next_cursor",
    "next_page_key": "next_page",
    "total_key": "total",
    "updated_since_param": "updated_since",
    "server_time_key": "server_time",
    "id_field": "id",
    "label_field": "name",
    "account_field": "account_id",
    "url_field": "url",
    "required_fields": ["name", "email"],
    "email_fields": ["email"],
    "non_negative_fields": ["quantity"],
    "expired_error_values": ["token_expired", "expired_token"],
}

AUTH_TYPES = ("api_key_header", "bearer", "basic", "oauth2_client_credentials")
CREDENTIALS_BY_AUTH = {
    "api_key_header": ("api_key",),
    "bearer": ("api_key",),
    "basic": ("username", "password"),
    "oauth2_client_credentials": ("client_id", "client_secret"),
}


@register
class RestConnector(Connector):
    key = "rest"
    label = "Generic REST/JSON API"
    setting_fields = (Field("base_url", "Base URL"),)
    credential_fields = (
        Field("api_key", "API key", secret=True, required=False),
        Field("username", "Username", required=False),
        Field("password", "Password", secret=True, required=False),
        Field("client_id", "Client ID", required=False),
        Field("client_secret", "Client secret", secret=True, required=False),
    )

    def __init__(self, settings, credentials, http):
        super().__init__(settings, credentials, http)
        self.conf = {**DEFAULTS, **self.settings, **self.preset()}
        self._access_token = None

    def preset(self):
        """Settings a subclass fixes for its vendor."""
        return {}

    @classmethod
    def validate_settings(cls, settings):
        conf = {**DEFAULTS, **settings}
        problems = []
        if not conf.get("base_url"):
            problems.append("Setting 'base_url' is required.")
        else:
            try:
                URLValidator(schemes=["http", "https"])(conf["base_url"])
            except ValidationError:
                problems.append(f"Setting 'base_url' is not an http(s) URL: {conf['base_url']!r}.")
        if conf["auth"] not in AUTH_TYPES:
            problems.append(f"Setting 'auth' must be one of {', '.join(AUTH_TYPES)}.")
        if conf["pagination"] not in ("page", "cursor"):
            problems.append("Setting 'pagination' must be 'page' or 'cursor'.")
        try:
            if int(conf["page_size"]) < 1:
                raise ValueError
        except (TypeError, ValueError):
            problems.append("Setting 'page_size' must be a positive whole number.")
        return problems

    @classmethod
    def validate_credentials_for(cls, settings, credentials):
        auth = {**DEFAULTS, **settings}.get("auth")
        needed = CREDENTIALS_BY_AUTH.get(auth, ())
        return [f"Credential {name!r} is required for {auth} authentication." for name in needed if not credentials.get(name)]

    # -- HTTP -------------------------------------------------------------

    def url(self, endpoint):
        base = self.conf["base_url"].rstrip("/") + "/"
        return urljoin(base, endpoint.lstrip("/"))

    def _auth_kwargs(self):
        auth = self.conf["auth"]
        if auth == "api_key_header":
            return {"headers": {self.conf["api_key_header"]: self.credentials.get("api_key", "")}}
        if auth == "bearer":
            return {"headers": {"Authorization": f"Bearer {self.credentials.get('api_key', '')}"}}
        if auth == "basic":
            return {"auth": (self.credentials.get("username", ""), self.credentials.get("password", ""))}
        if self._access_token is None:
            self._access_token = self._fetch_token()
        return {"headers": {"Authorization": f"Bearer {self._access_token}"}}

    def _fetch_token(self):
        token_url = self.conf["token_url"]
        if not token_url.startswith(("http://", "https://")):
            token_url = self.url(token_url)
        response = self.http.request(
            "POST",
            token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": self.credentials.get("client_id", ""),
                "client_secret": self.credentials.get("client_secret", ""),
            },
        )
        body = self._json(response, what="token")
        if response.status_code != 200 or "access_token" not in body:
            self._raise_for_status(response, body)
            raise errors.BadResponse("The vendor's token endpoint answered without an access token.")
        return body["access_token"]

    def get_json(self, endpoint, params=None):
        response = self.http.request("GET", self.url(endpoint), params=params, **self._auth_kwargs())
        if response.status_code == 401 and self.conf["auth"] == "oauth2_client_credentials" and self._access_token:
            # The access token ran out mid-run: fetch a new one once.
            self._access_token = None
            response = self.http.request("GET", self.url(endpoint), params=params, **self._auth_kwargs())
        body = self._json(response, what=endpoint)
        if response.status_code != 200:
            self._raise_for_status(response, body)
        if not isinstance(body, dict):
            raise errors.BadResponse(f"The vendor answered {endpoint} with JSON that is not an object.")
        return body

    @staticmethod
    def _json(response, *, what):
        try:
            return response.json()
        except ValueError:
            if response.status_code >= 400:
                return {}
            raise errors.BadResponse(
                f"The vendor answered {what} with invalid JSON (HTTP {response.status_code}, "
                f"{len(response.content)} bytes)."
            ) from None

    def _raise_for_status(self, response, body):
        status = response.status_code
        vendor_error = str(body.get("error", "")) if isinstance(body, dict) else ""
        vendor_message = str(body.get("message", "")) if isinstance(body, dict) else ""
        detail = vendor_message or vendor_error or response.reason or ""
        if status == 401:
            if vendor_error in self.conf["expired_error_values"]:
                raise errors.AuthExpired(f"The vendor says the credentials expired: {detail}", status=status)
            raise errors.AuthInvalid(f"The vendor rejected the credentials: {detail}", status=status)
        if status == 403:
            raise errors.Forbidden(f"The vendor refused access: {detail}", status=status)
        if status == 404:
            raise errors.BadResponse(f"The vendor has no such resource (404): {detail}", status=status)
        raise errors.BadResponse(f"The vendor answered HTTP {status}: {detail}", status=status)

    # -- The contract -----------------------------------------------------

    def check_credentials(self):
        self.get_json(self.conf["check_endpoint"])

    def discover_accounts(self):
        endpoint = self.conf["accounts_endpoint"]
        if not endpoint:
            return [VendorAccount("default", "Default")]
        body = self.get_json(endpoint)
        rows = body.get(self.conf["accounts_key"])
        if not isinstance(rows, list):
            raise errors.BadResponse(f"The vendor's account list has no {self.conf['accounts_key']!r} list.")
        accounts = []
        for row in rows:
            if not isinstance(row, dict) or "id" not in row:
                raise errors.BadResponse("The vendor's account list holds an entry without an id.")
            accounts.append(VendorAccount(str(row["id"]), str(row.get("name", ""))))
        return accounts

    def iter_pages(self, *, full, cursor):
        conf = self.conf
        params = {conf["page_size_param"]: int(conf["page_size"])}
        if not full and cursor and conf["updated_since_param"]:
            params[conf["updated_since_param"]] = cursor
        if conf["pagination"] == "page":
            params[conf["page_param"]] = 1
        while True:
            body = self.get_json(conf["items_endpoint"], params=dict(params))
            rows = body.get(conf["items_key"])
            if not isinstance(rows, list):
                raise errors.BadResponse(f"The vendor's item page has no {conf['items_key']!r} list.")
            if not self.next_cursor and conf["server_time_key"] in body:
                # Taken from the first page: changes made during the run are
                # read again next time rather than missed.
                self.next_cursor = str(body[conf["server_time_key"]])
            total = body.get(conf["total_key"])
            yield Page([self.parse_item(row) for row in rows], total if isinstance(total, int) else None)
            if conf["pagination"] == "page":
                next_page = body.get(conf["next_page_key"])
                if not next_page or not rows:
                    return
                params[conf["page_param"]] = next_page
            else:
                next_cursor = body.get(conf["next_cursor_key"])
                if not next_cursor or not rows:
                    return
                params[conf["cursor_param"]] = next_cursor

    def parse_item(self, row):
        conf = self.conf
        if not isinstance(row, dict):
            raise errors.BadResponse("The vendor's item page holds an entry that is not an object.")
        raw_id = row.get(conf["id_field"])
        if raw_id in (None, ""):
            raise errors.BadResponse(f"The vendor sent an item without {conf['id_field']!r}.")
        problems = []
        for name in conf["required_fields"]:
            if row.get(name) in (None, ""):
                problems.append(
                    ItemProblem("ITEM_MISSING_FIELD", f"Required field '{name}' is missing.", {"field": name})
                )
        for name in conf["email_fields"]:
            value = row.get(name)
            if value not in (None, "") and not (isinstance(value, str) and EMAIL_RE.match(value)):
                problems.append(
                    ItemProblem(
                        "ITEM_INVALID_VALUE",
                        f"Field '{name}' is not a valid email address: {value!r}.",
                        {"field": name, "value": str(value)[:200]},
                    )
                )
        for name in conf["non_negative_fields"]:
            value = row.get(name)
            if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0):
                problems.append(
                    ItemProblem(
                        "ITEM_INVALID_VALUE",
                        f"Field '{name}' must be a number of at least 0, got {value!r}.",
                        {"field": name, "value": str(value)[:200]},
                    )
                )
        return Item(
            external_id=str(raw_id),
            data=row,
            label=str(row.get(conf["label_field"]) or raw_id)[:300],
            account_id=str(row.get(conf["account_field"]) or ""),
            vendor_url=str(row.get(conf["url_field"]) or "")[:500],
            problems=problems,
        )
