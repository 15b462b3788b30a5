"""Alert emails go out through the urgent cluster: they never wait behind the main cluster's sync backlog.

Real processes: a qcluster started with Q_CLUSTER_NAME=urgent (and no main
cluster at all, the worst backlog there is), the Redis broker, the vendor
simulator, and an SMTP server in this process that the cluster sends to.
Needs PostgreSQL (the cluster shares the test database) and Redis.
"""

import os
import time
from datetime import timedelta

import pytest
import redis
from django.db import connection, transaction
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf

from alerts import delivery, rules
from alerts.models import Alert
from integrations.models import Integration, SyncSession
from integrations.sync.starting import start_sync
from tests.factories import IntegrationFactory

pytest_plugins = ["tests.plugins.qcluster"]

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL (set DATABASE_URL=postgres://...): the qcluster subprocess shares the test database",
    ),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def redis_url():
    """REDIS_URL's database, flushed before and after (each run names a database of its own)."""
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("needs Redis: set REDIS_URL=redis://host:6379/<db>")
    client = redis.from_url(url)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        client.close()
        pytest.skip(f"needs Redis at {url}: {exc}")
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def redis_broker(monkeypatch, redis_url):
    """From now on this process enqueues to Redis instead of running tasks inline."""

    def use():
        monkeypatch.setattr(Conf, "SYNC", False)
        monkeypatch.setattr(Conf, "ORM", None)
        monkeypatch.setattr(Conf, "DJANGO_REDIS", None)
        monkeypatch.setattr(Conf, "REDIS", redis_url)
        assert type(get_broker("urgent")).__name__ == "Redis"

    return use


def wait_until_sent(alert_filter, subject, smtp_server, timeout=60):
    """The message at the SMTP server and its alert marked sent (just after), or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alert = Alert.objects.filter(**alert_filter).first()
        if smtp_server.with_subject(subject) and alert is not None and alert.state == Alert.State.SENT:
            return alert
        time.sleep(0.2)
    pytest.fail(f"no sent alert {alert_filter} with an email '{subject}' within {timeout} s")


def test_a_staff_sync_failing_on_auth_emails_the_tenant_within_a_minute_with_only_the_urgent_cluster_running(
    make_integration, sync, alert_tenant, vendor_simulator, smtp_server, qcluster_factory, redis_url, redis_broker, staff_user
):
    tenant = alert_tenant()
    integration = make_integration("healthy", tenant=tenant, name="Tickets")
    assert sync(integration).state == SyncSession.State.SUCCEEDED  # inline, before any cluster runs

    # The tenant was emailed ten minutes ago.
    other = IntegrationFactory(tenant=tenant, name="Billing", status=Integration.Status.FAILING, consecutive_unsuccessful=10)
    ten_minutes_ago = timezone.now() - timedelta(minutes=10)
    earlier = rules.build(
        other, Alert.Rule.REPEATED_FAILURES, ten_minutes_ago.isoformat(), ten_minutes_ago, recipients=rules.tenant_recipients(tenant)
    )
    earlier.save()
    assert delivery.deliver(earlier.pk, now=ten_minutes_ago) == Alert.State.SENT
    assert len(smtp_server.messages) == 1

    redis_broker()
    qcluster_factory(
        redis_url=redis_url,
        cluster_name="urgent",
        env={
            "VENDOR_SIMULATOR_URL": vendor_simulator.base_url,
            "EMAIL_URL": f"smtp://127.0.0.1:{smtp_server.port}",
            "Q_URGENT_WORKERS": 1,
        },
    )
    vendor_simulator.control(integration.settings["account"], api_key="rotated-key")
    session = start_sync(integration, kind=SyncSession.Kind.QUICK, trigger=SyncSession.Trigger.STAFF, requested_by=staff_user)

    # The urgent cluster runs the sync, reacts to its events, raises the alert and sends it.
    alert = wait_until_sent(
        {"integration": integration, "rule": Alert.Rule.AUTH_FAILING}, "Re-authentication needed: Tickets", smtp_server
    )
    (message,) = smtp_server.with_subject("Re-authentication needed: Tickets")
    session.refresh_from_db()
    assert session.error_code_id == "AUTH_INVALID"
    assert timedelta(0) <= alert.sent_at - session.finished_at < timedelta(minutes=1)
    assert message.rcpt_tos == [tenant.alert_emails]
    assert "/reauth/" in message.text

    # An alert raised outside the urgent cluster (the main cluster's catch-up run of
    # the event consumers, the clock rules; here this process, whose default queue is
    # the main cluster's) is still delivered by the urgent cluster.
    Integration.objects.filter(pk=other.pk).update(status=Integration.Status.CREDENTIALS_INVALID)
    other.refresh_from_db()
    with transaction.atomic():
        (late,) = rules.raise_alerts(
            [rules.build(other, Alert.Rule.CREDENTIALS_INVALID, "streak", timezone.now(), recipients=[tenant.alert_emails])]
        )
    late = wait_until_sent({"pk": late.pk}, "new credentials needed: Billing", smtp_server)
    assert len(smtp_server.with_subject("new credentials needed: Billing")) == 1
    assert late.sent_at - late.created_at < timedelta(minutes=1)
