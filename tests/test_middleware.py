"""Headers every answer carries, and sessions that end when idle (staff sooner than customers)."""

import time

import pytest
from django.test import Client
from django.urls import reverse

from integrations.models import Membership
from syncconsole import middleware
from tests.factories import MembershipFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/portal/login/", "/admin/login/", "/reauth/not-a-token/", "/api/v1/openapi.json"])
def test_every_answer_carries_csp_and_permissions_policy(path):
    response = Client().get(path)
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert "camera=()" in response["Permissions-Policy"] and "geolocation=()" in response["Permissions-Policy"]


def test_no_page_template_carries_inline_script():
    """The policy refuses inline script, so none may be written: scripts live in static/."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "templates"
    offenders = []
    for template in root.rglob("*.html"):
        text = template.read_text()
        if re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text) or re.search(r"\son[a-z]+\s*=", text):
            offenders.append(str(template.relative_to(root)))
    assert offenders == []


def session_age(client, seconds):
    """Pretend the session's last noted activity was `seconds` ago."""
    session = client.session
    session[middleware.LAST_ACTIVITY] = int(time.time()) - seconds
    session.save()


@pytest.fixture
def customer():
    user = UserFactory(username="carol")
    MembershipFactory(user=user, tenant=TenantFactory(), role=Membership.Role.ADMIN)
    return user


def test_a_customer_session_ends_after_its_idle_time(customer, settings):
    client = Client()
    client.force_login(customer)
    assert client.get(reverse("portal:list")).status_code == 200

    session_age(client, settings.PORTAL_SESSION_IDLE_SECONDS - 60)
    assert client.get(reverse("portal:list")).status_code == 200  # still within; activity noted again

    session_age(client, settings.PORTAL_SESSION_IDLE_SECONDS + 1)
    response = client.get(reverse("portal:list"))
    assert response.status_code == 302 and reverse("portal:login") in response["Location"]


def test_staff_sessions_end_sooner_than_customers(customer, settings):
    assert settings.STAFF_SESSION_IDLE_SECONDS < settings.PORTAL_SESSION_IDLE_SECONDS
    staff = UserFactory(username="sam", is_staff=True, is_superuser=True)
    staff_client, customer_client = Client(), Client()
    staff_client.force_login(staff)
    customer_client.force_login(customer)
    idle = settings.STAFF_SESSION_IDLE_SECONDS + 1
    session_age(staff_client, idle)
    session_age(customer_client, idle)

    assert staff_client.get(reverse("admin:index")).status_code == 302  # back to the admin login
    assert customer_client.get(reverse("portal:list")).status_code == 200


def test_activity_is_noted_at_most_once_a_minute(customer):
    client = Client()
    client.force_login(customer)
    client.get(reverse("portal:list"))
    noted = client.session[middleware.LAST_ACTIVITY]
    client.get(reverse("portal:list"))
    assert client.session[middleware.LAST_ACTIVITY] == noted
