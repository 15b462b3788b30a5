"""Alert emails through a real SMTP server (aiosmtpd on loopback).

The syncs are real (simulator over HTTP, inline django-q2 broker), the alert
is raised in the finishing transaction and delivered after commit; messages
are counted where they arrive: at the SMTP server.
"""

import html as htmllib
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse

from alerts import delivery
from alerts.models import Alert
from integrations.models import Integration, IntegrationEvent, ReauthLink, SyncSession
from issues.models import ErrorCode

live = pytest.mark.django_db(transaction=True)
R = Alert.Rule
URL_RE = re.compile(r"https?://[^\s<>\"']+")
HREF_RE = re.compile(r'href="([^"]+)"')


def text_links(text):
    return [u.rstrip(".,);") for u in URL_RE.findall(text)]


def html_links(html):
    return [htmllib.unescape(h) for h in HREF_RE.findall(html)]


def site_path(url):
    assert url.startswith(settings.SITE_URL + "/"), url
    return url[len(settings.SITE_URL) :]


def portal_link(integration):
    """The integration's portal page, as emails link to it (built from SITE_URL when sent)."""
    return settings.SITE_URL + reverse("portal:general", args=[integration.pk])


def alerts_of(integration, rule=None):
    qs = Alert.objects.filter(integration=integration)
    return qs.filter(rule=rule) if rule else qs


# -- repeated failures -----------------------------------------------------------


@live
def test_tenth_consecutive_failure_sends_one_email_and_the_eleventh_none(
    healthy_then_failing, fail_times, smtp_server, client, staff_user
):
    integration = healthy_then_failing()
    address = integration.tenant.alert_emails

    fail_times(integration, 9)
    assert smtp_server.messages == []
    assert not alerts_of(integration).exists()

    (tenth,) = fail_times(integration, 1)
    assert integration.consecutive_unsuccessful == 10
    assert len(smtp_server.messages) == 1
    message = smtp_server.messages[0]
    assert message.rcpt_tos == [address]
    assert message.subject == f"[SyncConsole] 10 syncs in a row failed: {integration.name}"
    alert = alerts_of(integration).get()
    assert (alert.rule, alert.state, alert.attempts) == (R.REPEATED_FAILURES, Alert.State.SENT, 1)
    assert alert.streak == integration.unsuccessful_since.isoformat(timespec="seconds")
    assert alert.sent_at >= tenth.finished_at

    # The email says what happened in plain words, with the catalog's advice.
    code = ErrorCode.objects.get(pk="VENDOR_UNAVAILABLE")
    for body in (message.text, message.html):
        assert integration.name in htmllib.unescape(body)
        assert integration.tenant.name in htmllib.unescape(body)
        assert "VENDOR_UNAVAILABLE" in body
        assert htmllib.unescape(code.customer_advice) in htmllib.unescape(body)
        assert "What happens next:" in body
    assert "portal_url" not in alert.context  # links are made when the email is sent
    assert text_links(message.text) == html_links(message.html) == [portal_link(integration)]

    (eleventh,) = fail_times(integration, 1)
    assert integration.consecutive_unsuccessful == 11
    assert len(smtp_server.messages) == 1
    assert alerts_of(integration).count() == 1
    assert delivery.deliver_due(now=eleventh.finished_at + timedelta(hours=2)) == {"sent": 0, "digests": 0}
    assert len(smtp_server.messages) == 1

    # On the integration's timeline, once.
    events = IntegrationEvent.objects.filter(integration=integration, kind=IntegrationEvent.Kind.ALERT_SENT)
    assert events.count() == 1
    assert address in events.get().note
    # And on the staff dashboard.
    client.force_login(staff_user)
    page = client.get("/admin/")
    assert page.status_code == 200
    assert f"{integration.name}: Repeated failures" in page.content.decode()


