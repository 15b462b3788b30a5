"""The Outbox (development) page in Chromium: the message's HTML renders in its sandboxed frame, its script never runs.

The screenshot is kept as test-artifacts/admin-outbox.png (admin-outbox-failure.png when a step fails).
"""

import pytest
from django.core.mail import EmailMultiAlternatives

from syncconsole import outbox
from tests.factories import UserFactory
from tests.plugins.chromium import browse, expect, log_in_to_console, screenshot

pytestmark = [pytest.mark.slow, pytest.mark.browser]

HTML = (
    "<h1 style=\"font-family:sans-serif\">Sign-in failing</h1>"
    '<p>Pax8 no longer accepts the saved key. <a href="{url}/reauth/abc/">Re-authenticate</a></p>'
    '<script>document.body.setAttribute("data-ran", "yes"); parent.document.title = "owned";</script>'
)


@pytest.mark.django_db(transaction=True)
def test_the_html_preview_renders_without_running_its_script(live_server, settings, tmp_path):
    settings.EMAIL_BACKEND = outbox.BACKEND
    settings.EMAIL_FILE_PATH = str(tmp_path)
    message = EmailMultiAlternatives("[SyncConsole] Pax8: sign-in failing", "text", None, ["alerts@acme.example"])
    message.attach_alternative(HTML.format(url=live_server.url), "text/html")
    message.send()
    UserFactory(username="sam", is_staff=True)
    (sent,) = outbox.list_messages()

    def steps(page):
        log_in_to_console(page, live_server.url, "sam")
        page.get_by_role("link", name="Outbox (development)").click()
        page.get_by_role("link", name="[SyncConsole] Pax8: sign-in failing").click()

        frame = page.frame_locator("iframe.sc-outbox-frame")
        expect(frame.locator("h1")).to_have_text("Sign-in failing")
        expect(frame.get_by_role("link", name="Re-authenticate")).to_be_visible()
        assert frame.locator("body").get_attribute("data-ran") is None  # the sandbox kept the script out
        assert page.title().startswith("[SyncConsole] Pax8: sign-in failing")
        links = page.locator("#sc-outbox-links a")
        expect(links).to_have_text([f"{live_server.url}/reauth/abc/"])
        screenshot(page, "admin-outbox.png")
        assert page.url.endswith(f"/admin/outbox/{sent.name}/")

    # No Content-Security-Policy report either: the frame's inline styles are allowed by the page's own
    # policy, and its script is stopped by the sandbox.
    browse(steps, failure_shot="admin-outbox-failure.png")
