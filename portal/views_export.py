"""The Issues tab's download: the issues its current filters list (every page of them) as a streamed CSV.

Any member of the tenant, viewers too (it reads what the tab shows); another
tenant's integration answers 404, as every portal page does. The filters are
the tab's own (`selectors.filtered_issues`): a wrong one answers 400 with the
tab and its message, and nothing is downloaded.
"""

from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from integrations import selectors
from issues import export
from portal.views import base_context, issues_context, portal_view, tenant_integration


@portal_view()
@require_GET
def issues_csv(request, integration_id):
    integration = tenant_integration(request, integration_id)
    try:
        issues = selectors.filtered_issues(integration, request.GET)
    except selectors.BadFilter:
        context, status = issues_context(integration, request.GET)  # the tab, naming the wrong filter
        return render(request, "portal/issues.html", base_context(request, **context), status=status)
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    return export.csv_response(issues, f"issues-{integration.pk}-{stamp}.csv")
