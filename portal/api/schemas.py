"""What the API reads and answers, as ninja schemas; the OpenAPI document is generated from them.

Answers are read from model instances (`from_attributes`) with a resolver where
the API's name or value differs from the model's. Times are written as Python's
`isoformat()` (microseconds, `+00:00`), as the API always has: neither
pydantic's nor Django's JSON encoder writes them that way.
"""

from datetime import datetime
from typing import Annotated, Literal

from ninja import Field, Path, Schema
from pydantic import (
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from integrations import pagination, selectors
from integrations.models import Integration as IntegrationModel
from integrations.models import SyncSession
from issues.models import ErrorCode, Severity, SyncIssue
from portal.api.errors import ApiError

MAX_LIMIT = 200


def one_of(choices):
    """A string among a model's choices: checked, and an enum in the document."""
    return Literal[tuple(choices.values)]


Moment = Annotated[
    datetime,
    PlainSerializer(datetime.isoformat, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
Count = Annotated[int, Field(ge=0)]


def _api_status_words(schema):
    # Read when the document is generated: the status declarations are the one source of the words.
    schema["enum"] = selectors.api_status_words()


# -- answers ----------------------------------------------------------------------------------------


class Session(Schema):
    id: int
    kind: one_of(SyncSession.Kind)
    trigger: one_of(SyncSession.Trigger)
    state: one_of(SyncSession.State)
    error_code: str | None
    error_message: str
    queued_at: Moment
    started_at: Moment | None
    finished_at: Moment | None
    items_seen: Count
    items_total: Count | None

    @staticmethod
    def resolve_error_code(session):
        return session.error_code_id


class Integration(Schema):
    id: int
    name: str
    connector: str
    kind: one_of(IntegrationModel.Kind)
    status: str = Field(json_schema_extra=_api_status_words, description="The status's stable word.")
    status_words: str = Field(description="The status in the customer's words.")
    status_reason: str
    status_changed_at: Moment | None
    syncing: bool = Field(description="Whether a sync is queued or running now.")
    last_session: Session | None
    last_success_at: Moment | None
    open_issues: Count
    next_sync_at: Moment | None

    @staticmethod
    def resolve_status(integration):
        return selectors.api_status(integration.status)

    @staticmethod
    def resolve_status_words(integration):
        return selectors.customer_words(integration.status)[0]

    @staticmethod
    def resolve_syncing(integration):
        return bool(integration.sync_state)

    @staticmethod
    def resolve_open_issues(integration):
        return integration.open_issue_count


class Issue(Schema):
    id: int
    error_code: str
    title: str
    category: one_of(ErrorCode.Category)
    severity: one_of(Severity)
    source: one_of(SyncIssue.Source)
    item_type: str
    external_id: str
    item_label: str
    vendor_url: str
    message: str
    occurrences: int = Field(ge=1)
    first_seen_at: Moment
    last_seen_at: Moment
    state: one_of(SyncIssue.State)

    @staticmethod
    def resolve_error_code(issue):
        return issue.error_code_id

    @staticmethod
    def resolve_title(issue):
        return issue.error_code.title

    @staticmethod
    def resolve_category(issue):
        return issue.error_code.category


class IntegrationList(Schema):
    integrations: list[Integration]
    next: str | None = Field(
        description="The cursor of the following page (`after`), or null on the last page."
    )


class IssuePage(Schema):
    issues: list[Issue]
    next: str | None = Field(
        description="The cursor of the following page (`after`), or null on the last page."
    )


class SyncStarted(Schema):
    session: Session
    queue_position: int | None = Field(
        default=None,
        description="The session's place in its cluster's queue (1 = next; counted up to 1000, 1001 meaning "
        "further back); null once it runs.",
    )
    likely_start_within_minutes: int | None = Field(
        default=None,
        description="While every worker is busy: the minutes within which the session is likely to start "
        "(from the median duration of the cluster's recent sessions); null when a worker is free or there is "
        "no recent session to learn from.",
    )
    message: str = Field(default="", description="Where the sync stands, in plain words.")


class ConnectionTest(Schema):
    """What a connection test found. `ok` false is still an answer: the test ran and the vendor said no."""

    ok: bool = Field(description="Whether the vendor answered and accepted the credentials.")
    code: str = Field(description="The error catalog's code of what went wrong; empty when ok.")
    title: str = Field(description="The code's title in the catalog, or that the connection works.")
    message: str = Field(description="What was found, in plain words.")
    advice: str = Field(description="What to do about it (the catalog's advice); empty when ok.")
    checked_at: Moment
    duration_ms: Count
    checks: list[str] = Field(
        description="What was checked and passed, in order: the address reached (no path or query), "
        "the credentials accepted, the vendor accounts visible."
    )


class ErrorDetail(Schema):
    code: str
    message: str


class Error(Schema):
    error: ErrorDetail


class SyncConflict(Error):
    session: Session | None = Field(description="The session already queued or running.")
    queue_position: int | None = Field(
        default=None,
        description="A queued session's place in its cluster's queue (1 = next; counted up to 1000, "
        "1001 meaning further back); null while it runs (its progress is in `session`).",
    )
    likely_start_within_minutes: int | None = Field(
        default=None,
        description="For a queued session while every worker is busy: the minutes within which it is likely "
        "to start; null otherwise.",
    )


# -- requests ---------------------------------------------------------------------------------------


def _in_the_tenant(integration_id, info):
    request = info.context["request"]
    integration = selectors.integrations_for_tenant(request.tenant).filter(pk=integration_id).first()
    if integration is None:
        raise ApiError(404, "not_found", f"No integration {str(integration_id)[:40]!r} in your tenant.")
    return integration


# The integration a path names (`{id:integration_id}`), looked up in the key's tenant as ninja reads
# the path, before the query and the body: an id outside the tenant is a 404 whatever else the
# request gets wrong, and another tenant's is as unknown as one that never existed. (An ApiError is
# not a validation error: it ends the request as it is.)
TenantIntegration = Annotated[
    IntegrationModel,
    PlainValidator(_in_the_tenant),
    WithJsonSchema({"type": "integer", "minimum": 1}),
    Path(alias="integration_id", description="The integration's id."),
]


def _page_size(value):
    """1 to 4 plain ASCII digits from 1 to MAX_LIMIT ('²'.isdigit() is True; int() takes '+5', ' 5')."""
    text = str(value)
    if not (0 < len(text) <= 4 and text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_LIMIT):
        raise PydanticCustomError("bad_request", f"'limit' must be a whole number from 1 to {MAX_LIMIT}.")
    return int(text)


def _any_or(values):
    """A filter's values for the document; left out (or empty), the filter takes any."""

    def describe(schema):
        schema["enum"] = list(values)
        schema.pop("default", None)

    return describe


# The filter values are checked where the portal's Issues tab checks them
# (`selectors.filtered_issues`, `pagination`), so both refuse the same input in
# the same words; the fields below only describe them for the document.
class IssueFilters(Schema):
    """Which issues, and which page of them."""

    state: str = Field("open", json_schema_extra={"enum": [*SyncIssue.State.values, "all"]})
    code: str = Field("", description="An error code of the catalog.")
    category: str = Field("", json_schema_extra=_any_or(ErrorCode.Category.values))
    severity: str = Field("", json_schema_extra=_any_or(Severity.values))
    q: str = Field(
        "",
        description="The start of an item's external id, or of its label (any case).",
        json_schema_extra={"maxLength": 200},
    )
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT), BeforeValidator(_page_size)] = 50
    after: str = Field("", description="The `next` cursor of the previous page.")

    def page(self, integration):
        """(issues, next cursor); `selectors.BadFilter` or `pagination.BadCursor` for what they refuse."""
        issues = selectors.filtered_issues(integration, self.model_dump(include=set(selectors.ISSUE_FILTERS)))
        return pagination.page_by_last_seen(issues, self.after, self.limit)


def _api_status_filter(schema):
    # Read when the document is generated, like the answer's `status`: the declarations are the one source.
    schema["enum"] = list(selectors.integration_status_filter(api=True))
    schema.pop("default", None)


def _connector_keys(schema):
    from integrations.connectors.base import connector_keys  # the registry fills on first use

    schema["enum"] = connector_keys()
    schema.pop("default", None)


# Checked by `selectors.filtered_integrations`, as the portal's list checks them.
class IntegrationFilters(Schema):
    """Which integrations, and which page of them (by name, then id)."""

    status: str = Field(
        "",
        description="A status word, as answers give it; any when left out.",
        json_schema_extra=_api_status_filter,
    )
    connector: str = Field(
        "", description="A connector key; any when left out.", json_schema_extra=_connector_keys
    )
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT), BeforeValidator(_page_size)] = 50
    after: str = Field("", description="The `next` cursor of the previous page.")

    def page(self, tenant):
        """(integrations, next cursor); `selectors.BadFilter` or `pagination.BadCursor` for what they refuse."""
        wanted = self.model_dump(include={"status", "connector"})
        integrations = selectors.filtered_integrations(tenant, wanted, api=True)
        return pagination.page_by_name(integrations, self.after, self.limit)


class SyncRequest(Schema):
    """The body of a sync request, all optional: no body at all is a quick sync."""

    model_config = ConfigDict(extra="forbid")

    kind: one_of(SyncSession.Kind) = SyncSession.Kind.QUICK.value

    # `extra="forbid"` documents it; this says it in one message naming every unknown field.
    @model_validator(mode="before")
    @classmethod
    def _no_unknown_fields(cls, data):
        unknown = set(data) - set(cls.model_fields) if isinstance(data, dict) else set()
        if unknown:
            fields = ", ".join(sorted(map(str, unknown)))
            raise PydanticCustomError("bad_request", "Unknown field(s): {fields}.", {"fields": fields})
        return data

    @field_validator("kind", mode="wrap")
    @classmethod
    def _a_known_kind(cls, value, handler):
        try:
            return handler(value)
        except ValueError:
            raise PydanticCustomError("bad_request", "'kind' must be 'quick' or 'full'.") from None
