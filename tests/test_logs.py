"""Structured logs: JSON lines with the request, tenant, integration and session ids, and no secret in any line.

The log is what the real LOGGING configuration writes in production (LOG_FORMAT=json), at DEBUG,
captured from the root handler (`tests.logs.json_log`).
"""

import json
import logging
import re
from io import StringIO
from secrets import token_hex

import pytest
from django.core.management import call_command
from django.test import Client

from integrations.models import Integration, Membership, SyncSession
from syncconsole import logs
from tests.factories import MembershipFactory, TenantFactory, UserFactory
from tests.integrations.conftest import error_catalog, simulator_settings  # noqa: F401 (fixtures)
from tests.logs import json_log  # noqa: F401 (a fixture)

live = pytest.mark.django_db(transaction=True)
PASSWORD = "password"


# -- the context ----------------------------------------------------------------------------------


def test_context_blocks_nest_and_restore():
    assert logs.current() == {}
    with logs.context(request_id="r1", tenant=3):
        with logs.context(session=9, tenant=4):
            assert logs.current() == {"request_id": "r1", "tenant": 4, "session": 9}
        assert logs.current() == {"request_id": "r1", "tenant": 3}
    assert logs.current() == {}
    with pytest.raises(ValueError, match="Unknown log context field"):
        logs.bind(password="x")


def test_a_value_given_with_the_line_wins_over_the_context(json_log):
    with logs.context(session=1, integration=2):
        logging.getLogger("integrations.test").info("hello %s", "there", extra={"session": 5})
    [line] = [line for line in json_log.lines() if line["message"] == "hello there"]
    assert (line["session"], line["integration"], line["level"], line["logger"]) == (
        5,
        2,
        "INFO",
        "integrations.test",
    )
    assert "time" in line


def test_development_text_puts_the_known_ids_in_brackets():
    formatter = logs.TextFormatter("%(levelname)s %(message)s")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "started", (), None)
    assert formatter.format(record) == "INFO started"
    with logs.context(request_id="abc", session=7):
        logs.ContextFilter().filter(record)
    assert formatter.format(record) == "INFO started [request_id=abc session=7]"


@pytest.mark.parametrize(
    "path, logged",
    [
        ("/reauth/abc.DEF_123/", "/reauth/[redacted]/"),
        ("/reauth/abc.DEF_123", "/reauth/[redacted]"),
        ("/reauth/continue/", "/reauth/continue/"),
        ("/portal/password-reset/MQ/cb7r1k-4f2e9a8d1c3b5e7f/", "/portal/password-reset/MQ/[redacted]/"),
        ("/portal/password-reset/MQ/set-password/", "/portal/password-reset/MQ/set-password/"),
        ("/portal/password-reset/sent/", "/portal/password-reset/sent/"),
    ],
)
def test_link_tokens_in_a_logged_path_are_redacted(path, logged):
    record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "%s: %s", ("Gone", path), None)
    logs.ContextFilter().filter(record)
    assert record.getMessage() == f"Gone: {logged}"


# -- requests -------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "incoming, kept",
    [
        ("req-7f3a9c", True),
        ("0f8fad5b-d9cb-469f-a165-70867728950e", True),
        ("", False),
        ("has spaces in it", False),
        ("x" * 200, False),
        ("bad\u00e9char", False),
    ],
)
def test_the_request_id_is_the_callers_if_sane_else_new_and_always_echoed(incoming, kept):
    headers = {"X-Request-ID": incoming} if incoming else {}
    response = Client().get("/portal/login/", headers=headers)
    echoed = response["X-Request-ID"]
    if kept:
        assert echoed == incoming
    else:
        assert re.fullmatch(r"[0-9a-f]{32}", echoed)


