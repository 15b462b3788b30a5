"""ConnectWise PSA (Manage): companies and company contacts.

From https://developer.connectwise.com/Products/ConnectWise_PSA/REST,
https://developer.connectwise.com/Best_Practices/PSA_Pagination (plain JSON
arrays, `page`/`pageSize` with at most 1,000 a page, an RFC 8288 `Link` header
with rel="next" and rel="last" while there is more),
https://developer.connectwise.com/Best_Practices/PSA_API_Requests (429 with a
numeric Retry-After) and https://developer.connectwise.com/ClientID (every
request names the integration in a `clientId` header). Authentication is HTTP
Basic with `COMPANY+PUBLICKEY` as user and the private key as password.
Error bodies are `{"code", "message", "errors"}`. ConnectWise documents no
rate-limit headers, and no message for an expired key: the `expired`
scenario's wording is this simulator's.
"""

from typing import ClassVar

from .base import FIRST_NAMES, LAST_NAMES, Answer, Limits, Profile, ProfileError, pick, whole

COMPANIES = 12
CONTACTS = 2345
DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 1000
USERNAME = "simco+sim-public"
PASSWORD = "sim-private"
CLIENT_ID = "sim-client-id"
API_ROOT = ("v4_6_release", "apis", "3.0")
FIRST_COMPANY_ID = 250
FIRST_CONTACT_ID = 1001

COMPANY_NAMES = (
    "Northwind Traders",
    "Contoso Pharmacy",
    "Fabrikam Legal",
    "Tailspin Toys",
    "Wingtip Dental",
    "Litware Accounting",
    "Adatum Logistics",
    "Proseware Media",
    "Woodgrove Bank",
    "Alpine Ski House",
    "Coho Winery",
    "Lucerne Publishing",
)
TITLES = ("Office Manager", "IT Contact", "Owner", "Accountant", "Receptionist", None)


def company_ref(root, index):
    company_id = FIRST_COMPANY_ID + index
    return {
        "id": company_id,
        "identifier": COMPANY_NAMES[index].replace(" ", ""),
        "name": COMPANY_NAMES[index],
        "_info": {"company_href": f"{root}/{'/'.join(API_ROOT)}/company/companies/{company_id}"},
    }


def company(root, index):
    ref = company_ref(root, index)
    return {
        "id": ref["id"],
        "identifier": ref["identifier"],
        "name": ref["name"],
        "status": {"id": 1, "name": "Active"},
        "phoneNumber": f"8135550{index:03d}",
        "website": f"www.company{index}.example",
        "types": [{"id": 1, "name": "Client"}],
        "_info": {"lastUpdated": "2026-01-05T14:00:00Z", "updatedBy": "simapi"},
    }


def contact(root, index):
    first, last = pick(FIRST_NAMES, index), pick(LAST_NAMES, index, 5)
    contact_id = FIRST_CONTACT_ID + index
    return {
        "id": contact_id,
        "firstName": first,
        "lastName": last,
        "company": company_ref(root, index % COMPANIES),
        "inactiveFlag": index % 50 == 49,
        "title": pick(TITLES, index, 2),
        "defaultPhoneType": "Direct",
        "defaultPhoneNbr": f"813555{index % 10000:04d}",
        "communicationItems": [
            {
                "id": contact_id * 10,
                "type": {"id": 1, "name": "Email"},
                "value": f"{first.lower()}.{last.lower()}{index}@company{index % COMPANIES}.example",
                "defaultFlag": True,
                "communicationType": "Email",
            },
        ],
        "_info": {"lastUpdated": f"2026-01-{1 + index % 28:02d}T08:30:00Z", "updatedBy": "simapi"},
    }


