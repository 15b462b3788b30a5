"""Structured logs: who and what every line is about, and no secret in any of them.

The ids a line is about (request, tenant, integration, session, alert) live
in a context variable. A web request's id is bound from Django's
request_started to its request_finished signal (the incoming X-Request-ID if
it looks like an id, else a new one; `RequestContextMiddleware` echoes it in
the response and binds the integration the URL names); the portal and the
API add the tenant once they know it. The task entry points and the
session runner set theirs with `context(...)`. A django-q2 task carries the
request id of whatever queued it (`pre_enqueue`), so a sync someone asked for
logs under their request's id; a scheduled task gets an id of its own.

`ContextFilter`, on the handlers LOGGING configures, copies the ids onto each
record (a value passed in `extra=` wins) and rewrites what may carry a
secret: the token of a re-authentication link in a logged path. Production
writes one JSON object a line (`LOG_FORMAT=json`, python-json-logger),
development readable text with the ids in brackets.
"""

import contextvars
import logging
import re
import uuid
from contextlib import contextmanager

FIELDS = ("request_id", "tenant", "integration", "session", "alert")

_context = contextvars.ContextVar("syncconsole_log_context", default={})

# An incoming X-Request-ID is kept only if it looks like an id: short, no spaces or control characters.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}")


def current():
    """The ids bound now, as a dict."""
    return dict(_context.get())


def new_request_id():
    return uuid.uuid4().hex


def bind(**values):
    """Add ids to the current context (None values are ignored); returns a token for `reset`.

    Inside a request or a `context(...)` block the addition ends with it.
    """
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise ValueError(f"Unknown log context field(s): {', '.join(sorted(unknown))}")
    merged = {**_context.get(), **{key: value for key, value in values.items() if value is not None}}
    return _context.set(merged)


def reset(token):
    _context.reset(token)


def clear():
    """Forget every binding of this context (between tests; a worker thread's fresh start)."""
    _request_token.set(None)
    _context.set({})


@contextmanager
def context(**values):
    """Ids for the lines logged inside the block, restored afterwards."""
    token = bind(**values)
    try:
        yield
    finally:
        _context.reset(token)


# -- what may carry a secret ----------------------------------------------------------

# The tokens of re-authentication and password-reset links are in their paths,
# and Django logs the path of every 4xx answer.
_TOKEN_PATHS = (
    re.compile(r"(/reauth/)(?!continue/)[^/\s\"'?]+"),
    re.compile(r"(/password-reset/[^/\s\"'?]+/)(?!set-password/)[^/\s\"'?]+"),
)


def redact(text):
    for pattern in _TOKEN_PATHS:
        text = pattern.sub(r"\1[redacted]", text)
    return text


class ContextFilter(logging.Filter):
    """Copies the bound ids onto the record and redacts secrets from its message."""

    def filter(self, record):
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format: the handler reports it as usual
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


class TextFormatter(logging.Formatter):
    """Development: the usual line, then the ids that are known, in brackets."""

    def format(self, record):
        line = super().format(record)
        ids = " ".join(
            f"{key}={getattr(record, key)}" for key in FIELDS if getattr(record, key, None) is not None
        )
        return f"{line} [{ids}]" if ids else line


# -- web requests -------------------------------------------------------------------------

REQUEST_ID_HEADER = "X-Request-ID"
ENVIRON_KEY = "syncconsole.request_id"

# The token that undoes what `request_started` bound, for `request_finished`.
_request_token = contextvars.ContextVar("syncconsole_request_token", default=None)


def request_id_from(environ):
    incoming = environ.get("HTTP_X_REQUEST_ID", "")
    return incoming if SANE_REQUEST_ID.fullmatch(incoming) else new_request_id()


def request_started(sender, environ, **kwargs):
    """Bind the request id before the first middleware, until `request_finished`.

    Django logs a 4xx or 5xx answer (django.request) after the middleware
    have returned; the id must still be bound then.
    """
    request_finished(sender)  # a request whose answer was never closed (request_finished never came) ends here
    environ[ENVIRON_KEY] = request_id_from(environ)
    # A request starts from nothing: no id, tenant or session of an earlier one.
    _request_token.set(_context.set({"request_id": environ[ENVIRON_KEY]}))


