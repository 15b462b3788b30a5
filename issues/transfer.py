"""Issues' part of a tenant export (syncconsole/tenant_transfer/): issues, help requests, the codes they use.

Error codes travel by code: an import uses the local catalog's entry, and
adds a code this installation does not know (an older release, a code added
in the admin there) as it was exported.
"""

from issues.models import ErrorCode, SupportMessage, SupportRequest, SyncIssue
from syncconsole.tenant_transfer.kinds import Kind


def local_code(code, fields, context):
    if not ErrorCode.objects.filter(code=code).exists():
        context.build(KINDS[0], fields, pk=code).save(force_insert=True)
        context.codes_added.append(code)
    return code


KINDS = [
    Kind("error_code", ErrorCode, match=local_code),
    Kind("sync_issue", SyncIssue, rows=lambda tenant: SyncIssue.objects.filter(tenant=tenant)),
    Kind(
        "support_request",
        SupportRequest,
        rows=lambda tenant: SupportRequest.objects.filter(integration__tenant=tenant),
    ),
    Kind(
        "support_message",
        SupportMessage,
        rows=lambda tenant: SupportMessage.objects.filter(request__integration__tenant=tenant),
    ),
]

LEFT_OUT = {}
