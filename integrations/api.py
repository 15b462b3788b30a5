"""The JSON API, `/api/v1/`: integration states and syncs for a tenant's own programs.

Authentication is a tenant API key (`Authorization: Bearer sck_...`), looked
up by its SHA-256. Every answer is JSON; every error is
`{"error": {"code": ..., "message": ...}}` with the matching HTTP status.
Described by the OpenAPI document at `/api/v1/openapi.json`.
"""

import json
from datetime import timedelta
from functools import wraps

from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from integrations import pagination, selectors, services
from integrations.models import ApiKey, SyncSession
from integrations.openapi import document
from integrations.sync.starting import AlreadySyncing, SyncRefused, start_sync
from syncconsole import limits

MAX_LIMIT = 200


LAST_USED_EVERY = timedelta(minutes=1)


def error(status, code, message, **extra):
    return JsonResponse({"error": {"code": code, "message": message}, **extra}, status=status)


def too_many(wait, message):
    response = error(429, "rate_limited", f"{message} Try again in {limits.describe_wait(int(wait) or 1)}.")
    response["Retry-After"] = str(max(1, int(wait)))
    return response


def api_view(methods):
    """Authenticate the key, check the method, and turn any answer into JSON."""

    def decorator(view):
        @csrf_exempt
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if request.method not in methods:
                response = error(405, "method_not_allowed", f"Use {' or '.join(methods)} here.")
                response["Allow"] = ", ".join(methods)
                return response
            address = limits.client_address(request)
            wait = limits.over("api_key_failures", address)
            if wait is not None:
                return too_many(wait, "Too many requests with a missing or wrong API key from this address.")
            header = request.headers.get("Authorization", "")
            scheme, _, raw_key = header.partition(" ")
            if scheme.lower() != "bearer" or not raw_key.strip():
                limits.hit("api_key_failures", address)
                return error(401, "missing_api_key", "Send your API key as 'Authorization: Bearer <key>'.")
            key = ApiKey.objects.select_related("tenant").filter(key_hash=ApiKey.hash_key(raw_key.strip())).first()
            if key is None:
                limits.hit("api_key_failures", address)
                return error(401, "invalid_api_key", "This API key is not valid.")
            if key.revoked_at is not None:
                limits.hit("api_key_failures", address)
                return error(401, "api_key_revoked", "This API key was revoked.")
            now = timezone.now()
            if key.last_used_at is None or now - key.last_used_at >= LAST_USED_EVERY:
                # At most one write per key a minute: reads stay reads.
                ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
                services.record_api_request(key.tenant, now)
            request.tenant = key.tenant
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def whole_number(text, *, digits=18):
    """The int of a plain ASCII number, else None ('²'.isdigit() is True, int('²') fails)."""
    text = str(text)
    if not (0 < len(text) <= digits and text.isascii() and text.isdigit()):
        return None
    return int(text)


def _integration_or_404(request, integration_id):
    if whole_number(integration_id) is None:
        return None
    return selectors.integrations_for_tenant(request.tenant).filter(pk=int(integration_id)).first()


def not_found(integration_id):
    return error(404, "not_found", f"No integration {str(integration_id)[:40]!r} in your tenant.")


def session_json(session):
    if session is None:
        return None
    return {
        "id": session.pk,
        "kind": session.kind,
        "trigger": session.trigger,
        "state": session.state,
        "error_code": session.error_code_id,
        "error_message": session.error_message,
        "queued_at": _iso(session.queued_at),
        "started_at": _iso(session.started_at),
        "finished_at": _iso(session.finished_at),
        "items_seen": session.items_seen,
        "items_total": session.items_total,
    }


def _iso(moment):
    return moment.isoformat() if moment else None


def integration_json(integration):
    headline, _ = selectors.customer_words(integration.status)
    return {
        "id": integration.pk,
        "name": integration.name,
        "connector": integration.connector,
        "kind": integration.kind,
        "status": selectors.api_status(integration.status),
        "status_words": headline,
        "status_reason": integration.status_reason,
        "status_changed_at": _iso(integration.status_changed_at),
        "syncing": bool(integration.sync_state),
        "last_session": session_json(integration.last_session),
        "last_success_at": _iso(integration.last_success_at),
        "open_issues": integration.open_issue_count,
        "next_sync_at": _iso(integration.next_sync_at),
    }


