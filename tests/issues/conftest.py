"""Fixtures for the help requests' tests: staff in their groups (tests/admin), tenants' members (tests/portal),
the real SMTP server (tests/plugins/smtp.py), and a request with someone to answer it.
"""

from types import SimpleNamespace

import pytest

from integrations.models import Membership
from issues.support import conversation
from tests.admin.conftest import (  # noqa: F401
    PASSWORD,
    engineering_user,
    staff_client,
    staff_groups,
    superuser,
    support_client,
    support_user,
)
from tests.factories import IntegrationFactory, SyncIssueFactory, TenantFactory, UserFactory
from tests.plugins.smtp import smtp_server  # noqa: F401
from tests.portal.conftest import log_in, member  # noqa: F401


@pytest.fixture
def acme(member, error_catalog):  # noqa: F811 (the imported fixture)
    """Acme: Grace (admin) asks, Victor (viewer) reads along; one integration with one issue."""
    tenant = TenantFactory(name="Acme", slug="acme")
    grace = member(tenant, Membership.Role.ADMIN, username="grace", email="grace@acme.example", first_name="Grace")
    victor = member(tenant, Membership.Role.VIEWER, username="victor", email="victor@acme.example")
    integration = IntegrationFactory(tenant=tenant, name="Acme billing")
    issue = SyncIssueFactory(integration=integration, item_label="Invoice 42")
    return SimpleNamespace(tenant=tenant, grace=grace, victor=victor, integration=integration, issue=issue)


@pytest.fixture
def asked(acme, django_capture_on_commit_callbacks):
    """Grace's request about Acme's issue, as the portal opens it (support's email sent)."""
    with django_capture_on_commit_callbacks(execute=True):
        return conversation.open_request(
            acme.integration,
            acme.grace,
            "Invoice 42 never arrives. What is wrong?",
            issue=acme.issue,
            facts=[["Integration", "Acme billing (Simulator)"], ["Problem began", "2026-11-20 09:00 UTC"]],
        )


@pytest.fixture
def viewer_staff(staff_groups):  # noqa: F811
    """A staff member who may read help requests and not change them."""
    from django.contrib.auth.models import Permission

    user = UserFactory(username="reader", first_name="Rita", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_supportrequest"))
    return user
