"""No table keeps a live re-authentication token once alert emails are sent.

The link is made when the email goes out; the alert keeps the link's id and
the link its token's hash. The test searches every text column of every
table for the tokens found in the emails.
"""

import re

import pytest
from django.db import connection

from alerts.models import Alert
from integrations.models import SyncSession

live = pytest.mark.django_db(transaction=True)


@live
def test_no_table_holds_a_live_reauth_token_after_alerts_are_sent(
    make_integration, sync, alert_tenant, vendor_simulator, smtp_server, error_catalog
):
    """Every text column of every table is searched for the tokens of the links in the emails sent."""
    integration = make_integration("healthy", tenant=alert_tenant())
    sync(integration)
    vendor_simulator.control(integration.settings["account"], api_key="rotated-key")
    sync(integration, kind=SyncSession.Kind.QUICK)
    assert Alert.objects.filter(integration=integration, rule=Alert.Rule.AUTH_FAILING).exists()
    tokens = re.findall(r"/reauth/([A-Za-z0-9_-]{20,})/", "\n".join(m.text for m in smtp_server.messages))
    assert tokens, "the alert email carries a link"

    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            description = connection.introspection.get_table_description(cursor, table)
            columns = [c.name for c in description]
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                for column, value in zip(columns, row):
                    text = value if isinstance(value, str) else (str(value) if isinstance(value, (dict, list)) else "")
                    if any(token in text for token in tokens):
                        found.append(f"{table}.{column}")
    assert found == []
