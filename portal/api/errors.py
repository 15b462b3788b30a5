"""Every error of the API in one shape: `{"error": {"code": ..., "message": ...}}` with its HTTP status.

Views, the key check and the body parser raise `ApiError`. `error_response` is
the API's one exception handler: it answers an `ApiError` and words in the
same shape what ninja raises itself (a request that does not validate, a body
it could not read) and the two answers ninja gives outside its handlers (a
method no operation of the path serves, a path no operation has).
"""

import json
from http import HTTPStatus

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, JsonResponse
from ninja.errors import HttpError, ValidationError
from ninja.parser import Parser

from syncconsole import limits

# The codes our validators give (pydantic's PydanticCustomError type); any other
# validation failure is a bad_request in pydantic's words.
VALIDATION_CODES = ("bad_json", "bad_request")


class ApiError(Exception):
    """An answer other than success: status, code, message, extra top-level keys and headers."""

    def __init__(self, status, code, message, *, headers=None, **extra):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}
        self.extra = extra


def rate_limited(wait, message):
    return ApiError(
        429,
        "rate_limited",
        f"{message} Try again in {limits.describe_wait(int(wait) or 1)}.",
        headers={"Retry-After": str(max(1, int(wait)))},
    )


def not_found_path():
    return ApiError(404, "not_found", "No such API endpoint; see /api/v1/openapi.json.")


def method_not_allowed(methods):
    return ApiError(
        405, "method_not_allowed", f"Use {' or '.join(methods)} here.", headers={"Allow": ", ".join(methods)}
    )


def error_response(request, exc):
    """The exception handler for everything the API answers with an error."""
    error = as_api_error(exc)
    response = JsonResponse(
        {"error": {"code": error.code, "message": error.message}, **error.extra}, status=error.status
    )
    for name, value in error.headers.items():
        response[name] = value
    return response


# What error_response answers (registered for each); anything else stays a server error.
HANDLED = (ApiError, HttpError, ValidationError, RequestDataTooBig, Http404)


def as_api_error(exc):
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, HttpError) and isinstance(exc.__cause__, ApiError):
        # ninja turns whatever the body parser raises into a 400 of its own words.
        return exc.__cause__
    if isinstance(exc, ValidationError):
        return _invalid(exc.errors)
    if isinstance(exc, RequestDataTooBig):
        return ApiError(
            413, "body_too_large", "The request body is too large; send at most a small JSON object."
        )
    if isinstance(exc, Http404):
        return not_found_path()
    if isinstance(exc, HttpError):  # ninja's own (a failed auth callback): the status's name is the code
        return ApiError(
            exc.status_code, HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_"), str(exc)
        )
    raise TypeError(f"{exc!r} is not one of the errors the API words") from exc


def _invalid(errors):
    """The first problem of a request that did not validate, as a 400."""
    first = errors[0]
    if first["type"] in VALIDATION_CODES:
        return ApiError(400, first["type"], first["msg"])
    where = ".".join(str(part) for part in first["loc"][1:]) or first["loc"][0]
    return ApiError(400, "bad_request", f"'{where}': {first['msg']}.")


class JsonObjectParser(Parser):
    """Request bodies are one JSON object; anything else is a 400 `bad_json` saying what is wrong."""

    def parse_body(self, request):
        try:
            body = json.loads(request.body)
        except RecursionError as exc:
            raise ApiError(400, "bad_json", "The request body is nested too deeply.") from exc
        except ValueError as exc:  # also UnicodeDecodeError
            raise ApiError(400, "bad_json", "The request body is not valid JSON.") from exc
        if not isinstance(body, dict):
            raise ApiError(400, "bad_json", "The request body must be a JSON object.")
        return body
