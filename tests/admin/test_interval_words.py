"""The sync interval on the integration's page reads "every 1 hour", never "1:00:00" (integrations/admin/interval.py).

Support only reads the page: the interval is words. Engineering edits it:
the box still takes Django's duration ("00:30:00"), with the saved value's
words beside it and the usual values in the help.
"""

import re
from datetime import timedelta
from html import unescape

import pytest
from django.urls import reverse

from integrations.admin.interval import interval_words
from tests.admin.test_settings_form import post_data
from tests.factories import IntegrationFactory

pytestmark = pytest.mark.django_db


def page_url(integration):
    return reverse("admin:integrations_integration_change", args=[integration.pk])


def field_row(html, name):
    match = re.search(rf'<div class="form-row[^"]*field-{name}[^"]*">(.*?)</div>\s*</div>\s*</div>', html, re.S)
    assert match, name
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split())


@pytest.mark.parametrize(
    ("interval", "words"),
    [
        (timedelta(hours=1), "every 1 hour"),
        (timedelta(minutes=15), "every 15 minutes"),
        (timedelta(days=1, hours=6), "every 1 day 6 hours"),
        (timedelta(hours=1, minutes=30), "every 1 hour 30 minutes"),
        (timedelta(seconds=30), "every 30 seconds"),
        ("01:00:00", "every 1 hour"),
        ("not a duration", ""),
        (None, ""),
    ],
)
def test_the_interval_in_words(interval, words):
    assert interval_words(interval) == words


@pytest.mark.parametrize(("interval", "words"), [(timedelta(hours=1), "every 1 hour"), (timedelta(minutes=15), "every 15 minutes")])
def test_support_reads_the_interval_in_words(support_client, error_catalog, interval, words):
    integration = IntegrationFactory(sync_interval=interval)

    html = support_client.get(page_url(integration)).content.decode()

    row = field_row(html, "sync_every")
    assert row == f"Sync interval: {words}"
    assert "1:00:00" not in html and "0:15:00" not in html


def test_engineering_edits_the_interval_with_its_words_beside_it(staff_client, superuser, error_catalog):
    integration = IntegrationFactory(sync_interval=timedelta(hours=1), settings={"account": "healthy"})
    client = staff_client(superuser)
    response = client.get(page_url(integration))
    html = response.content.decode()

    assert 'name="sync_interval"' in html
    row = field_row(html, "sync_interval")
    assert "every 1 hour" in row
    assert "00:15:00 is every 15 minutes, 01:00:00 every hour" in row

    saved = client.post(page_url(integration), post_data(response, sync_interval="00:30:00"))

    assert saved.status_code == 302, saved.context["adminform"].form.errors
    integration.refresh_from_db()
    assert integration.sync_interval == timedelta(minutes=30)
    assert "every 30 minutes" in field_row(client.get(page_url(integration)).content.decode(), "sync_interval")