class ConnectWise(Profile):
    key = "connectwise_manage"
    label = "ConnectWise PSA"
    scenarios: ClassVar[dict] = {
        "healthy": f"{COMPANIES} companies, {CONTACTS} contacts spread over them "
        f"(3 pages at pageSize={MAX_PAGE_SIZE}).",
        "rate-limited": "as healthy, with a budget of 2 API requests: the next answers 429 TooManyRequests "
        "with Retry-After: 1, and 1 s later there are 2 more, and so on.",
        "expired": "every API request answers 401 Unauthorized 'The API key has expired'.",
        "server-error": "every API request answers 500 UnexpectedError.",
    }
    credentials = (
        f"HTTP Basic, user {USERNAME} (COMPANY+PUBLICKEY), password {PASSWORD}, "
        f"and the header clientId: {CLIENT_ID}."
    )
    rate_limited = Limits(2, 1.0)

    def urls(self, root):
        return {"base_url": f"{root}/{'/'.join(API_ROOT)}"}

    def help_lines(self):
        return [
            (
                "GET ROOT/v4_6_release/apis/3.0/system/info, .../company/companies?page=P&pageSize=S and "
                f".../company/contacts (page from 1; pageSize defaults to {DEFAULT_PAGE_SIZE}, is capped at "
                f'{MAX_PAGE_SIZE}; plain JSON arrays; Link: <...>; rel="next" while there is more)'
            )
        ]

    def error(self, request, status, code, message):
        codes = {
            400: "InvalidObject",
            401: "Unauthorized",
            403: "Security",
            404: "NotFound",
            405: "MethodNotAllowed",
            429: "TooManyRequests",
            500: "UnexpectedError",
        }
        return Answer(status, {"code": codes.get(status, code), "message": message, "errors": None})

    def too_many(self, request):
        return self.error(request, 429, "", "The request volume exceeds the capacity limits; retry later.")

    def server_error(self, request):
        return self.error(request, 500, "", "An unexpected error has occurred.")

    def authenticate(self, ctx, request):
        if not request.headers.get("clientId"):
            return self.error(
                request, 401, "", "A clientId header is required; see developer.connectwise.com/ClientID"
            )
        if request.headers.get("clientId") != CLIENT_ID:
            return self.error(request, 401, "", "The clientId is not registered")
        if request.basic() != (USERNAME, PASSWORD):
            return self.error(request, 401, "", "Incorrect public/private key")
        if request.scenario == "expired":
            return self.error(request, 401, "", "The API key has expired")
        return None

    def route(self, request):
        if request.path[: len(API_ROOT)] != API_ROOT:
            return None
        return {
            ("system", "info"): self.system_info,
            ("company", "companies"): self.companies,
            ("company", "contacts"): self.contacts,
        }.get(request.path[len(API_ROOT) :])

    def system_info(self, ctx, request):
        return Answer(
            200,
            {
                "version": "v2025.1.100000",
                "isCloud": True,
                "serverTimeZone": "Eastern Standard Time",
                "cloudRegion": "NA",
            },
        )

    def companies(self, ctx, request):
        return self.paged(request, COMPANIES, lambda n: company(request.root, n))

    def contacts(self, ctx, request):
        return self.paged(request, CONTACTS, lambda n: contact(request.root, n))

    def paged(self, request, total, make):
        page = whole(request.arg("page", "1"), minimum=1)
        size = whole(request.arg("pageSize", str(DEFAULT_PAGE_SIZE)), minimum=1)
        if page is None or size is None:
            raise ProfileError(self.error(request, 400, "", "page and pageSize must be positive numbers"))
        size = min(size, MAX_PAGE_SIZE)
        start = (page - 1) * size
        rows = [make(n) for n in range(start, min(start + size, total))]
        last = max(1, (total + size - 1) // size)
        links = []
        if page > 1:
            links += [("first", 1), ("prev", min(page - 1, last))]
        if page < last:
            links += [("next", page + 1), ("last", last)]
        headers = {}
        if links:
            keep = {k: v[-1] for k, v in request.query.items() if k not in ("page", "pageSize")}
            headers["Link"] = ", ".join(
                f'<{request.url(*request.path, **keep, pageSize=size, page=number)}>; rel="{rel}"'
                for rel, number in links
            )
        return Answer(200, rows, headers)


PROFILE = ConnectWise()
