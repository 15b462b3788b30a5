"""How a REST request proves who we are: keys, Basic, credential headers, OAuth2 tokens.

OAuth2 access tokens live for the run only (never stored); they are fetched
on first use, again shortly before `expires_in` runs out, and once more when
the vendor answers 401 to a token we still hold. A refresh token the vendor
rotates is handed to `on_rotated` at once: the old one may already be dead,
so losing the new one would lock the integration out.
"""

import base64
import json
import time
from urllib.parse import urljoin

from integrations.connectors import errors

# Fetch a new access token this long before the vendor's expires_in.
EXPIRY_MARGIN_SECONDS = 30


class Authenticator:
    def __init__(self, conf, credentials, http, *, base_url, describe_error, on_rotated=None):
        self.conf = conf
        self.credentials = credentials
        self.http = http
        self.base_url = base_url
        self.describe_error = describe_error  # (response, body) -> (detail, full error text)
        self.on_rotated = on_rotated
        self.kind = conf["auth.type"]
        self._token = None
        self._token_until = None

    @property
    def uses_tokens(self):
        return self.kind.startswith("oauth2_")

    def request_kwargs(self):
        """headers / params / auth for one request."""
        kind, creds, conf = self.kind, self.credentials, self.conf
        if kind == "api_key_header":
            return {"headers": {conf["auth.header"]: creds.get("api_key", "")}}
        if kind == "api_key_query":
            return {"params": {conf["auth.query_param"]: creds.get("api_key", "")}}
        if kind == "bearer":
            return {"headers": {"Authorization": f"Bearer {creds.get('api_key', '')}"}}
        if kind == "basic":
            # RFC 7617: UTF-8 (requests would encode latin-1, and fail past it).
            pair = f"{creds.get('username', '')}:{creds.get('password', '')}".encode()
            return {"headers": {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}}
        if kind == "headers":
            return {"headers": {header: creds.get(name, "") for header, name in conf["auth.headers"].items()}}
        if self.uses_tokens:
            if self._token is None or (self._token_until is not None and time.monotonic() >= self._token_until):
                self._fetch_token()
            return {"headers": {"Authorization": f"Bearer {self._token}"}}
        return {}

    def forget_token(self):
        """After a 401 to a token we hold: True when a new one is worth asking for."""
        if not self.uses_tokens or self._token is None:
            return False
        self._token = None
        return True

    # -- OAuth2 ------------------------------------------------------------

    def token_url(self):
        url = self.conf["auth.token_url"]
        if url.startswith(("http://", "https://")):
            return url
        return urljoin(self.base_url.rstrip("/") + "/", url.lstrip("/"))

    def _fetch_token(self):
        conf, creds = self.conf, self.credentials
        fields = {
            "client_id": creds.get("client_id", ""),
            "client_secret": creds.get("client_secret", ""),
            **conf["auth.token_params"],
        }
        if self.kind == "oauth2_refresh_token":
            fields.update(grant_type="refresh_token", refresh_token=creds.get("refresh_token", ""))
        else:
            fields["grant_type"] = "client_credentials"
        if conf["auth.scope"]:
            fields["scope"] = conf["auth.scope"]
        if conf["auth.token_format"] == "json":
            response = self.http.request("POST", self.token_url(), json=fields)
        else:
            response = self.http.request("POST", self.token_url(), data=fields)
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
            self._refused(response, body)
        self._token = str(body["access_token"])
        lifetime = body.get("expires_in")
        if isinstance(lifetime, (int, float)) and not isinstance(lifetime, bool) and lifetime > 0:
            self._token_until = time.monotonic() + max(lifetime - EXPIRY_MARGIN_SECONDS, lifetime / 2)
        else:
            self._token_until = None
        rotated = body.get("refresh_token")
        if self.kind == "oauth2_refresh_token" and isinstance(rotated, str) and rotated and rotated != creds.get("refresh_token"):
            creds["refresh_token"] = rotated
            if self.on_rotated is not None:
                self.on_rotated(dict(creds))

    def _refused(self, response, body):
        detail, text = self.describe_error(response, body)
        status = response.status_code
        if status == 200:
            raise errors.BadResponse("The vendor's token endpoint answered without an access token.", status=status)
        if status in (400, 401, 403):
            if any(marker.lower() in text.lower() for marker in self.conf["auth.expired_errors"]):
                raise errors.AuthExpired(f"The vendor says the credentials expired: {detail}", status=status)
            raise errors.AuthInvalid(f"The vendor's token endpoint refused the credentials: {detail}", status=status)
        raise errors.BadResponse(f"The vendor's token endpoint answered HTTP {status}: {detail}", status=status)


def error_text(body, limit=2000):
    """An error answer as text to search for expired-credential markers."""
    if isinstance(body, (dict, list)):
        return json.dumps(body, ensure_ascii=False)[:limit]
    return str(body or "")[:limit]