def request_finished(sender, **kwargs):
    """Drop what the request bound (its id, tenant, integration)."""
    token = _request_token.get()
    if token is None:
        return
    _request_token.set(None)
    try:
        _context.reset(token)
    except ValueError:  # bound in another context (an ASGI thread): it ended with it
        pass


class RequestContextMiddleware:
    """Sets `request.request_id`, echoes it in X-Request-ID, and binds the integration the URL names.

    Runs no query: the tenant is bound by the views that load it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = request.META.get(ENVIRON_KEY)
        if request.request_id is None:  # a request that did not come through a handler (tests)
            request.request_id = request_id_from(request.META)
            with context(request_id=request.request_id):
                response = self.get_response(request)
        else:
            response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request.request_id
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        integration = integration_in_url(request, view_kwargs)
        if integration is not None:
            bind(integration=integration)


def integration_in_url(request, view_kwargs):
    """The integration id a URL names: `integration_id` (portal, API), the admin's integration pages."""
    value = view_kwargs.get("integration_id")
    match = getattr(request, "resolver_match", None)
    if value is None and match is not None and (match.url_name or "").startswith("integrations_integration_"):
        value = view_kwargs.get("object_id")
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


# -- django-q2 tasks ----------------------------------------------------------------------

_TASK_TOKEN = "_log_context_token"


def note_request_id(sender, task, **kwargs):
    """pre_enqueue: the task carries the request id of whoever queued it."""
    request_id = _context.get().get("request_id")
    if request_id:
        task["request_id"] = request_id


def enter_task(sender, func, task, **kwargs):
    """pre_execute: the task's lines carry its queuing request's id, or the task's own."""
    task[_TASK_TOKEN] = bind(request_id=task.get("request_id") or f"task-{task.get('id', new_request_id())}")


def leave_task(sender, task, **kwargs):
    """post_execute_in_worker: back to the context the worker had (inline tasks run inside a request)."""
    token = task.pop(_TASK_TOKEN, None)
    if token is not None:
        _context.reset(token)


def connect_signals():
    """Requests and django-q2 tasks bind and drop their ids (called from IntegrationsConfig.ready)."""
    from django.core.signals import request_finished as finished
    from django.core.signals import request_started as started
    from django_q.signals import post_execute_in_worker, pre_enqueue, pre_execute

    started.connect(request_started, dispatch_uid="syncconsole-logs-request-started")
    finished.connect(request_finished, dispatch_uid="syncconsole-logs-request-finished")
    pre_enqueue.connect(note_request_id, dispatch_uid="syncconsole-logs-enqueue")
    pre_execute.connect(enter_task, dispatch_uid="syncconsole-logs-execute")
    post_execute_in_worker.connect(leave_task, dispatch_uid="syncconsole-logs-executed")


# -- LOGGING ------------------------------------------------------------------------------


def logging_config(*, fmt, level):
    """The LOGGING setting: `fmt` "json" (one object a line) or "text"."""
    formatters = {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": ["levelname", "name", "message"],
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",  # ISO 8601 in UTC
            # django.request and django.server put the request object on their records:
            # never written out (its repr holds the path, its headers cookies).
            "reserved_attrs": [*_RESERVED, "request"],
        },
        "text": {
            "()": "syncconsole.logs.TextFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "syncconsole.logs.ContextFilter"}},
        "formatters": {fmt: formatters[fmt]},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": fmt, "filters": ["context"]}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django's own handlers go: its lines (and runserver's request lines, which
            # name paths) pass through the filter and the format above like every other.
            "django": {"handlers": [], "level": "INFO", "propagate": True},
            "django.server": {"handlers": [], "level": "INFO", "propagate": True},
            # SQL with its parameters: never, whatever the level.
            "django.db.backends": {"level": "WARNING"},
        },
    }


def _reserved_attributes():
    from pythonjsonlogger.core import RESERVED_ATTRS

    return list(RESERVED_ATTRS)


_RESERVED = _reserved_attributes()
