"""HubSpot CRM: contacts, read with an OAuth2 refresh token.

From https://developers.hubspot.com/docs/api/crm/contacts (GET
/crm/v3/objects/contacts, `limit` up to 100, `{"results": [...], "paging":
{"next": {"after", "link"}}}`), https://developers.hubspot.com/docs/api/oauth-quickstart-guide
(form POST /oauth/v1/token with grant_type=refresh_token; access tokens live
1800 s; a revoked refresh token answers 400 BAD_REFRESH_TOKEN) and
https://developers.hubspot.com/docs/api/usage-details (X-HubSpot-RateLimit-Max,
-Remaining and -Interval-Milliseconds on every answer; OAuth apps get 110
requests every 10 seconds; 429 `{"status": "error", "errorType": "RATE_LIMIT",
"policyName": ...}`). HubSpot documents no Retry-After and no reset time: the
interval header is the window's length, not when it ends, so a 429 here has
no Retry-After either.

HubSpot's refresh tokens do not change when used; the `rotate` scenario
rotates them anyway (a new one in every token answer, the old one dead at
once), so that a client that does not save the new one fails its next run.
"""

import base64
from typing import ClassVar

from .base import FIRST_NAMES, LAST_NAMES, Answer, Limits, Profile, ProfileError, pick, whole

CONTACTS = 1234
DEFAULT_LIMIT = 10
MAX_LIMIT = 100
CLIENT_ID = "sim-client"
CLIENT_SECRET = "good-secret"
REFRESH_TOKEN = "sim-refresh-token"
TOKEN_LIFETIME = 1800
FIRST_ID = 101
CORRELATION = "c033cdaa-2c40-4a64-ae48-b4cec88dad24"
HEALTHY_LIMITS = Limits(110, 10.0, refills_by_time=True)


def contact(index):
    first, last = pick(FIRST_NAMES, index, 3), pick(LAST_NAMES, index, 1)
    contact_id = str(FIRST_ID + index)
    stamp = f"2026-01-{1 + index % 28:02d}T10:00:00.000Z"
    return {
        "id": contact_id,
        "properties": {
            "createdate": f"2025-{1 + index % 12:02d}-15T10:00:00.000Z",
            "email": f"{first.lower()}.{last.lower()}{index}@customer{index % 17}.example",
            "firstname": first,
            "hs_object_id": contact_id,
            "lastmodifieddate": stamp,
            "lastname": last,
        },
        "createdAt": f"2025-{1 + index % 12:02d}-15T10:00:00.000Z",
        "updatedAt": stamp,
        "archived": False,
    }


def encode_after(offset):
    return base64.urlsafe_b64encode(f"{offset}\n".encode()).decode()


