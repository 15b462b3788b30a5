"""SyncConsole URLs: the console at /admin/, the portal at /portal/, the API at /api/v1/, re-auth links."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from portal.urls import api_urls, portal_patterns
from portal import views_as_customer
from portal.views_reauth import reauth_page
from syncconsole import health
from syncconsole.metrics import metrics_view
from syncconsole.outbox import outbox_message_view, outbox_view

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    # Development only: 404 unless emails go to the local mailbox (syncconsole/outbox.py).
    path("admin/outbox/", admin.site.admin_view(outbox_view), name="outbox"),
    path("admin/outbox/<str:name>/", admin.site.admin_view(outbox_message_view), name="outbox_message"),
    # Staff only: an integration's portal tabs as its customer sees them, read-only (portal/views_as_customer.py).
    path(
        "admin/integrations/integration/<int:integration_id>/as-customer/",
        admin.site.admin_view(views_as_customer.general),
        name="view_as_customer",
    ),
    path(
        "admin/integrations/integration/<int:integration_id>/as-customer/issues/",
        admin.site.admin_view(views_as_customer.issues),
        name="view_as_customer_issues",
    ),
    path("admin/", admin.site.urls),
    path("reauth/<str:token>/", reauth_page, name="reauth"),
    # Public: the one-click unsubscribe link of members' alert emails (RFC 8058).
    path("alerts/", include("alerts.urls")),
    path("portal/", include((portal_patterns, "portal"))),
    path("api/v1/", api_urls),
    # Public probes, no login: the process answers; it can serve (syncconsole/health.py).
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
]

# Refusals under /admin/ are a console page naming the permission and the groups that hold it.
handler403 = "syncconsole.admin_errors.permission_denied"
