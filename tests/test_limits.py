"""Limits against guessing and abuse, and the pages that must not leak or change what they should not.

Logins lock per username and address after LOGIN_FAILURE_LIMIT failures
(django-axes), even for the right password, until the lock ends or staff
unlock it. Everything else that can be guessed or abused answers 429 with
Retry-After once its counter in the cache is over the limit.
"""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from axes.utils import reset as axes_reset
from django.core import mail
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from integrations import api_keys, reauth
from integrations.models import Integration, Membership
from issues.models import SupportRequest
from tests.factories import (
    IntegrationFactory,
    MembershipFactory,
    SyncIssueFactory,
    TenantFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
PASSWORD = "a-Good-password-42"


@pytest.fixture
def alice():
    user = UserFactory(username="alice", password=PASSWORD, email="alice@acme.example")
    MembershipFactory(user=user, tenant=TenantFactory(name="Acme"), role=Membership.Role.ADMIN)
    return user


def portal_login(client, password, address="203.0.113.7"):
    return client.post(
        reverse("portal:login"), {"username": "alice", "password": password}, REMOTE_ADDR=address
    )


# -- logins ------------------------------------------------------------------------------


def test_thirty_failed_logins_lock_that_login_from_that_address(alice, settings):
    assert settings.AXES_FAILURE_LIMIT == 30
    client = Client()
    for _ in range(29):
        assert portal_login(client, "wrong").status_code == 200  # the form again, with its error
    locked = portal_login(client, "wrong")
    assert locked.status_code == 429
    assert "Sign-in locked" in locked.content.decode()

    # The right password is refused too, from that address.
    refused = portal_login(client, PASSWORD)
    assert refused.status_code == 429
    assert "_auth_user_id" not in client.session
    # Another address is not locked out of the account.
    assert portal_login(Client(), PASSWORD, address="198.51.100.9").status_code == 302


def test_staff_unlock_lets_the_right_password_in_again(alice, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        portal_login(client, "wrong")
    assert portal_login(client, PASSWORD).status_code == 429
    assert AccessAttempt.objects.filter(username="alice").exists()

    axes_reset(username="alice")  # what "Access attempts" -> delete does in the admin

    assert portal_login(client, PASSWORD).status_code == 302


def test_the_lock_ends_after_the_cool_off(alice, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        portal_login(client, "wrong")
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(minutes=1))
    assert portal_login(client, PASSWORD).status_code == 302


def test_the_admin_login_is_locked_too(settings):
    UserFactory(username="support", password=PASSWORD, is_staff=True)
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("admin:login"), {"username": "support", "password": "wrong"}, REMOTE_ADDR="203.0.113.8")
    response = client.post(reverse("admin:login"), {"username": "support", "password": PASSWORD}, REMOTE_ADDR="203.0.113.8")
    assert response.status_code == 429


# -- the API -----------------------------------------------------------------------------


def test_a_hundred_bad_api_keys_from_one_address_end_in_429(settings):
    tenant = TenantFactory()
    _, good_key = api_keys.create_api_key(tenant, "monitoring")
    client = Client()
    statuses = [
        client.get("/api/v1/integrations/", HTTP_AUTHORIZATION=f"Bearer sck_wrong{n}", REMOTE_ADDR="203.0.113.9").status_code
        for n in range(100)
    ]
    limit = settings.RATE_LIMITS["api_key_failures"][0]
    assert statuses[:limit] == [401] * limit
    assert set(statuses[limit:]) == {429}
    last = client.get("/api/v1/integrations/", HTTP_AUTHORIZATION=f"Bearer {good_key}", REMOTE_ADDR="203.0.113.9")
    assert last.status_code == 429
    assert int(last["Retry-After"]) > 0
    assert last.json()["error"]["code"] == "rate_limited"
    # Another address with the good key is served.
    assert client.get("/api/v1/integrations/", HTTP_AUTHORIZATION=f"Bearer {good_key}", REMOTE_ADDR="198.51.100.1").status_code == 200


def test_api_reads_write_last_used_at_most_once_a_minute(django_assert_num_queries):
    tenant = TenantFactory()
    key, raw = api_keys.create_api_key(tenant, "monitoring")
    client = Client()
    client.get("/api/v1/integrations/", HTTP_AUTHORIZATION=f"Bearer {raw}")
    key.refresh_from_db()
    first = key.last_used_at
    assert first is not None
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        client.get("/api/v1/integrations/", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert not [q for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    key.refresh_from_db()
    assert key.last_used_at == first


def test_a_deeply_nested_json_body_is_a_clear_400():
    tenant = TenantFactory()
    integration = IntegrationFactory(tenant=tenant, status=Integration.Status.ACTIVE)
    _, raw = api_keys.create_api_key(tenant, "ci")
    response = Client().post(
        f"/api/v1/integrations/{integration.pk}/sync",
        data="[" * 100_000,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_json"


def test_sync_triggers_per_integration_are_limited(settings, error_catalog):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "sync_triggers": (2, 600)}
    tenant = TenantFactory()
    integration = IntegrationFactory(
        tenant=tenant, status=Integration.Status.ACTIVE, first_sync_finished_at=timezone.now()
    )
    _, raw = api_keys.create_api_key(tenant, "ci")
    client = Client()
    url = f"/api/v1/integrations/{integration.pk}/sync"
    codes = [
        client.post(url, {"kind": "quick"}, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code
        for _ in range(3)
    ]
    assert codes[2] == 429
    assert codes[:2] != [429, 429]


# -- public and portal pages ---------------------------------------------------------------


def test_guessing_reauth_tokens_ends_in_429(settings):
    limit = settings.RATE_LIMITS["reauth_token_failures"][0]
    client = Client()
    for n in range(limit):
        assert client.get(f"/reauth/guess-{n}/", REMOTE_ADDR="203.0.113.10").status_code == 404
    response = client.get("/reauth/guess-last/", REMOTE_ADDR="203.0.113.10")
    assert response.status_code == 429
    assert "Too many" in response.content.decode()


def test_a_reauth_token_leaves_the_url_after_the_first_get(error_catalog):
    integration = IntegrationFactory(status=Integration.Status.AUTH_FAILING, credentials={"api_key": "old"})
    link = reauth.create_link(integration, recipient="it@example.com", send=False)
    client = Client()

    opened = client.get(f"/reauth/{link.token}/")

    assert opened.status_code == 302
    assert opened["Location"] == "/reauth/continue/"
    assert opened["Referrer-Policy"] == "no-referrer"
    page = client.get(opened["Location"])
    assert page.status_code == 200
    assert link.token not in page.content.decode()
    assert "Re-authenticate" in page.content.decode()
    # Without the session, the token-free page only says to open the link again.
    assert Client().get("/reauth/continue/").status_code == 400


def test_password_reset_emails_are_limited(alice, settings):
    limit = settings.RATE_LIMITS["password_reset"][0]
    client = Client()
    codes = [
        client.post(reverse("portal:password_reset"), {"email": "alice@acme.example"}, REMOTE_ADDR="203.0.113.11").status_code
        for _ in range(limit + 1)
    ]
    assert codes[:limit] == [302] * limit
    assert codes[limit] == 429
    assert len(mail.outbox) == limit


def test_help_requests_are_limited(alice, settings, error_catalog):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "help_requests": (2, 3600)}
    integration = IntegrationFactory(tenant=alice.membership.tenant)
    issue = SyncIssueFactory(integration=integration)
    client = Client()
    client.force_login(alice)
    url = reverse("portal:help", args=[integration.pk, issue.pk])
    codes = [client.post(url, {"message": f"Please help ({n})"}).status_code for n in range(3)]
    assert codes == [302, 302, 429]
    assert SupportRequest.objects.count() == 2


def test_webhook_endpoint_creation_is_limited(alice, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "webhook_endpoints": (1, 3600)}
    client = Client()
    client.force_login(alice)
    first = client.post(reverse("portal:webhooks"), {"url": "http://127.0.0.1:9/one"})
    second = client.post(reverse("portal:webhooks"), {"url": "http://127.0.0.1:9/two"})
    assert (first.status_code, second.status_code) == (200, 429)
    assert alice.membership.tenant.webhooks.count() == 1


# -- the admin ------------------------------------------------------------------------------


def test_an_integration_never_changes_tenant_in_the_admin(error_catalog):
    superuser = UserFactory(username="root", is_staff=True, is_superuser=True)
    integration = IntegrationFactory(status=Integration.Status.ACTIVE, credentials={"api_key": "k"})
    other = TenantFactory()
    client = Client()
    client.force_login(superuser)
    url = reverse("admin:integrations_integration_change", args=[integration.pk])
    page = client.get(url).content.decode()
    assert 'name="tenant"' not in page

    client.post(url, {"tenant": other.pk, "name": integration.name, "kind": integration.kind, "settings": "{}", "sync_interval": "01:00:00"})

    integration.refresh_from_db()
    assert integration.tenant_id != other.pk
