"""The URLconf `make bench-pages` measures with: the project's URLs, plus a stock admin at /stock-admin/.

The stock site is Django's admin as it comes: a plain `ModelAdmin` per model
with the same searches and filters as ours (in Django's default lookups), no
annotations, no custom paginator, Django's own templates. It is the baseline
the console's changelists are compared with; nothing outside bench/ uses it.
"""

from django.contrib import admin
from django.urls import include, path

from integrations.models import Integration
from issues.models import SyncIssue

stock_site = admin.AdminSite(name="stock_admin")


@admin.register(Integration, site=stock_site)
class StockIntegrationAdmin(admin.ModelAdmin):
    # The console's columns a stock admin can show without annotations; the
    # open-issue count needs one, so the stock list sorts by a stored integer.
    list_display = ("name", "tenant", "connector", "status", "last_success_at", "consecutive_unsuccessful")
    list_filter = ("status", "connector", "tenant__environment", "paused")
    search_fields = ("name", "tenant__name", "tenant__slug", "=account_mappings__vendor_account_id")
    change_list_template = "admin/change_list.html"


@admin.register(SyncIssue, site=stock_site)
class StockSyncIssueAdmin(admin.ModelAdmin):
    list_display = (
        "error_code", "external_id", "integration", "source", "severity", "state", "occurrences", "last_seen_at",
    )  # fmt: skip
    list_filter = ("state", "severity", "error_code__category", "error_code", "source", "integration__connector")
    search_fields = ("external_id", "item_label")
    change_list_template = "admin/change_list.html"


urlpatterns = [
    path("stock-admin/", stock_site.urls),
    path("", include("syncconsole.urls")),
]