class HubSpot(Profile):
    key = "hubspot_contacts"
    label = "HubSpot contacts"
    scenarios: ClassVar[dict] = {
        "healthy": f"one portal with {CONTACTS} contacts (13 pages at limit={MAX_LIMIT}); "
        "110 requests every 10 s, as documented for OAuth apps.",
        "rate-limited": "as healthy, with a budget of 10 requests (Max: 10, Interval-Milliseconds: 1000): "
        "the next answers 429 RATE_LIMIT TEN_SECONDLY_ROLLING, without Retry-After, and 1 s after that "
        "429 there are 10 more.",
        "expired": "the token endpoint answers 400 BAD_REFRESH_TOKEN to the refresh token (access revoked).",
        "server-error": "every API request answers 500.",
        "rotate": f"as healthy, but every token answer carries a new refresh token and the one used "
        f"stops working (400 BAD_REFRESH_TOKEN); the first is {REFRESH_TOKEN}.",
    }
    credentials = (
        f"POST ROOT/oauth/v1/token, form grant_type=refresh_token, client_id={CLIENT_ID}, "
        f"client_secret={CLIENT_SECRET}, refresh_token={REFRESH_TOKEN}; then Authorization: Bearer TOKEN."
    )
    uses_tokens = True
    # HubSpot's windows are fixed: the budget comes back when the window ends.
    rate_limited = Limits(10, 1.0, refills_by_time=True)
    healthy_limits = HEALTHY_LIMITS
    sends_retry_after = False

    def urls(self, root):
        return {"base_url": root, "auth.token_url": f"{root}/oauth/v1/token"}

    def help_lines(self):
        return [
            (
                f"GET ROOT/crm/v3/objects/contacts?limit=N&after=CURSOR  (limit defaults to {DEFAULT_LIMIT}, "
                f"at most {MAX_LIMIT})"
            )
        ]

    def error(self, request, status, code, message):
        categories = {
            400: "VALIDATION_ERROR",
            401: "INVALID_AUTHENTICATION",
            403: "MISSING_SCOPES",
            404: "OBJECT_NOT_FOUND",
            405: "VALIDATION_ERROR",
            500: "INTERNAL_ERROR",
        }
        return Answer(
            status,
            {
                "status": "error",
                "message": message,
                "correlationId": CORRELATION,
                "category": categories.get(status, code),
            },
        )

    def too_many(self, request):
        return Answer(
            429,
            {
                "status": "error",
                "message": "You have reached your ten_secondly_rolling limit.",
                "errorType": "RATE_LIMIT",
                "correlationId": CORRELATION,
                "policyName": "TEN_SECONDLY_ROLLING",
                "requestId": CORRELATION,
            },
        )

    def server_error(self, request):
        return self.error(request, 500, "", "internal error")

    def rate_headers(self, limits, remaining, reset_in):
        return {
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(limits.window * 1000)),
            "X-HubSpot-RateLimit-Max": str(limits.limit),
            "X-HubSpot-RateLimit-Remaining": str(remaining),
        }

    # -- token ---------------------------------------------------------------

    def is_token_path(self, path):
        return path == ("oauth", "v1", "token")

    @staticmethod
    def oauth_error(code, message):
        return Answer(
            400, {"status": code, "message": message, "correlationId": CORRELATION, "requestId": CORRELATION}
        )

    def token(self, ctx, request):
        form = request.form()
        if form.get("grant_type") != "refresh_token":
            return self.oauth_error("BAD_GRANT_TYPE", "missing or unknown grant type")
        if form.get("client_id") != CLIENT_ID:
            return self.oauth_error("BAD_CLIENT_ID", "missing or unknown client id")
        if form.get("client_secret") != CLIENT_SECRET:
            return self.oauth_error("BAD_CLIENT_SECRET", "missing or invalid client secret")
        used = form.get("refresh_token", "")
        live = ctx.refresh_token(REFRESH_TOKEN)
        if request.scenario == "expired" or used != live:
            if request.scenario == "rotate" and used.startswith("sim-refresh-"):
                ctx.count("stale_refresh_tokens")
            return self.oauth_error("BAD_REFRESH_TOKEN", "missing or invalid refresh token")
        if request.scenario == "rotate":
            live = ctx.rotate_refresh_token(used) or live
        token = ctx.issue_token(self.token_uses)
        return Answer(
            200,
            {
                "token_type": "bearer",
                "refresh_token": live,
                "access_token": token,
                "expires_in": TOKEN_LIFETIME,
            },
        )

    # -- the API -------------------------------------------------------------

    def authenticate(self, ctx, request):
        expired = self.error(
            request, 401, "", "The OAuth token used to make this call expired 0 second(s) ago."
        )
        expired.payload["category"] = "EXPIRED_AUTHENTICATION"
        return self.check_bearer(
            ctx,
            request,
            missing=self.error(
                request,
                401,
                "",
                "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
            ),
            invalid=self.error(request, 401, "", "The OAuth token used to make this call is not valid."),
            expired=expired,
        )

    def route(self, request):
        return self.contacts if request.path == ("crm", "v3", "objects", "contacts") else None

    def contacts(self, ctx, request):
        limit = whole(request.arg("limit", str(DEFAULT_LIMIT)), minimum=1)
        if limit is None or limit > MAX_LIMIT:
            raise ProfileError(self.error(request, 400, "", f"limit must be between 1 and {MAX_LIMIT}"))
        start = self.offset(request)
        results = [contact(n) for n in range(start, min(start + limit, CONTACTS))]
        payload = {"results": results}
        if start + limit < CONTACTS:
            after = encode_after(start + limit)
            payload["paging"] = {
                "next": {"after": after, "link": request.url("crm", "v3", "objects", "contacts", after=after)}
            }
        return Answer(200, payload)

    def offset(self, request):
        text = request.arg("after")
        if text is None:
            return 0
        try:
            return int(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode().strip())
        except (ValueError, UnicodeDecodeError):
            raise ProfileError(self.error(request, 400, "", "The after cursor is not valid.")) from None


PROFILE = HubSpot()
