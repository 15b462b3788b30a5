"""The alert email's HTML rendered in Chromium; a screenshot is kept in test-artifacts/."""

import re

import pytest
from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from alerts import rules
from alerts.models import Alert
from integrations.models import Integration
from tests.factories import IntegrationFactory
from tests.plugins.chromium import launch_chromium, screenshot

URL_RE = re.compile(r"https?://[^\s<>\"']+")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_auth_failing_email_renders_with_buttons_matching_the_text_links(
    smtp_server, alert_tenant, error_catalog
):
    tenant = alert_tenant(name="Acme Managed Services")
    integration = IntegrationFactory(
        tenant=tenant,
        name="Acme Tickets",
        status=Integration.Status.AUTH_FAILING,
        status_reason="The vendor refused the credentials (AUTH_INVALID).",
        consecutive_unsuccessful=1,
    )
    now = timezone.now()
    recipients = rules.tenant_recipients(tenant)
    with transaction.atomic():
        (alert,) = rules.raise_alerts(
            [
                rules.build(
                    integration,
                    Alert.Rule.AUTH_FAILING,
                    now.isoformat(timespec="seconds"),
                    now,
                    recipients=recipients,
                    reauth=True,
                )
            ]
        )
    (message,) = smtp_server.messages
    html, text = message.html, message.text
    assert html and text

    portal_url = settings.SITE_URL + reverse("portal:general", args=[integration.pk])  # built when sent
    # Chromium starts after the database work (see tests/plugins/chromium.py), as narrow as a mail client.
    with launch_chromium() as browser:
        page = browser.new_page(viewport={"width": 720, "height": 900})
        page.set_content(html, wait_until="load")
        shot = screenshot(page, "alert-email.png")
        assert shot.stat().st_size > 5000

        buttons = page.locator("a")
        assert buttons.count() == 2
        labels = [buttons.nth(i).inner_text().strip() for i in range(2)]
        hrefs = [buttons.nth(i).get_attribute("href") for i in range(2)]
        assert labels == ["Re-authenticate", "Open in the portal"]
        for i in range(2):
            box = buttons.nth(i).bounding_box()
            assert box and box["width"] > 60 and box["height"] > 20  # visible buttons
        assert page.locator("h1").inner_text() == "Acme Tickets"
        assert "Acme Managed Services" in page.inner_text("body")

    text_links = URL_RE.findall(text)
    assert hrefs == text_links
    assert hrefs[0].startswith(settings.SITE_URL + "/reauth/")
    assert hrefs[1] == portal_url
    assert hrefs[1].startswith(settings.SITE_URL + "/portal/")