@live
def test_recovery_after_an_alerted_streak_sends_one_recovered_email(
    healthy_then_failing, fail_times, sync, smtp_server, vendor_simulator
):
    integration = healthy_then_failing()
    fail_times(integration, 10)
    assert len(smtp_server.messages) == 1

    vendor_simulator.control(integration.settings["account"], recover=True)
    clean = sync(integration, kind=SyncSession.Kind.QUICK)
    assert clean.state == SyncSession.State.SUCCEEDED
    assert integration.status == Integration.Status.ACTIVE

    recovered = alerts_of(integration, R.RECOVERED).get()
    assert recovered.context["failed_in_a_row"] == 10
    # Sent at once (a recovery never waits for a digest), and once.
    assert recovered.state == Alert.State.SENT
    assert len(smtp_server.with_subject("Recovered")) == 1
    later = clean.finished_at + settings.ALERT_DIGEST_WINDOW + timedelta(seconds=1)
    delivery.deliver_due(now=later)
    delivery.deliver_due(now=later + timedelta(hours=3))
    recovered_emails = smtp_server.with_subject("Recovered")
    assert len(recovered_emails) == 1
    assert recovered_emails[0].subject == f"[SyncConsole] Recovered: {integration.name}"
    assert "after 10 unsuccessful syncs." in recovered_emails[0].text
    assert len(smtp_server.messages) == 2

    # Another clean sync is no new recovery.
    sync(integration, kind=SyncSession.Kind.QUICK)
    delivery.deliver_due(now=later + timedelta(hours=6))
    assert alerts_of(integration, R.RECOVERED).count() == 1
    assert len(smtp_server.messages) == 2


@live
def test_smtp_down_when_the_alert_is_due_then_back_sends_it_once(healthy_then_failing, fail_times, smtp_server):
    integration = healthy_then_failing()
    fail_times(integration, 9)

    smtp_server.stop()
    (tenth,) = fail_times(integration, 1)

    alert = alerts_of(integration).get()
    assert alert.state == Alert.State.PENDING
    assert alert.last_error  # e.g. "ConnectionRefusedError: ..."
    assert alert.sent_at is None
    assert alert.attempts == 1
    assert alert.next_attempt_at > tenth.finished_at
    assert smtp_server.messages == []

    # Still down at the next attempt: still pending, nothing lost.
    assert delivery.deliver_due(now=alert.next_attempt_at)["sent"] == 0
    alert.refresh_from_db()
    assert alert.state == Alert.State.PENDING
    assert alert.attempts == 2
    assert alert.last_error

    smtp_server.start()  # a new controller on the same port
    later = alert.next_attempt_at + timedelta(seconds=1)
    assert delivery.deliver_due(now=later)["sent"] == 1
    assert len(smtp_server.messages) == 1
    assert "10 syncs in a row failed" in smtp_server.messages[0].subject
    alert.refresh_from_db()
    assert (alert.state, alert.last_error, alert.sent_at) == (Alert.State.SENT, "", later)

    assert delivery.deliver_due(now=later + timedelta(hours=1)) == {"sent": 0, "digests": 0}
    assert delivery.deliver(alert.pk, now=later + timedelta(hours=2)) is None
    assert len(smtp_server.messages) == 1
    assert IntegrationEvent.objects.filter(integration=integration, kind=IntegrationEvent.Kind.ALERT_SENT).count() == 1


# -- credentials -------------------------------------------------------------------


