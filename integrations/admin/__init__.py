"""The support console: one module per concern, registered on import."""

from integrations.admin import integration, records, tenants  # noqa: F401
from integrations.admin.common import ReadOnlyAdmin, status_badge  # noqa: F401
