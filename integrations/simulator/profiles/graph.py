"""Microsoft Graph (mailboxes): the users of one Entra ID tenant.

From https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow
(form POST to /{tenant}/oauth2/v2.0/token with scope https://graph.microsoft.com/.default),
https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes
(AADSTS7000215 invalid secret, AADSTS7000222 expired secret, AADSTS90002 unknown tenant),
https://learn.microsoft.com/en-us/graph/api/user-list (GET /users, `$top` up to 999,
`$select`), https://learn.microsoft.com/en-us/graph/paging (`value` and an
`@odata.nextLink` carrying `$skiptoken`), https://learn.microsoft.com/en-us/graph/errors
(`{"error": {"code", "message", "innerError"}}`) and
https://learn.microsoft.com/en-us/graph/throttling (429 with Retry-After; no
remaining-requests header for directory reads).
"""

import base64
from typing import ClassVar

from .base import FIRST_NAMES, LAST_NAMES, Answer, Limits, Profile, ProfileError, fixed_uuid, pick, whole

USERS = 2050
DEFAULT_TOP = 100
MAX_TOP = 999
TENANT = "sim-tenant"
CLIENT_ID = "sim-client"
CLIENT_SECRET = "good-secret"
SCOPE = "https://graph.microsoft.com/.default"
TOKEN_LIFETIME = 3599
DEFAULT_PROPERTIES = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)
JOBS = ("Sales Manager", "Engineer", None, "Accountant", "Support Agent", None, "Designer")
INNER = {
    "date": "2026-01-01T00:00:00",
    "request-id": "00000000-0000-4000-8000-000000000001",
    "client-request-id": "00000000-0000-4000-8000-000000000001",
}


def user(index):
    first, last = pick(FIRST_NAMES, index, 2), pick(LAST_NAMES, index, 6)
    upn = f"{first.lower()}.{last.lower()}{index}@simtenant.onmicrosoft.com"
    # Every 25th user has no mailbox (a service or guest account): mail is null in Graph.
    mail = None if index % 25 == 24 else f"{first.lower()}.{last.lower()}{index}@simtenant.example"
    return {
        "businessPhones": [f"+1 425 555 {index % 10000:04d}"] if index % 3 else [],
        "displayName": f"{first} {last}",
        "givenName": first,
        "jobTitle": pick(JOBS, index),
        "mail": mail,
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": "en-US",
        "surname": last,
        "userPrincipalName": upn,
        "id": fixed_uuid("graph-user", index),
        "accountEnabled": index % 40 != 39,
    }


def aad_error(status, error, code, description):
    return Answer(
        status,
        {
            "error": error,
            "error_description": f"AADSTS{code}: {description} Trace ID: {INNER['request-id']} "
            f"Correlation ID: {INNER['client-request-id']} Timestamp: 2026-01-01 00:00:00Z",
            "error_codes": [code],
            "timestamp": "2026-01-01 00:00:00Z",
            "trace_id": INNER["request-id"],
            "correlation_id": INNER["client-request-id"],
            "error_uri": f"https://login.microsoftonline.com/error?code={code}",
        },
    )