@live
def test_auth_failing_sends_one_alert_with_a_working_reauth_link(
    make_integration, sync, alert_tenant, vendor_simulator, smtp_server, client
):
    integration = make_integration("healthy", tenant=alert_tenant())
    sync(integration)
    vendor_simulator.control(integration.settings["account"], api_key="rotated-key")

    failed = sync(integration, kind=SyncSession.Kind.QUICK)
    assert failed.error_code_id == "AUTH_INVALID"
    assert integration.status == Integration.Status.AUTH_FAILING

    assert len(smtp_server.messages) == 1
    message = smtp_server.messages[0]
    assert message.subject == f"[SyncConsole] Re-authentication needed: {integration.name}"
    assert message.rcpt_tos == [integration.tenant.alert_emails]
    assert message.html is not None and message.text is not None

    alert = alerts_of(integration, R.AUTH_FAILING).get()
    assert "reauth_url" not in alert.context  # the token lives only in the email
    portal_url = portal_link(integration)
    reauth_url = text_links(message.text)[0]
    assert reauth_url.startswith(settings.SITE_URL + "/reauth/")
    assert alert.context["reauth_link_id"] == ReauthLink.objects.get(integration=integration).pk
    assert portal_url.startswith(settings.SITE_URL + "/portal/")
    assert text_links(message.text) == html_links(message.html) == [reauth_url, portal_url]

    assert client.get(site_path(portal_url)).status_code in (200, 302)  # the portal asks to log in
    page = client.get(site_path(reauth_url), follow=True)
    assert page.status_code == 200

    # The next auth failure of the same streak sends nothing.
    sync(integration, kind=SyncSession.Kind.QUICK)
    assert integration.consecutive_unsuccessful == 2
    assert len(smtp_server.messages) == 1
    assert alerts_of(integration, R.AUTH_FAILING).count() == 1


@live
def test_credentials_invalid_goes_to_support_too(make_integration, sync, alert_tenant, vendor_simulator, smtp_server):
    integration = make_integration("healthy", tenant=alert_tenant())
    sync(integration)
    vendor_simulator.control(integration.settings["account"], api_key="rotated-key")
    first = sync(integration, kind=SyncSession.Kind.QUICK)
    assert len(smtp_server.messages) == 1  # authentication failing

    since = first.finished_at - settings.CREDENTIALS_INVALID_AFTER
    Integration.objects.filter(pk=integration.pk).update(auth_failing_since=since)
    integration.refresh_from_db()
    again = sync(integration, kind=SyncSession.Kind.QUICK)
    assert integration.status == Integration.Status.CREDENTIALS_INVALID

    alert = alerts_of(integration, R.CREDENTIALS_INVALID).get()
    assert settings.SUPPORT_EMAIL in alert.recipients
    assert integration.tenant.alert_emails in alert.recipients
    assert alert.context["wants_reauth_link"] is True

    # At once, although the tenant was emailed moments ago (authentication failing):
    # support and the tenant's alert list each get their own copy, with the same link.
    assert alert.state == Alert.State.SENT
    (to_support,) = smtp_server.to(settings.SUPPORT_EMAIL)
    (to_tenant,) = [m for m in smtp_server.to(integration.tenant.alert_emails) if "Syncs paused" in m.subject]
    assert to_support.rcpt_tos == [settings.SUPPORT_EMAIL]
    assert to_tenant.rcpt_tos == [integration.tenant.alert_emails]
    assert to_support.subject == to_tenant.subject == f"[SyncConsole] Syncs paused, new credentials needed: {integration.name}"
    reauth_url = text_links(to_support.text)[0]
    assert reauth_url.startswith(settings.SITE_URL + "/reauth/")
    assert text_links(to_tenant.text)[0] == reauth_url
    assert "alert list" not in to_support.text  # the footer is for the tenant's list only
    assert f"alert list of {integration.tenant.name}" in to_tenant.text
    assert alert.sent_at - again.finished_at < timedelta(minutes=1)


# -- quality assurance -------------------------------------------------------------


