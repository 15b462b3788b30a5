"""Proofpoint Essentials (email security): the users of one organisation.

From https://us1.proofpointessentials.com/api/v1/docs/index.php and its
specification page: resources under `/api/v1/orgs/{primary domain}`, users
under `/orgs/{domain}/users` answered as `{"users": [...]}` and addressed by
their primary email address, the admin's credentials in the `X-User` and
`X-Password` headers on every request, one host per data stack (us1..us5,
eu1). The users list is not paginated. Proofpoint documents neither its
error bodies, nor a rate limit, nor an expired-password answer: those
answers (`{"message": ...}`, 429 with Retry-After) are this simulator's.
"""

from typing import ClassVar

from .base import FIRST_NAMES, LAST_NAMES, Answer, Limits, Profile, pick

DOMAIN = "simcorp.example"
USERS = 137
X_USER = f"admin@{DOMAIN}"
X_PASSWORD = "sim-password"

TYPES = ("end_user",) * 9 + ("silent_user",)


def user(index):
    first, last = pick(FIRST_NAMES, index, 1), pick(LAST_NAMES, index, 4)
    kind = (
        "organization_admin"
        if index in (0, 1)
        else "functional_account"
        if index % 45 == 44
        else pick(TYPES, index)
    )
    local = f"{first.lower()}.{last.lower()}{index}" if kind != "functional_account" else f"shared{index}"
    return {
        "uid": 50000 + index,
        "primary_email": f"{local}@{DOMAIN}",
        "firstname": first if kind != "functional_account" else "",
        "surname": last if kind != "functional_account" else "",
        "alias_emails": [f"{local}@mail.{DOMAIN}"] if index % 10 == 0 else [],
        "type": kind,
        "is_active": index % 60 != 59,
        "is_billable": kind in ("end_user", "organization_admin"),
        "created": f"2024-{1 + index % 12:02d}-{1 + index % 28:02d}",
    }


class Proofpoint(Profile):
    key = "proofpoint_essentials"
    label = "Proofpoint Essentials"
    scenarios: ClassVar[dict] = {
        "healthy": f"one organisation ({DOMAIN}) with {USERS} users, in one answer (the API does not page).",
        "rate-limited": "as healthy, but the first API request answers 429 with Retry-After: 1; 1 s later "
        "there is a budget of 5 requests, and so on.",
        "expired": "every API request answers 401 'The password for this account has expired'.",
        "server-error": "every API request answers 500.",
    }
    credentials = f"the headers X-User: {X_USER} and X-Password: {X_PASSWORD}."
    rate_limited = Limits(5, 1.0, first=0)

    def urls(self, root):
        return {"base_url": f"{root}/api/v1/orgs/{DOMAIN}"}

    def help_lines(self):
        return [f"GET ROOT/api/v1/orgs/{DOMAIN} and GET ROOT/api/v1/orgs/{DOMAIN}/users"]

    def error(self, request, status, code, message):
        return Answer(status, {"message": message})

    def too_many(self, request):
        return self.error(request, 429, "", "Too many requests")

    def server_error(self, request):
        return self.error(request, 500, "", "Internal server error")

    def authenticate(self, ctx, request):
        if request.headers.get("X-User") != X_USER or request.headers.get("X-Password") != X_PASSWORD:
            return self.error(request, 401, "", "Authentication failed: check X-User and X-Password")
        if request.scenario == "expired":
            return self.error(request, 401, "", "The password for this account has expired")
        return None

    def route(self, request):
        path = request.path
        if path[:3] != ("api", "v1", "orgs") or len(path) < 4:
            return None
        if path[3] != DOMAIN:
            return None
        return {(): self.organisation, ("users",): self.users}.get(path[4:])

    def organisation(self, ctx, request):
        return Answer(
            200,
            {
                "primary_domain": DOMAIN,
                "name": "SimCorp",
                "is_active": True,
                "type": "organization",
                "user_licenses": USERS,
                "active_users": USERS - USERS // 60,
                "domains": [{"name": DOMAIN, "is_active": True, "is_relay": True}],
            },
        )

    def users(self, ctx, request):
        return Answer(200, {"users": [user(n) for n in range(USERS)]})


PROFILE = Proofpoint()