def issue_json(issue):
    return {
        "id": issue.pk,
        "error_code": issue.error_code_id,
        "title": issue.error_code.title,
        "category": issue.error_code.category,
        "severity": issue.severity,
        "source": issue.source,
        "item_type": issue.item_type,
        "external_id": issue.external_id,
        "item_label": issue.item_label,
        "vendor_url": issue.vendor_url,
        "message": issue.message,
        "occurrences": issue.occurrences,
        "first_seen_at": _iso(issue.first_seen_at),
        "last_seen_at": _iso(issue.last_seen_at),
        "state": issue.state,
    }


@api_view(["GET"])
def integration_list(request):
    return JsonResponse({"integrations": [integration_json(i) for i in selectors.integrations_for_tenant(request.tenant)]})


@api_view(["GET"])
def integration_detail(request, integration_id):
    integration = _integration_or_404(request, integration_id)
    if integration is None:
        return not_found(integration_id)
    return JsonResponse(integration_json(integration))


@api_view(["GET"])
def integration_issues(request, integration_id):
    integration = _integration_or_404(request, integration_id)
    if integration is None:
        return not_found(integration_id)
    limit = whole_number(request.GET.get("limit", "50"), digits=4)
    if limit is None or not 1 <= limit <= MAX_LIMIT:
        return error(400, "bad_request", f"'limit' must be a whole number from 1 to {MAX_LIMIT}.")
    try:
        qs = selectors.filtered_issues(integration, request.GET)
        rows, next_cursor = pagination.page_by_last_seen(qs, request.GET.get("after", ""), limit)
    except (selectors.BadFilter, pagination.BadCursor) as exc:
        return error(400, "bad_request", str(exc))
    return JsonResponse({"issues": [issue_json(i) for i in rows], "next": next_cursor})


@api_view(["POST"])
def integration_sync(request, integration_id):
    integration = _integration_or_404(request, integration_id)
    if integration is None:
        return not_found(integration_id)
    kind = SyncSession.Kind.QUICK
    try:
        raw = request.body
    except RequestDataTooBig:
        return error(413, "body_too_large", "The request body is too large; send at most a small JSON object.")
    if raw:
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return error(400, "bad_json", "The request body is not valid JSON.")
        except RecursionError:
            return error(400, "bad_json", "The request body is nested too deeply.")
        if not isinstance(body, dict):
            return error(400, "bad_json", "The request body must be a JSON object.")
        unknown = set(body) - {"kind"}
        if unknown:
            return error(400, "bad_request", f"Unknown field(s): {', '.join(sorted(map(str, unknown)))}.")
        kind = body.get("kind", kind)
        if kind not in SyncSession.Kind.values:
            return error(400, "bad_request", "'kind' must be 'quick' or 'full'.")
    wait = limits.hit("sync_triggers", integration.pk)
    if wait is not None:
        return too_many(wait, "Too many syncs were asked for this integration.")
    try:
        session = start_sync(integration, kind=kind, trigger=SyncSession.Trigger.API)
    except AlreadySyncing as exc:
        return error(409, "already_syncing", exc.message, session=session_json(exc.session))
    except SyncRefused as exc:
        return error(422, exc.code.lower(), exc.message)
    session.refresh_from_db()
    return JsonResponse({"session": session_json(session)}, status=202)


@csrf_exempt
def unknown_path(request):
    return error(404, "not_found", "No such API endpoint; see /api/v1/openapi.json.")


@csrf_exempt
def openapi(request):
    if request.method not in ("GET", "HEAD"):
        response = error(405, "method_not_allowed", "Use GET here.")
        response["Allow"] = "GET"
        return response
    return JsonResponse(document(request.build_absolute_uri("/api/v1/")))
