"""The API key check: `Authorization: Bearer <key>`, looked up by its SHA-256."""

from datetime import timedelta

from django.utils import timezone
from ninja.security import HttpBearer

from integrations import api_keys
from integrations.models import ApiKey
from portal.api.errors import ApiError, rate_limited
from syncconsole import limits, logs

# At most one write per key a minute: reads stay reads.
LAST_USED_EVERY = timedelta(minutes=1)


class ApiKeyAuth(HttpBearer):
    """A tenant's API key; the request's `tenant` is the key's.

    Every refusal is a 401 with its own code (missing, invalid, revoked) rather
    than ninja's bare 401, and counts against the address's `api_key_failures`
    limit; an address over it is refused before its key is even read. The
    scheme is case-insensitive and the key is trimmed.
    """

    def __call__(self, request):
        address = limits.client_address(request)
        wait = limits.over("api_key_failures", address)
        if wait is not None:
            raise rate_limited(wait, "Too many requests with a missing or wrong API key from this address.")
        scheme, _, raw_key = request.headers.get(self.header, "").partition(" ")
        if scheme.lower() != self.openapi_scheme or not raw_key.strip():
            raise refused(address, "missing_api_key", "Send your API key as 'Authorization: Bearer <key>'.")
        return self.authenticate(request, raw_key.strip())

    def authenticate(self, request, token):
        key = ApiKey.objects.select_related("tenant").filter(key_hash=ApiKey.hash_key(token)).first()
        if key is None:
            raise refused(limits.client_address(request), "invalid_api_key", "This API key is not valid.")
        if key.revoked_at is not None:
            raise refused(limits.client_address(request), "api_key_revoked", "This API key was revoked.")
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_EVERY:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
            api_keys.record_api_request(key.tenant, now)
        request.tenant = key.tenant
        logs.bind(tenant=key.tenant_id)
        return key


def refused(address, code, message):
    limits.hit("api_key_failures", address)
    return ApiError(401, code, message)