@pytest.mark.django_db
def test_every_line_of_a_portal_request_carries_its_request_tenant_and_integration(json_log, monkeypatch):
    tenant = TenantFactory()
    user = UserFactory(username="carol")
    MembershipFactory(user=user, tenant=tenant, role=Membership.Role.ADMIN)
    integration = Integration.objects.create(tenant=tenant, connector="simulator", name="Pax8")
    client = Client()
    client.force_login(user)

    from portal import views

    seen = logging.getLogger("portal.views")
    real_base_context = views.base_context

    def noisy_base_context(request, **extra):
        seen.info("rendering a portal page")
        return real_base_context(request, **extra)

    monkeypatch.setattr(views, "base_context", noisy_base_context)
    response = client.get(f"/portal/integrations/{integration.pk}/", headers={"X-Request-ID": "req-portal-1"})
    assert response.status_code == 200
    [line] = [line for line in json_log.lines() if line["message"] == "rendering a portal page"]
    assert (line["request_id"], line["tenant"], line["integration"]) == (
        "req-portal-1",
        tenant.pk,
        integration.pk,
    )
    assert "session" not in line
    # Nothing of the request outlives it.
    assert logs.current() == {}


@pytest.mark.django_db
def test_an_api_request_logs_under_its_key_tenant_and_the_integration_it_names(json_log):
    from integrations.api_keys import create_api_key

    mine, theirs = TenantFactory(), TenantFactory()
    _, key = create_api_key(mine, "robot")
    other = Integration.objects.create(tenant=theirs, connector="simulator", name="Not yours")
    api = Client(headers={"Authorization": f"Bearer {key}", "X-Request-ID": "req-api-9"})
    assert api.get(f"/api/v1/integrations/{other.pk}/").status_code == 404
    [line] = [line for line in json_log.lines() if line["logger"] == "django.request"]
    assert (line["request_id"], line["tenant"], line["integration"]) == ("req-api-9", mine.pk, other.pk)
    assert key not in json_log.text


@pytest.mark.django_db
def test_django_request_warnings_are_json_lines_with_the_request_id(json_log):
    Client().get("/portal/integrations/999999/no-such-page/", headers={"X-Request-ID": "req-404"})
    [line] = [line for line in json_log.lines() if line["logger"] == "django.request"]
    assert line["level"] == "WARNING" and line["request_id"] == "req-404"
    assert line["message"].startswith("Not Found: /portal/")
    assert "request" not in line  # the request object (headers, cookies) is never written


# -- no secret in any line ---------------------------------------------------------------------------


def portal_login(username, password):
    client = Client()
    response = client.post("/portal/login/", {"username": username, "password": password})
    return client, response


