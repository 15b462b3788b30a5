"""The JSON API, `/api/v1/`: integration states and syncs for a tenant's own programs.

Authentication is a tenant API key (`Authorization: Bearer sck_...`), looked
up by its SHA-256. Every answer is JSON; every error is
`{"error": {"code": ..., "message": ...}}` with the matching HTTP status.
Built on django-ninja: the OpenAPI document at `/api/v1/openapi.json` is
generated from the operations and their schemas.

  views.py    the NinjaAPI, its operations and URLs
  schemas.py  what the API reads and answers
  auth.py     the API key check
  errors.py   ApiError and the one exception handler
"""

from portal.api.views import api, document

__all__ = ["api", "document"]
