"""Reading help requests: the customer's threads, the console's thread, the dashboard's panel.

What a customer reads never holds an internal note: every customer-facing
read goes through `customer_messages`. Each function runs a fixed number of
queries (the threads are one prefetch), whatever the number of requests or
messages.
"""

from dataclasses import dataclass

from django.db.models import OuterRef, Prefetch, Subquery

from issues.models import SupportMessage, SupportRequest

REQUESTS_ON_GENERAL_TAB = 5
REQUESTS_ON_ISSUE_PAGE = 10
DASHBOARD_ROWS = 10


def customer_messages():
    """The messages a customer may read: replies, support's and the tenant's; never a note."""
    return SupportMessage.objects.filter(kind=SupportMessage.Kind.REPLY).select_related("author")


def with_customer_threads(queryset):
    """Requests with `thread`: their customer-visible messages, oldest first."""
    return queryset.select_related("user", "issue").prefetch_related(
        Prefetch("messages", queryset=customer_messages().order_by("created_at", "id"), to_attr="thread")
    )


def open_requests_of_integration(integration, limit=REQUESTS_ON_GENERAL_TAB):
    """The integration's unresolved requests, newest first, with their threads: the General tab."""
    queryset = SupportRequest.objects.filter(integration=integration, state__in=SupportRequest.OPEN_STATES)
    return list(with_customer_threads(queryset).order_by("-created_at", "-id")[:limit])


def requests_of_issue(issue, limit=REQUESTS_ON_ISSUE_PAGE):
    """The issue's requests, newest first, with their threads: the portal's page of the issue."""
    return list(with_customer_threads(issue.support_requests.all()).order_by("-created_at", "-id")[:limit])


def latest_request_per_issue(integration, issue_ids):
    """{issue id: its latest request}, each with `last_support_reply` (the body, or None): the Issues tab."""
    last_reply = (
        SupportMessage.objects.filter(request=OuterRef("pk"), kind=SupportMessage.Kind.REPLY, from_support=True)
        .order_by("-created_at", "-id")
        .values("body")[:1]
    )
    requests = (
        SupportRequest.objects.filter(integration=integration, issue_id__in=list(issue_ids))
        .annotate(last_support_reply=Subquery(last_reply))
        .order_by("issue_id", "created_at", "id")  # the latest of each issue is written last
    )
    return {request.issue_id: request for request in requests}


def staff_thread(request):
    """Every message of the request, notes included, with their authors: the console's page."""
    return list(request.messages.select_related("author").order_by("created_at", "id"))


@dataclass(frozen=True)
class OpenRequests:
    rows: list  # the oldest unresolved requests, each with `age` (a timedelta)
    total: int  # how many are unresolved


def open_requests_panel(now, limit=DASHBOARD_ROWS):
    """The dashboard's panel: unresolved requests, oldest first, with their age and assignee. Two queries."""
    unresolved = SupportRequest.objects.filter(state__in=SupportRequest.OPEN_STATES)
    rows = list(
        unresolved.select_related("integration__tenant", "issue", "assignee").order_by("created_at", "id")[:limit]
    )
    for row in rows:
        row.age = now - row.created_at
    return OpenRequests(rows=rows, total=unresolved.count())
