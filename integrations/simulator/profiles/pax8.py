"""Pax8 (distributor): companies and their subscriptions.

From https://devx.pax8.com/docs/authentication (OAuth2 client credentials,
JSON token request with audience api://p8p.client, tokens live a day),
https://devx.pax8.com/docs/public-api-details (zero-based `page`, `size`,
answers `{"content": [...], "page": {"size", "totalElements", "totalPages",
"number"}}`, a rate limit answered with 429) and
https://devx.pax8.com/docs/errors (`{"type", "message", "instance", "status",
"details"}`). Pax8 documents no rate-limit headers; the 429 carries
Retry-After here.
"""

from typing import ClassVar

from .base import Answer, Limits, Profile, ProfileError, fixed_uuid, pick, whole

COMPANIES = 7
SUBSCRIPTIONS = 523
DEFAULT_SIZE = 10
MAX_SIZE = 200
AUDIENCE = "api://p8p.client"
CLIENT_ID = "sim-client"
CLIENT_SECRET = "good-secret"
TOKEN_LIFETIME = 86400  # what the token answer says: one day, as documented

COMPANY_NAMES = (
    "Northwind Traders",
    "Contoso Pharmacy",
    "Fabrikam Legal",
    "Tailspin Toys",
    "Wingtip Dental",
    "Litware Accounting",
    "Adatum Logistics",
)
PRODUCTS = (
    ("Microsoft 365 Business Premium", 22.0),
    ("Microsoft 365 Business Basic", 6.0),
    ("Exchange Online (Plan 1)", 4.0),
    ("Acronis Cyber Protect Cloud", 3.5),
    ("Proofpoint Essentials Business", 2.75),
)
BILLING_TERMS = ("Monthly", "Annual", "Monthly", "Monthly", "Annual")
STATUSES = (
    "Active",
    "Active",
    "Active",
    "Active",
    "Active",
    "Active",
    "Active",
    "Active",
    "Trial",
    "PendingManual",
    "Cancelled",
)


def company(index):
    return {
        "id": fixed_uuid("pax8-company", index),
        "name": COMPANY_NAMES[index],
        "address": {
            "street": f"{100 + index} Market Street",
            "city": "Denver",
            "stateOrProvince": "CO",
            "postalCode": "80202",
            "country": "US",
        },
        "phone": f"303-555-01{index:02d}",
        "website": f"https://www.company{index}.example",
        "externalId": f"CRM-{1000 + index}",
        "billOnBehalfOfEnabled": index % 2 == 0,
        "selfServiceAllowed": False,
        "orderApprovalRequired": False,
        "status": "Active",
    }


def subscription(index):
    product, price = pick(PRODUCTS, index)  # the name only seeds the product id
    day = 1 + index % 28
    return {
        "id": fixed_uuid("pax8-subscription", index),
        "companyId": fixed_uuid("pax8-company", index % COMPANIES),
        "productId": fixed_uuid("pax8-product", product),
        "quantity": 1 + index % 40,
        "startDate": f"2025-{1 + index % 12:02d}-{day:02d}",
        "endDate": None,
        "createdDate": f"2025-{1 + index % 12:02d}-{day:02d}T09:00:00Z",
        "updatedDate": f"2026-01-{day:02d}T09:00:00Z",
        "billingStart": f"2025-{1 + index % 12:02d}-{day:02d}",
        "status": pick(STATUSES, index),
        "price": price,
        "currencyCode": "USD",
        "billingTerm": pick(BILLING_TERMS, index, 3),
        "provisioningDetails": [],
    }


