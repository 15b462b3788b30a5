"""The `rest` connector: requests, error answers, discovery and pages (their rows read by rest/items.py)."""

import hashlib
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin

import orjson

from integrations.connectors import errors
from integrations.connectors.base import Connector, Page, VendorAccount, register
from integrations.connectors.rest import options
from integrations.connectors.rest.auth import Authenticator, error_text
from integrations.connectors.rest.items import ItemReader
from integrations.connectors.rest.paging import Pager, get_path, list_at
from syncconsole import outbound

# Every digit made a zero: a number of 19 digits or more, which orjson may read
# as a float where json reads an int (past 64 bits), shows as a run of zeros.
_DIGITS = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19


def read_json(response):
    """The answer's JSON as `response.json()` reads it, several times faster for the usual answer.

    orjson reads UTF-8 JSON to the same values as json (floats included);
    what it reads differently or refuses (integers past 64 bits, NaN and
    Infinity, bytes that are not UTF-8, another charset) goes to
    `response.json()`, which answers, or fails, as it always did.
    """
    content = response.content
    if (response.encoding or "utf-8").lower() in ("utf-8", "utf8") and _LONG_NUMBER not in content.translate(_DIGITS):
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError:
            pass
    return response.json()


def request_key(url, params):
    """A page's request as SHA-256: the same request next time is the same page."""
    return hashlib.sha256(orjson.dumps([url, sorted((str(k), str(v)) for k, v in (params or {}).items())])).hexdigest()


def rows_digest(rows):
    """SHA-256 of a page's rows as parsed (the envelope around them, such as a server time, left out); "" if unwritable."""
    try:
        return hashlib.sha256(orjson.dumps(rows)).hexdigest()
    except TypeError:  # orjson.JSONEncodeError: a value orjson cannot write (an integer past 64 bits)
        return ""


