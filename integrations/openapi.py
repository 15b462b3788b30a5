"""The OpenAPI 3.0 document of `/api/v1/` (served at /api/v1/openapi.json, checked by tests)."""

from integrations.selectors import api_status_words

NULLABLE_TIME = {"type": "string", "format": "date-time", "nullable": True}


def _error_response(description):
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def document(server_url):
    session = {
        "type": "object",
        "nullable": True,
        "required": ["id", "kind", "trigger", "state", "error_code", "queued_at", "items_seen"],
        "properties": {
            "id": {"type": "integer"},
            "kind": {"type": "string", "enum": ["quick", "full"]},
            "trigger": {"type": "string", "enum": ["schedule", "staff", "customer", "api", "reauth", "retry"]},
            "state": {
                "type": "string",
                "enum": ["queued", "running", "succeeded", "warnings", "failed", "unknown", "cancelled"],
            },
            "error_code": {"type": "string", "nullable": True},
            "error_message": {"type": "string"},
            "queued_at": {"type": "string", "format": "date-time"},
            "started_at": NULLABLE_TIME,
            "finished_at": NULLABLE_TIME,
            "items_seen": {"type": "integer", "minimum": 0},
            "items_total": {"type": "integer", "minimum": 0, "nullable": True},
        },
    }
    integration = {
        "type": "object",
        "required": ["id", "name", "connector", "status", "syncing", "last_session", "open_issues", "next_sync_at"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "connector": {"type": "string"},
            "kind": {"type": "string", "enum": ["vendor", "psa"]},
            "status": {"type": "string", "enum": api_status_words()},
            "status_words": {"type": "string"},
            "status_reason": {"type": "string"},
            "status_changed_at": NULLABLE_TIME,
            "syncing": {"type": "boolean"},
            "last_session": {"$ref": "#/components/schemas/Session"},
            "last_success_at": NULLABLE_TIME,
            "open_issues": {"type": "integer", "minimum": 0},
            "next_sync_at": NULLABLE_TIME,
        },
    }
    issue = {
        "type": "object",
        "required": ["id", "error_code", "title", "category", "severity", "state", "occurrences", "last_seen_at"],
        "properties": {
            "id": {"type": "integer"},
            "error_code": {"type": "string"},
            "title": {"type": "string"},
            "category": {"type": "string", "enum": ["auth", "vendor", "mapping", "data", "engine"]},
            "severity": {"type": "string", "enum": ["info", "warning", "error", "critical"]},
            "source": {"type": "string", "enum": ["vendor", "platform", "mapping", "engine"]},
            "item_type": {"type": "string"},
            "external_id": {"type": "string"},
            "item_label": {"type": "string"},
            "vendor_url": {"type": "string"},
            "message": {"type": "string"},
            "occurrences": {"type": "integer", "minimum": 1},
            "first_seen_at": {"type": "string", "format": "date-time"},
            "last_seen_at": {"type": "string", "format": "date-time"},
            "state": {"type": "string", "enum": ["open", "resolved", "ignored"]},
        },
    }
    integration_id = {
        "name": "integration_id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
    auth_errors = {
        "401": _error_response("Missing, invalid or revoked API key."),
        "404": _error_response("No such integration in your tenant."),
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "SyncConsole API",
            "version": "1.0.0",
            "description": "Integration states, issues and syncs for a tenant's own programs. "
            "Authenticate with a tenant API key: `Authorization: Bearer <key>`.",
        },
        "servers": [{"url": server_url.rstrip("/")}],
        "security": [{"apiKey": []}],
        "paths": {
            "/integrations/": {
                "get": {
                    "operationId": "listIntegrations",
                    "summary": "The tenant's integrations and their states",
                    "responses": {
                        "200": {
                            "description": "The integrations.",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["integrations"],
                                        "properties": {
                                            "integrations": {
                                                "type": "array",
                                                "items": {"$ref": "#/components/schemas/Integration"},
                                            }
                                        },
                                    }
                                }
                            },
                        },
                        "401": auth_errors["401"],
                    },
                }
            },
            "/integrations/{integration_id}/": {
                "get": {
                    "operationId": "getIntegration",
                    "summary": "One integration's state",
                    "parameters": [integration_id],
                    "responses": {
                        "200": {
                            "description": "The integration.",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Integration"}}},
                        },
                        **auth_errors,
                    },
                }
            },
            "/integrations/{integration_id}/issues/": {
                "get": {
                    "operationId": "listIssues",
                    "summary": "An integration's issues, newest first, a page at a time",
                    "parameters": [
                        integration_id,
                        {"name": "state", "in": "query", "schema": {"type": "string", "enum": ["open", "resolved", "ignored", "all"]}},
                        {"name": "code", "in": "query", "schema": {"type": "string"}},
                        {"name": "category", "in": "query", "schema": {"type": "string", "enum": ["auth", "vendor", "mapping", "data", "engine"]}},
                        {"name": "severity", "in": "query", "schema": {"type": "string", "enum": ["info", "warning", "error", "critical"]}},
                        {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 200}},
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
                        {"name": "after", "in": "query", "description": "The `next` cursor of the previous page.", "schema": {"type": "string"}},
                    ],
                    "responses": {
                        "200": {
                            "description": "A page of issues; `next` is the cursor of the following page or null.",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["issues", "next"],
                                        "properties": {
                                            "issues": {"type": "array", "items": {"$ref": "#/components/schemas/Issue"}},
                                            "next": {"type": "string", "nullable": True},
                                        },
                                    }
                                }
                            },
                        },
                        "400": _error_response("A filter, limit or cursor is not valid."),
                        **auth_errors,
                    },
                }
            },
            "/integrations/{integration_id}/sync": {
                "post": {
                    "operationId": "startSync",
                    "summary": "Start a sync",
                    "parameters": [integration_id],
                    "requestBody": {
                        "required": False,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "properties": {"kind": {"type": "string", "enum": ["quick", "full"]}},
                                }
                            }
                        },
                    },
                    "responses": {
                        "202": {
                            "description": "The sync was queued.",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["session"],
                                        "properties": {"session": {"$ref": "#/components/schemas/Session"}},
                                    }
                                }
                            },
                        },
                        "400": _error_response("The body is not valid JSON or names an unknown kind."),
                        "409": _error_response("A sync is already queued or running (its session is included)."),
                        "413": _error_response("The request body is too large."),
                        "422": _error_response("The integration's status does not allow a sync now."),
                        **auth_errors,
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Session": session,
                "Integration": integration,
                "Issue": issue,
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                        },
                        "session": {"$ref": "#/components/schemas/Session"},
                    },
                },
            },
        },
    }