@live
def test_no_secret_reaches_the_log(
    json_log, vendor_simulator, simulator_settings, error_catalog, django_user_model
):
    """A realistic day: every secret it uses is looked for in every line logged at DEBUG; none is there."""
    secrets = {}
    tenant = TenantFactory(name="Initech", slug=f"initech-{token_hex(3)}")
    secrets["customer password"] = "pw-" + token_hex(12)
    customer = django_user_model.objects.create_user(
        "peter", "peter@initech.example", secrets["customer password"]
    )
    MembershipFactory(user=customer, tenant=tenant, role=Membership.Role.ADMIN)
    secrets["staff password"] = "pw-" + token_hex(12)
    django_user_model.objects.create_superuser("bill", "bill@support.example", secrets["staff password"])

    # The vendor issues an OAuth2 client secret; the integration is added with it from the command line.
    settings = simulator_settings("healthy", auth="oauth2")
    secrets["vendor key"] = "vk-" + token_hex(16)
    vendor_simulator.control(settings["account"], api_key=secrets["vendor key"])
    out = StringIO()
    call_command(
        "add_integration", tenant.slug, "simulator", "--name", "Initech billing",
        *[arg for key, value in settings.items() for arg in ("--setting", f"{key}={value}")],
        "--credential", f"api_key={secrets['vendor key']}", stdout=out,
    )  # fmt: skip
    integration = Integration.objects.get(tenant=tenant)
    first = SyncSession.objects.get(integration=integration)
    assert first.state == SyncSession.State.SUCCEEDED, first.error_message

    # The customer signs in (after a typo) and syncs.
    secrets["mistyped password"] = secrets["customer password"][:-1] + "!"
    _, refused = portal_login("peter", secrets["mistyped password"])
    assert refused.status_code == 200 and "_auth_user_id" not in refused.client.session
    portal, signed_in = portal_login("peter", secrets["customer password"])
    assert signed_in.status_code == 302
    assert portal.post(f"/portal/integrations/{integration.pk}/sync/", {"kind": "quick"}).status_code == 302

    # The vendor rotates the secret: the next sync fails on authentication.
    secrets["rotated vendor key"] = "vk-" + token_hex(16)
    vendor_simulator.control(settings["account"], api_key=secrets["rotated vendor key"])
    assert portal.post(f"/portal/integrations/{integration.pk}/sync/", {"kind": "quick"}).status_code == 302
    failed = SyncSession.objects.filter(integration=integration).order_by("-pk").first()
    assert (failed.state, failed.error_code_id) == ("failed", "AUTH_INVALID")

    # Support sends a re-authentication link; the customer opens it and enters the new secret.
    console = Client()
    assert (
        console.post("/admin/login/", {"username": "bill", "password": secrets["staff password"]}).status_code
        == 302
    )
    sent = console.post(
        f"/admin/integrations/integration/{integration.pk}/action/send_reauth_link/",
        {"member": customer.email},
    )
    assert sent.status_code == 200
    url = re.search(r'id="sc-reauth-url"[^>]*value="([^"]+)"', sent.content.decode()).group(1)
    secrets["re-auth token"] = url.rstrip("/").rsplit("/", 1)[-1]
    anonymous = Client()
    assert anonymous.get(f"/reauth/{secrets['re-auth token']}/", follow=True).status_code == 200
    done = anonymous.post("/reauth/continue/", {"api_key": secrets["rotated vendor key"]})
    assert done.status_code == 200 and "the new credentials work" in done.content.decode()
    # A used link opened again: Django logs the path of every 4xx answer.
    used = Client().get(f"/reauth/{secrets['re-auth token']}/")
    assert used.status_code >= 400
    integration.refresh_from_db()
    assert integration.get_credentials() == {"api_key": secrets["rotated vendor key"]}

    # The customer makes an API key and a webhook, and the API is used with the key.
    made = portal.post("/portal/api-keys/", {"name": "billing robot"})
    secrets["API key"] = made.context["new_key"]
    hooked = portal.post("/portal/webhooks/", {"url": "https://127.0.0.1:9/hooks"})
    secrets["webhook secret"] = hooked.context["new_secret"]
    api = Client(headers={"Authorization": f"Bearer {secrets['API key']}"})
    assert api.get("/api/v1/integrations/").status_code == 200
    assert (
        api.post(
            f"/api/v1/integrations/{integration.pk}/sync", {"kind": "quick"}, content_type="application/json"
        ).status_code
        == 202
    )
    assert (
        Client(headers={"Authorization": f"Bearer {secrets['API key']}x"})
        .get("/api/v1/integrations/")
        .status_code
        == 401
    )

    assert all(secrets.values()) and len(set(secrets.values())) == len(secrets)
    text = json_log.text
    lines = json_log.lines()
    # No secret, nor an access token the vendor issued, nor a bearer header ...
    leaked = {name: secret for name, secret in secrets.items() if secret in text}
    assert leaked == {}, [line for line in text.splitlines() if any(s in line for s in leaked.values())][:5]
    assert re.search(r"\.\d{13}\.[0-9a-f]{64}", text) is None  # the simulator's access tokens
    assert "Bearer " not in text and "Authorization" not in text
    assert all(json.loads(line) for line in text.splitlines())
    # ... in a log that saw the whole day: DEBUG lines, every session, the vendor calls, the used link.
    assert len(json_log.events("session_finished", integration=integration.pk)) == 5
    assert any(line["level"] == "DEBUG" and line["logger"].startswith("urllib3") for line in lines)
    assert any(
        line["logger"] == "django.request" and "/reauth/[redacted]/" in line["message"] for line in lines
    )


def test_a_line_whose_arguments_do_not_fit_its_format_passes_the_filter_untouched():
    """The handler reports such a line as usual; the filter never raises into the code that logged it."""
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "two %s %s", ("but one",), None)
    with logs.context(session=3):
        assert logs.ContextFilter().filter(record) is True
    assert (record.msg, record.args, record.session) == ("two %s %s", ("but one",), 3)