@register
class RestConnector(Connector):
    key = "rest"
    label = "Generic REST/JSON API"
    setting_fields = options.REST_FIELDS
    credential_fields = tuple(options.CREDENTIALS.values())
    _item_reader = None  # built from the settings at the first item
    fingerprints_pages = True

    def __init__(self, settings, credentials, http):
        super().__init__(settings, credentials, http)
        self.credentials = dict(self.credentials)
        self.conf = self.configuration()
        self.started_at = datetime.now(UTC)
        self.auth = Authenticator(
            self.conf,
            self.credentials,
            http,
            base_url=self.conf["base_url"],
            describe_error=self._describe_error,
            on_rotated=self._rotated,
        )
        pace = {
            "remaining": self.conf["rate_limit.remaining_header"],
            "reset": self.conf["rate_limit.reset_header"],
            "window_ms": self.conf["rate_limit.window_ms_header"],
        }
        configure = getattr(http, "set_rate_limit_headers", None)
        if configure is not None and any(pace.values()):
            configure({k: v for k, v in pace.items() if v})

    def configuration(self):
        """Every setting's value: the declared defaults, overridden by the integration's settings."""
        return {**{f.name: f.default for f in self.all_setting_fields()}, **self.settings}

    # -- typed settings ----------------------------------------------------------

    @classmethod
    def credential_fields_for(cls, settings):
        conf = {**{f.name: f.default for f in cls.all_setting_fields()}, **(settings or {})}
        return options.credential_fields(conf["auth.type"], conf["auth.headers"])

    @classmethod
    def validate_settings(cls, settings):
        problems = super().validate_settings(settings)
        conf = {**{f.name: f.default for f in cls.all_setting_fields()}, **settings}
        if conf["auth.type"] == "headers" and not conf["auth.headers"]:
            problems.append("Setting auth.headers: name at least one header and the credential it carries.")
        for index, check in enumerate(conf["rules.checks"]):
            problem = check_problem(check)
            if problem:
                problems.append(f"Setting rules.checks[{index}]: {problem}")
        return problems

    # -- HTTP --------------------------------------------------------------------

    def url(self, endpoint):
        if endpoint.startswith(("http://", "https://")):
            return endpoint
        return urljoin(self.conf["base_url"].rstrip("/") + "/", endpoint.lstrip("/"))

    def same_origin(self, url):
        return outbound.origin(url) == outbound.origin(self.conf["base_url"])

    def _rotated(self, credentials):
        if self.save_credentials is not None:
            self.save_credentials(credentials)

    def get(self, url, params=None):
        """(response, JSON body) of an authenticated GET; typed errors for anything but 200."""
        response = self._send(url, params)
        if response.status_code == 401 and self.auth.forget_token():
            # The access token ran out mid-run: fetch a new one, once.
            response = self._send(url, params)
        body = self._json(response, url)
        if response.status_code != 200:
            self._raise_for_status(response, body)
        return response, body

    def _send(self, url, params):
        auth = self.auth.request_kwargs()
        headers = {"Accept": "application/json", **self.conf["request.headers"], **auth.pop("headers", {})}
        query = {**self.conf["request.params"], **(params or {}), **auth.pop("params", {})}
        return self.http.request("GET", url, params=query or None, headers=headers, **auth)

    @staticmethod
    def _json(response, url):
        try:
            return read_json(response)
        except ValueError:
            if response.status_code >= 400:
                return None
            raise errors.BadResponse(
                f"The vendor answered {url.split('?', 1)[0]} with invalid JSON (HTTP {response.status_code}, "
                f"{len(response.content)} bytes)."
            ) from None

    def _describe_error(self, response, body):
        """(the vendor's message in a few words, the whole error as text)."""
        detail = get_path(body, self.conf["errors.message_path"]) if isinstance(body, (dict, list)) else None
        if not isinstance(detail, str) or not detail:
            for key in ("error_description", "message", "error"):
                value = body.get(key) if isinstance(body, dict) else None
                if isinstance(value, str) and value:
                    detail = value
                    break
                if isinstance(value, dict) and isinstance(value.get("message"), str):
                    detail = value["message"]
                    break
        detail = str(detail or response.reason or "")[:300]
        text = error_text(body) if body is not None else (response.text or "")[:2000]
        return detail, text

    def _raise_for_status(self, response, body):
        status = response.status_code
        detail, text = self._describe_error(response, body)
        if status == 401:
            if any(marker.lower() in text.lower() for marker in self.conf["auth.expired_errors"]):
                raise errors.AuthExpired(f"The vendor says the credentials expired: {detail}", status=status)
            raise errors.AuthInvalid(f"The vendor rejected the credentials: {detail}", status=status)
        if status == 403:
            raise errors.Forbidden(f"The vendor refused access: {detail}", status=status)
        if status == 404:
            raise errors.BadResponse(f"The vendor has no such resource (404): {detail}", status=status)
        raise errors.BadResponse(f"The vendor answered HTTP {status}: {detail}", status=status)

    # -- the contract ----------------------------------------------------------------

    def check_credentials(self):
        endpoint = self.conf["check.endpoint"]
        if endpoint:
            self.get(self.url(endpoint))
            return
        pager = self._pager(self.conf["items.endpoint"], self.conf["items.params"])
        url, params = pager.first()
        self.get(url, params)

    def discover_accounts(self):
        conf = self.conf
        if not conf["accounts.endpoint"]:
            return [VendorAccount("default", "Default")]
        accounts = []
        for _, rows in self._pages(conf["accounts.endpoint"], {}, conf["accounts.path"], "account list"):
            for row in rows:
                account_id = get_path(row, conf["accounts.id_field"]) if isinstance(row, dict) else None
                if account_id in (None, ""):
                    raise errors.BadResponse(
                        f"The vendor's account list holds an entry without {conf['accounts.id_field']!r}."
                    )
                name = get_path(row, conf["accounts.name_field"], "")
                accounts.append(VendorAccount(str(account_id), str(name or "")[:300]))
        return accounts

    def iter_pages(self, *, full, cursor):
        conf = self.conf
        params = dict(conf["items.params"])
        kind = conf["incremental.type"]
        if not full and cursor and kind != "none":
            params[conf["incremental.param"]] = self._since(cursor) if kind == "updated_since" else cursor
        if kind == "updated_since":
            # Where the next quick sync starts: when this run started.
            self.next_cursor = self.started_at.isoformat()
        first = True
        for pager, rows in self._pages(conf["items.endpoint"], params, conf["items.path"], "item page"):
            if first and kind == "cursor":
                # Taken from the first page: what changes during the run is read again next time, not missed.
                value = get_path(pager.last_body, conf["incremental.cursor_path"])
                if value not in (None, ""):
                    self.next_cursor = str(value)
            first = False
            if self.known_pages is None:
                yield Page(self.parse_items(rows), pager.total)
                continue
            digest = rows_digest(rows)
            if digest and self.known_pages.get(pager.last_key) == digest:
                # The same rows as the last complete full sync read here: nothing to parse.
                yield Page([], pager.total, page_key=pager.last_key, digest=digest, skipped_rows=len(rows))
                continue
            yield Page(self.parse_items(rows), pager.total, page_key=pager.last_key, digest=digest)

    def _pager(self, endpoint, params):
        return Pager(
            self.conf, self.url(endpoint), params, self.same_origin, page_on_first=self.explicit("pagination.page_param")
        )

    def explicit(self, name):
        """Whether a setting was given (by the integration or its manifest) rather than left at the default."""
        manifest = getattr(self, "manifest", None)
        return name in self.settings or (manifest is not None and name in manifest.settings)

    def _pages(self, endpoint, params, path, what):
        """(pager, rows) for each page of a list; pager.total is known once its answer is read."""
        pager = self._pager(endpoint, params)
        request = pager.first()
        while request is not None:
            response, body = self.get(*request)
            rows = list_at(body, path, what)
            pager.last_key = request_key(*request)
            request = pager.next(response, body, rows)
            pager.last_body = body
            yield pager, rows

    def _since(self, cursor):
        """The changed-since value of a quick sync: the last run's start, less the overlap, in the vendor's format."""
        try:
            moment = datetime.fromisoformat(cursor)
        except ValueError:
            return cursor
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        moment -= timedelta(seconds=self.conf["incremental.overlap_seconds"])
        fmt = self.conf["incremental.format"]
        if fmt == "unix":
            return str(int(moment.timestamp()))
        if fmt == "unix_ms":
            return str(int(moment.timestamp() * 1000))
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    # -- items ---------------------------------------------------------------------

    def parse_items(self, rows):
        """A page's rows as Items (rest/items.py)."""
        reader = self._item_reader
        if reader is None:
            reader = self._item_reader = ItemReader(self.conf)
        return reader.read_page(rows)


def check_problem(check):
    """What is wrong with one custom check, or None."""
    if not isinstance(check.get("field"), str) or not check["field"]:
        return 'needs a "field" (a dotted path).'
    unknown = set(check) - {"field", "one_of", "pattern", "message"}
    if unknown:
        return f"unknown key(s) {', '.join(sorted(unknown))}; a check has field, one_of or pattern, and message."
    if ("one_of" in check) == ("pattern" in check):
        return 'needs exactly one of "one_of" (a list) or "pattern" (a regular expression).'
    if "one_of" in check and not isinstance(check["one_of"], list):
        return '"one_of" must be a list.'
    if "pattern" in check:
        try:
            re.compile(check["pattern"])
        except (re.error, TypeError) as exc:
            return f'"pattern" is not a regular expression: {exc}.'
    if "message" in check and not isinstance(check["message"], str):
        return '"message" must be text.'
    return None
