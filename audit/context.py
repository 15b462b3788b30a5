"""Who is acting in this request, for records written far below the view (services, models' helpers).

The middleware sets it for each request; outside a request (tasks, commands)
the actor is the system unless the caller names one.
"""

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    user: object = None
    label: str = ""
    address: str | None = None


_current = ContextVar("audit_actor", default=Actor(label="system"))


def current():
    return _current.get()


class AuditContextMiddleware:
    """Note the signed-in user and the client's address for the audit records this request writes."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from syncconsole.limits import client_address

        user = getattr(request, "user", None)
        signed_in = user is not None and user.is_authenticated
        token = _current.set(
            Actor(
                user=user if signed_in else None,
                label=user.get_username() if signed_in else "anonymous",
                address=client_address(request) or None,
            )
        )
        try:
            return self.get_response(request)
        finally:
            _current.reset(token)
