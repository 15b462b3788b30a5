"""The audit trail's part of a tenant export (syncconsole/tenant_transfer/): the tenant's audit records."""

from audit.models import AuditRecord
from syncconsole.tenant_transfer.kinds import Kind

KINDS = [Kind("audit_record", AuditRecord, rows=lambda tenant: AuditRecord.objects.filter(tenant=tenant))]

LEFT_OUT = {}
