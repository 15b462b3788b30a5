"""The API's operations, the NinjaAPI that serves them, and its URLs (`api.urls`)."""

from functools import wraps

from django.http import HttpResponseNotAllowed
from django.urls import path, re_path, register_converter
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI, Query, Status

from integrations import connection_test, pagination, selectors
from integrations.models import SyncSession
from integrations.sync.starting import AlreadySyncing, SyncRefused, start_sync
from integrations.sync.waiting import estimate_wait, where_it_stands
from portal.api.auth import ApiKeyAuth
from portal.api.errors import (
    HANDLED,
    ApiError,
    JsonObjectParser,
    error_response,
    method_not_allowed,
    not_found_path,
    rate_limited,
)
from portal.api.schemas import (
    ConnectionTest,
    Error,
    Integration,
    IntegrationFilters,
    IntegrationList,
    IssueFilters,
    IssuePage,
    Session,
    SyncConflict,
    SyncRequest,
    SyncStarted,
    TenantIntegration,
)
from syncconsole import limits


class IdConverter:
    """An id in a path: 1 to 18 plain ASCII digits; anything else is not a path of the API (a JSON 404)."""

    regex = "[0-9]{1,18}"

    def to_python(self, value):
        return int(value)

    def to_url(self, value):
        return str(value)


register_converter(IdConverter, "id")


class SyncConsoleAPI(NinjaAPI):
    """A NinjaAPI whose every answer, ninja's own included, is JSON in the API's shape."""

    def set_default_exception_handlers(self):
        super().set_default_exception_handlers()  # anything else stays a server error, as Django shows it
        for handled in HANDLED:
            self.add_exception_handler(handled, error_response)

    def get_content_type(self):
        return self.renderer.media_type  # "application/json", without a charset, as the API always said

    @property
    def urls(self):
        """The operations' URLs (a method they do not serve: a JSON 405), then a JSON 404 for any other path.

        ninja's root view (a 404 page in HTML) is left out: the API's root is one more unknown path.
        """
        patterns, _, namespace = super().urls
        served = [
            path(str(p.pattern), json_405(p.callback), name=p.name) for p in patterns if p.name != "api-root"
        ]
        return [*served, re_path(r"^.*$", unknown_path)], "api", namespace


def json_405(view):
    """ninja answers a method that no operation of a path serves in plain text; answer it as an API error.

    HEAD goes unnamed in Allow: only the document serves it, as GET without the body.
    """

    @csrf_exempt
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        if isinstance(response, HttpResponseNotAllowed):
            served = sorted(set(response["Allow"].split(", ")) - {"HEAD"})
            return error_response(request, method_not_allowed(served))
        return response

    return wrapped


@csrf_exempt
def unknown_path(request):
    return error_response(request, not_found_path())


api = SyncConsoleAPI(
    title="SyncConsole API",
    version="1.0.0",
    description="Integration states, issues and syncs for a tenant's own programs. "
    "Authenticate with a tenant API key: `Authorization: Bearer <key>`.",
    urls_namespace="api",
    openapi_url=None,  # served below, as an operation: GET only, in JSON like every answer
    docs_url=None,
    auth=ApiKeyAuth(),
    parser=JsonObjectParser(),
)


def answers(ok, errors, schemas=None):
    """An operation's `response` and `openapi_extra`: its success, and each error it can give and why.

    Errors answer in the Error shape, a 409 as a SyncConflict unless `schemas` says otherwise.
    """
    schemas = {409: SyncConflict, **(schemas or {})}
    return {
        "response": {**ok, **{status: schemas.get(status, Error) for status in errors}},
        "openapi_extra": {"responses": {status: {"description": why} for status, why in errors.items()}},
    }


KEY_ERRORS = {
    401: "Missing, invalid or revoked API key.",
    429: "Too many requests with a missing or wrong API key from this address.",
}
NOT_FOUND = {404: "No such integration in your tenant."}


@api.get(
    "/integrations/",
    url_name="integrations",
    operation_id="listIntegrations",
    summary="The tenant's integrations and their states, by name, a page at a time",
    **answers({200: IntegrationList}, {400: "A filter, limit or cursor is not valid.", **KEY_ERRORS}),
)
def integration_list(request, filters: Query[IntegrationFilters]):
    """By name, then id. Deleted integrations are not listed. Follow `next` (as `after`) for the following page."""
    try:
        rows, next_cursor = filters.page(request.tenant)
    except (selectors.BadFilter, pagination.BadCursor) as exc:
        raise ApiError(400, "bad_request", str(exc)) from exc
    return {"integrations": rows, "next": next_cursor}