@live
def test_quality_assurance_entered_goes_to_engineering_with_the_evidence(
    make_integration, sync, alert_tenant, smtp_server
):
    integration = make_integration("outage", tenant=alert_tenant())
    first = sync(integration)
    assert first.state == SyncSession.State.FAILED
    assert integration.status == Integration.Status.QUALITY_ASSURANCE

    to_engineering = smtp_server.to(settings.ENGINEERING_EMAIL)
    assert len(to_engineering) == 1
    message = to_engineering[0]
    assert message.rcpt_tos == [settings.ENGINEERING_EMAIL]
    assert message.subject == f"[SyncConsole] Quality assurance: {integration.name} ({integration.tenant.name})"
    evidence = f"First sync: session {first.pk}, failed, {first.items_seen} items seen"
    assert evidence in message.text
    assert evidence in message.html
    assert "VENDOR_UNAVAILABLE" in message.text
    assert alerts_of(integration, R.QUALITY_ASSURANCE).get().context["evidence"]["session_id"] == first.pk
    # The tenant is not told about the engineering review.
    assert smtp_server.to(integration.tenant.alert_emails) == []


# -- several at once ---------------------------------------------------------------


@live
def test_three_integrations_failing_authentication_at_once_each_get_their_email_at_once(
    make_integration, sync, alert_tenant, vendor_simulator, smtp_server
):
    """Each is the first alert of its streak and needs action: none waits for a digest."""
    tenant = alert_tenant()
    integrations = [make_integration("healthy", tenant=tenant, name=f"Digest {i}") for i in range(3)]
    for integration in integrations:
        sync(integration)
        vendor_simulator.control(integration.settings["account"], api_key="rotated-key")
    sessions = [sync(integration, kind=SyncSession.Kind.QUICK) for integration in integrations]
    assert [s.error_code_id for s in sessions] == ["AUTH_INVALID"] * 3

    assert [m.subject for m in smtp_server.messages] == [f"[SyncConsole] Re-authentication needed: Digest {i}" for i in range(3)]
    assert all(m.rcpt_tos == [tenant.alert_emails] for m in smtp_server.messages)
    for integration, session in zip(integrations, sessions):
        alert = alerts_of(integration, R.AUTH_FAILING).get()
        assert alert.state == Alert.State.SENT
        assert alert.sent_at - session.finished_at < timedelta(minutes=1)
    # One working link per integration, each in its own email.
    links = [text_links(m.text)[0] for m in smtp_server.messages]
    assert len(set(links)) == 3
    assert ReauthLink.objects.filter(integration__in=integrations, revoked_at=None).count() == 3

    later = sessions[-1].finished_at + settings.ALERT_DIGEST_WINDOW * 3
    assert delivery.deliver_due(now=later) == {"sent": 0, "digests": 0}
    assert len(smtp_server.messages) == 3


# -- test emails --------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_test_email_page_sends_to_the_smtp_server(client, staff_user, smtp_server):
    client.force_login(staff_user)
    url = "/admin/alerts/alert/test-email/"
    assert client.get(url).status_code == 200

    response = client.post(url, {"recipient": "check@example.com"})
    assert response.status_code == 200
    assert "Test email sent to check@example.com" in response.content.decode()
    (message,) = smtp_server.messages
    assert message.rcpt_tos == ["check@example.com"]
    assert message.subject == "[SyncConsole] Test email"
    assert message.text and message.html
    # A test email asks nothing of its reader, and does not pretend to be about a real error.
    assert "This test email needs no action." in message.text
    assert "Nothing to do on your side" not in message.text + message.html
    assert text_links(message.text) == html_links(message.html)

    smtp_server.stop()
    failed = client.post(url, {"recipient": "check@example.com"})
    assert failed.status_code == 502
    assert len(smtp_server.messages) == 1


@pytest.mark.django_db
def test_admin_test_email_page_refuses_a_bad_address(client, staff_user, smtp_server):
    client.force_login(staff_user)
    assert client.post("/admin/alerts/alert/test-email/", {"recipient": "not an address"}).status_code == 400
    assert smtp_server.messages == []


@pytest.mark.django_db
def test_send_test_email_command_delivers_to_the_smtp_server(smtp_server):
    out = StringIO()
    call_command("send_test_email", "cli@example.com", stdout=out)
    assert "Test email sent to cli@example.com" in out.getvalue()
    (message,) = smtp_server.messages
    assert message.rcpt_tos == ["cli@example.com"]
    assert message.html and message.text
