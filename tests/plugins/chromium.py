"""Pytest plugin: Debian's Chromium driven by Playwright, for the tests marked ``browser``.

A test marked ``browser`` skips, naming what is missing, where Playwright
(requirements-dev.txt) or Chromium (/usr/bin/chromium, Debian package
``chromium``) is not installed; CI passes ``--require=browser``, which turns
that skip into a failure (tests/conftest.py). The skip comes from this
plugin's setup hook rather than from an import, so that it is a test's skip
that ``--require`` can see, not a module left uncollected.

``launch_chromium()`` starts the browser for a ``with`` block. Playwright's
sync API runs an event loop in this thread while it is open, and Django
refuses ORM calls in a thread where one runs: a test reads and writes the
database before the block and after it (the live server answers from a
thread of its own).

``new_page`` opens a page in a fresh context (no cookies) at 1280 x 800 that
adds every Content-Security-Policy report of the console to a list the test
asserts empty; ``browse`` runs a test's steps in one such page and fails the
test on any report. ``log_in_to_console`` and ``log_in_to_portal`` sign in
through the login forms. ``screenshot`` keeps a full-page screenshot in
test-artifacts/ (ignored by git).
"""

import os
from contextlib import contextmanager
from pathlib import Path

import pytest

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # the tests marked browser skip, see missing_reason()
    expect = sync_playwright = None

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 800}
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "password"  # what tests.factories.UserFactory sets unless told


def missing_reason():
    """Why the browser tests cannot run here, or None."""
    if sync_playwright is None:
        return "playwright is not installed (requirements-dev.txt)"
    if not os.path.exists(CHROMIUM):
        return f"Chromium is not installed at {CHROMIUM} (Debian package 'chromium')"
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    if item.get_closest_marker("browser"):
        reason = missing_reason()
        if reason:
            pytest.skip(reason)


@contextmanager
def launch_chromium():
    """Chromium, launched through Playwright, for the block; closed when it ends."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser, csp_violations, *, viewport=VIEWPORT, timeout=15_000, **context_options):
    """A page in a fresh browser context; the CSP reports of its console go to `csp_violations`.

    Any report means a page needs something the policy refuses (an inline
    script, a style, a source not allowed), so the tests assert the list empty.
    """

    def keep_csp_report(message):
        if "Content Security Policy" in message.text:
            csp_violations.append(message.text)

    context = browser.new_context(viewport=viewport, **context_options)
    context.on("console", keep_csp_report)
    page = context.new_page()
    page.set_default_timeout(timeout)
    return page


def browse(steps, *, failure_shot, **page_options):
    """Run `steps(page)` in a fresh Chromium page; no Content-Security-Policy report allowed.

    When a step fails, the page is kept as test-artifacts/<failure_shot>.
    """
    csp_violations = []
    with launch_chromium() as browser:
        page = new_page(browser, csp_violations, **page_options)
        try:
            steps(page)
        except Exception:
            screenshot(page, failure_shot)
            raise
    # Every page of the flow works under the Content-Security-Policy: no inline script refused.
    assert csp_violations == [], csp_violations


def screenshot(page, name):
    """The whole page as test-artifacts/<name>; its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def log_in_to_console(page, base_url, username, password=PASSWORD):
    """Sign in through the console's login form; the dashboard shows."""
    page.goto(f"{base_url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    expect(page.locator("#sc-dashboard")).to_be_visible()


def log_in_to_portal(page, base_url, username, password=PASSWORD):
    """Sign in through the portal's login form; the integrations list shows."""
    page.goto(f"{base_url}/portal/")
    expect(page.locator("h1")).to_have_text("Log in")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("main h1")).to_have_text("Integrations")
