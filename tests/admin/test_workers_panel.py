"""The dashboard's workers panel: admin_site.worker_liveness and templates/admin/dashboard/_workers.html."""

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.sync import heartbeats

FALLBACK_NOTE = 'id="sc-urgent-fallback"'


def panel(client):
    response = client.get("/admin/")
    assert response.status_code == 200
    html = response.content.decode()
    start = html.index('id="sc-workers"')
    return html[start : html.index("</div>", start)], response.context["dashboard"]["workers"]


def row(html, cluster):
    start = html.index(f'id="sc-cluster-{cluster}"')
    return html[start : html.index("</tr>", start)]


@pytest.mark.django_db
def test_no_urgent_worker_is_said_in_red_with_the_fallback(admin_client, settings):
    settings.URGENT_FALLBACK_SECONDS = 60
    now = timezone.now()
    heartbeats.beat("syncconsole", "worker-host", 1, now)
    heartbeats.beat("syncconsole", "worker-host", 2, now)
    heartbeats.beat("urgent", "worker-host", 3, now - timedelta(minutes=5))

    html, workers = panel(admin_client)
    assert workers["falls_back"] is True
    assert FALLBACK_NOTE in html
    assert "people's syncs go to the syncconsole cluster" in html
    assert "Q_CLUSTER_NAME=urgent python manage.py qcluster" in html
    assert "color: #b91c1c" in row(html, "urgent") and "none alive" in row(html, "urgent")
    assert "(5 minutes ago)" in row(html, "urgent")  # the project's words, not timesince's "5\xa0minutes ago"
    assert "color" not in row(html, "syncconsole") and "<td>2</td>" in row(html, "syncconsole")


@pytest.mark.django_db
def test_live_clusters_show_their_workers_and_no_warning(admin_client):
    now = timezone.now()
    heartbeats.beat("syncconsole", "worker-host", 1, now)
    heartbeats.beat("urgent", "worker-host", 3, now)

    html, workers = panel(admin_client)
    assert workers["falls_back"] is False
    assert FALLBACK_NOTE not in html
    assert "color" not in html
    assert "<td>1</td>" in row(html, "urgent")


@pytest.mark.django_db
def test_a_dead_urgent_cluster_is_red_before_the_fallback_starts(admin_client, settings):
    settings.WORKER_DEAD_AFTER_SECONDS = 30
    settings.URGENT_FALLBACK_SECONDS = 60
    now = timezone.now()
    heartbeats.beat("syncconsole", "worker-host", 1, now)
    heartbeats.beat("urgent", "worker-host", 3, now - timedelta(seconds=45))

    html, _ = panel(admin_client)
    assert FALLBACK_NOTE not in html
    assert "none alive" in row(html, "urgent")


@pytest.mark.django_db
def test_no_heartbeat_at_all(admin_client):
    html, workers = panel(admin_client)
    assert FALLBACK_NOTE in html
    assert "none in the last day" in row(html, "syncconsole")
    assert "none in the last day" in row(html, "urgent")