class Pax8(Profile):
    key = "pax8"
    label = "Pax8"
    scenarios: ClassVar[dict] = {
        "healthy": f"{COMPANIES} companies, {SUBSCRIPTIONS} subscriptions spread over them "
        f"(3 pages at size={MAX_SIZE}).",
        "rate-limited": "as healthy, with a budget of 2 API requests: the next answers 429 TOO_MANY_REQUESTS "
        "with Retry-After: 1, and 1 s later there are 2 more, and so on.",
        "expired": "the token endpoint answers 401 access_denied 'The client secret has expired' "
        "to the right credentials.",
        "server-error": "every API request answers 500 INTERNAL_SERVER_ERROR (the token endpoint works).",
    }
    credentials = (
        f"POST ROOT/oauth/token, JSON {{grant_type: client_credentials, client_id: {CLIENT_ID}, "
        f"client_secret: {CLIENT_SECRET}, audience: {AUDIENCE}}}; then Authorization: Bearer TOKEN."
    )
    uses_tokens = True
    rate_limited = Limits(2, 1.0)

    def urls(self, root):
        return {"base_url": f"{root}/v1", "auth.token_url": f"{root}/oauth/token"}

    def help_lines(self):
        return [
            (
                "GET ROOT/v1/companies?page=P&size=S and GET ROOT/v1/subscriptions?page=P&size=S "
                f"(page from 0; size defaults to {DEFAULT_SIZE}, more than {MAX_SIZE} is a 400)"
            )
        ]

    # -- answers in Pax8's shapes ------------------------------------------------

    def error(self, request, status, code, message):
        kind = {
            400: "BAD_REQUEST",
            401: "UNAUTHORIZED",
            403: "FORBIDDEN",
            404: "NOT_FOUND",
            405: "METHOD_NOT_ALLOWED",
            429: "TOO_MANY_REQUESTS",
            500: "INTERNAL_SERVER_ERROR",
        }
        path = "/" + "/".join(request.path)
        return Answer(
            status,
            {
                "type": kind.get(status, code.upper()),
                "message": message,
                "instance": path,
                "status": status,
                "details": [],
            },
        )

    def too_many(self, request):
        return self.error(request, 429, "too_many_requests", "Too many requests hit the API quickly")

    def server_error(self, request):
        return self.error(request, 500, "internal", "Something went wrong on Pax8 server")

    @staticmethod
    def oauth_error(status, error, description):
        return Answer(status, {"error": error, "error_description": description})

    # -- token ---------------------------------------------------------------

    def is_token_path(self, path):
        return path == ("oauth", "token")

    def token(self, ctx, request):
        if "json" not in (request.headers.get("Content-Type") or "").lower():
            return self.oauth_error(400, "invalid_request", "Send the token request as JSON")
        body = request.json()
        if body is None:
            return self.oauth_error(400, "invalid_request", "The body must be a JSON object")
        if body.get("grant_type") != "client_credentials":
            return self.oauth_error(403, "unauthorized_client", "Grant type not allowed for the client.")
        if body.get("client_id") != CLIENT_ID or body.get("client_secret") != CLIENT_SECRET:
            return self.oauth_error(401, "access_denied", "Unauthorized")
        if body.get("audience") != AUDIENCE:
            return self.oauth_error(
                403, "access_denied", f"Service not enabled within domain: {body.get('audience')}"
            )
        if request.scenario == "expired":
            return self.oauth_error(401, "access_denied", "The client secret has expired")
        token = ctx.issue_token(self.token_uses)
        return Answer(
            200,
            {"access_token": token, "scope": "partner", "expires_in": TOKEN_LIFETIME, "token_type": "Bearer"},
            {"Cache-Control": "no-store"},
        )

    # -- the API -------------------------------------------------------------

    def authenticate(self, ctx, request):
        return self.check_bearer(
            ctx,
            request,
            missing=self.error(request, 401, "unauthorized", "Full authentication is required"),
            invalid=self.error(request, 401, "unauthorized", "Invalid access token"),
            expired=self.error(request, 401, "unauthorized", "The access token has expired"),
        )

    def route(self, request):
        return {("v1", "companies"): self.companies, ("v1", "subscriptions"): self.subscriptions}.get(
            request.path
        )

    def companies(self, ctx, request):
        return self.paged(request, COMPANIES, company)

    def subscriptions(self, ctx, request):
        company_id = request.arg("companyId")
        if company_id is not None:
            indexes = [i for i in range(SUBSCRIPTIONS) if subscription(i)["companyId"] == company_id]
            return self.paged(request, len(indexes), lambda n: subscription(indexes[n]))
        return self.paged(request, SUBSCRIPTIONS, subscription)

    def paged(self, request, total, make):
        page = whole(request.arg("page", "0"))
        size = whole(request.arg("size", str(DEFAULT_SIZE)), minimum=1)
        if page is None:
            raise ProfileError(self.error(request, 400, "bad_request", "page must be a number of at least 0"))
        if size is None or size > MAX_SIZE:
            raise ProfileError(
                self.error(request, 400, "bad_request", f"size must be between 1 and {MAX_SIZE}")
            )
        start = page * size
        content = [make(n) for n in range(start, min(start + size, total))]
        pages = (total + size - 1) // size
        return Answer(
            200,
            {
                "content": content,
                "page": {"size": size, "totalElements": total, "totalPages": pages, "number": page},
            },
        )


PROFILE = Pax8()