class Graph(Profile):
    key = "microsoft_graph_mailboxes"
    label = "Microsoft Graph users (mailboxes)"
    scenarios: ClassVar[dict] = {
        "healthy": f"one tenant with {USERS} users, every 25th without a mailbox (mail null) "
        f"(3 pages at $top={MAX_TOP}).",
        "rate-limited": "as healthy, with a budget of 2 API requests: the next answers 429 TooManyRequests "
        "with Retry-After: 1, and 1 s later there are 2 more, and so on.",
        "expired": "the token endpoint answers 401 invalid_client AADSTS7000222 (the client secret expired).",
        "server-error": "every API request answers 503 serviceNotAvailable.",
    }
    credentials = (
        f"POST ROOT/{TENANT}/oauth2/v2.0/token, form grant_type=client_credentials, client_id={CLIENT_ID}, "
        f"client_secret={CLIENT_SECRET}, scope={SCOPE}; then Authorization: Bearer TOKEN."
    )
    uses_tokens = True
    rate_limited = Limits(2, 1.0)

    def urls(self, root):
        return {"base_url": f"{root}/v1.0", "auth.token_url": f"{root}/{TENANT}/oauth2/v2.0/token"}

    def help_lines(self):
        return [
            f"GET ROOT/v1.0/users?$top=N&$select=a,b  ($top defaults to {DEFAULT_TOP}, at most {MAX_TOP})"
        ]

    def error(self, request, status, code, message):
        codes = {
            400: "BadRequest",
            401: "InvalidAuthenticationToken",
            403: "Authorization_RequestDenied",
            404: "Request_ResourceNotFound",
            405: "Request_BadRequest",
            429: "TooManyRequests",
        }
        return Answer(
            status, {"error": {"code": codes.get(status, code), "message": message, "innerError": INNER}}
        )

    def too_many(self, request):
        return self.error(request, 429, "", "Too many requests.")

    def server_error(self, request):
        return self.error(
            request,
            503,
            "serviceNotAvailable",
            "The service is temporarily unavailable for maintenance or is overloaded. "
            "You may repeat the request after a delay.",
        )

    # -- token ---------------------------------------------------------------

    def is_token_path(self, path):
        return len(path) == 4 and path[1:] == ("oauth2", "v2.0", "token")

    def token(self, ctx, request):
        tenant, form = request.path[0], request.form()
        if tenant != TENANT:
            return aad_error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            return aad_error(
                400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type."
            )
        if form.get("client_id") != CLIENT_ID:
            return aad_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{form.get('client_id')}' was not found in the directory.",
            )
        if form.get("scope") != SCOPE:
            return aad_error(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {form.get('scope')} is not valid. Client credential flows "
                "must have a scope value with /.default suffixed to the resource identifier.",
            )
        if form.get("client_secret") != CLIENT_SECRET:
            return aad_error(401, "invalid_client", 7000215, "Invalid client secret provided.")
        if request.scenario == "expired":
            return aad_error(
                401,
                "invalid_client",
                7000222,
                f"The provided client secret keys for app '{CLIENT_ID}' are expired. Visit the Azure "
                "portal to create new keys for your app: https://aka.ms/NewClientSecret.",
            )
        token = ctx.issue_token(self.token_uses)
        return Answer(
            200,
            {
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME,
                "ext_expires_in": TOKEN_LIFETIME,
                "access_token": token,
            },
        )

    # -- the API -------------------------------------------------------------

    def authenticate(self, ctx, request):
        return self.check_bearer(
            ctx,
            request,
            missing=self.error(request, 401, "", "Access token is empty."),
            invalid=self.error(request, 401, "", "IDX14100: JWT is not well formed."),
            expired=self.error(request, 401, "", "Lifetime validation failed, the token is expired."),
        )

    def route(self, request):
        return self.users if request.path == ("v1.0", "users") else None

    def users(self, ctx, request):
        top = whole(request.arg("$top", str(DEFAULT_TOP)), minimum=1)
        if top is None or top > MAX_TOP:
            raise ProfileError(
                self.error(
                    request,
                    400,
                    "",
                    f"Invalid page size specified: '{request.arg('$top')}'. "
                    f"Must be between 1 and {MAX_TOP} inclusive.",
                )
            )
        select = request.arg("$select")
        fields = (
            [name.strip() for name in select.split(",") if name.strip()]
            if select
            else list(DEFAULT_PROPERTIES)
        )
        start = self.skip(request)
        rows = [
            {k: v for k, v in user(n).items() if k in fields} for n in range(start, min(start + top, USERS))
        ]
        payload = {"@odata.context": f"{request.root}/v1.0/$metadata#users"}
        if start + top < USERS:
            token = base64.urlsafe_b64encode(f"X'{start + top:08d}'".encode()).decode().rstrip("=")
            payload["@odata.nextLink"] = request.url(
                "v1.0", "users", **{"$top": top, "$select": select, "$skiptoken": token}
            )
        payload["value"] = rows
        return Answer(200, payload)

    def skip(self, request):
        text = request.arg("$skiptoken")
        if text is None:
            return 0
        try:
            decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            return int(decoded[2:-1])
        except (ValueError, UnicodeDecodeError):
            raise ProfileError(self.error(request, 400, "", "The $skiptoken is not valid.")) from None


PROFILE = Graph()