@api.get(
    "/integrations/{id:integration_id}/",
    url_name="integration",
    operation_id="getIntegration",
    summary="One integration's state",
    **answers({200: Integration}, {**KEY_ERRORS, **NOT_FOUND}),
)
def integration_detail(request, integration: TenantIntegration):
    return integration


@api.get(
    "/integrations/{id:integration_id}/issues/",
    url_name="issues",
    operation_id="listIssues",
    summary="An integration's issues, newest first, a page at a time",
    **answers({200: IssuePage}, {400: "A filter, limit or cursor is not valid.", **KEY_ERRORS, **NOT_FOUND}),
)
def integration_issues(request, integration: TenantIntegration, filters: Query[IssueFilters]):
    """Open issues unless `state` says otherwise. Follow `next` (as `after`) for the following page."""
    try:
        rows, next_cursor = filters.page(integration)
    except (selectors.BadFilter, pagination.BadCursor) as exc:
        raise ApiError(400, "bad_request", str(exc)) from exc
    return {"issues": rows, "next": next_cursor}


@api.post(
    "/integrations/{id:integration_id}/sync",
    url_name="sync",
    operation_id="startSync",
    summary="Start a sync",
    **answers(
        {202: SyncStarted},
        {
            400: "The body is not a JSON object, names an unknown field or an unknown kind.",
            **KEY_ERRORS,
            **NOT_FOUND,
            409: "A sync is already queued or running (its session is included).",
            413: "The request body is too large.",
            422: "The integration's status does not allow a sync now.",
            429: "Too many requests with a missing or wrong API key from this address, "
            "or too many syncs asked for this integration.",
        },
    ),
)
def integration_sync(request, integration: TenantIntegration, body: SyncRequest = SyncRequest()):
    """Queues a quick sync, or the kind the body names. The answer is the queued session."""
    wait = limits.hit("sync_triggers", integration.pk)
    if wait is not None:
        raise rate_limited(wait, "Too many syncs were asked for this integration.")
    try:
        session = start_sync(integration, kind=body.kind, trigger=SyncSession.Trigger.API)
    except AlreadySyncing as exc:
        running = Session.from_orm(exc.session).model_dump() if exc.session else None
        estimate = estimate_wait(exc.session, position=exc.queue_position) if exc.session else None
        busy = estimate is not None and estimate.busy
        raise ApiError(
            409,
            "already_syncing",
            f"{exc.message} {estimate.sentence()}" if busy else exc.message,
            session=running,
            queue_position=exc.queue_position,
            likely_start_within_minutes=estimate.minutes if busy else None,
        ) from exc
    except SyncRefused as exc:
        raise ApiError(422, exc.code.lower(), exc.message) from exc
    session.refresh_from_db()
    estimate = estimate_wait(session)
    return Status(
        202,
        {
            "session": session,
            "queue_position": estimate.position if estimate else None,
            "likely_start_within_minutes": estimate.minutes if estimate and estimate.busy else None,
            "message": where_it_stands(session, estimate),
        },
    )


@api.post(
    "/integrations/{id:integration_id}/test",
    url_name="test_connection",
    operation_id="testConnection",
    summary="Test the connection: reach the vendor and check the credentials, without syncing",
    **answers(
        {200: ConnectionTest},
        {
            **KEY_ERRORS,
            **NOT_FOUND,
            409: "The integration cannot be tested as it is (switched off, or no credentials stored).",
            429: "Too many requests with a missing or wrong API key from this address, "
            "or too many connection tests of this integration.",
        },
        schemas={409: Error},
    ),
)
def integration_test_connection(request, integration: TenantIntegration):
    """The vendor is asked whether it answers and accepts the credentials; nothing is synced.

    A vendor's refusal is still a 200: `ok` is false and `code`, `message` and `advice` say why.
    """
    try:
        result = connection_test.test_connection(integration, actor_label=f"API key {request.auth.name}")
    except connection_test.NotTestable as exc:
        raise ApiError(409, "not_testable", exc.message) from exc
    except limits.Limited as exc:
        raise rate_limited(exc.retry_after, "Too many connection tests were asked for this integration.") from exc
    return result.as_dict()


@api.api_operation(["GET", "HEAD"], "/openapi.json", auth=None, include_in_schema=False, url_name="openapi")
def openapi(request):
    return document(request.build_absolute_uri("./"))  # the API's root: where this document is


def document(server_url):
    """The OpenAPI document ninja generates from the operations above, served from `server_url`."""
    schema = api.get_openapi_schema(path_prefix="")
    schema["servers"] = [{"url": server_url.rstrip("/")}]
    return schema
