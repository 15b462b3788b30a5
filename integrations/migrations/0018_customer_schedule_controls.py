"""Customers' schedule controls and the staff's view as the customer sees it.

Per tenant, the sync intervals its admins may choose in the portal (15
minutes to 24 hours unless staff say otherwise; the shortest at least a
minute and no longer than the longest). Per integration, whether a tenant
admin paused it (and so may resume it). Two timeline kinds: an interval
changed, and staff viewing the integration as its customer sees it.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0017_metric_tallies"),
    ]

    operations = [
        migrations.AddField(
            model_name="integration",
            name="paused_by_customer",
            field=models.BooleanField(default=False, editable=False),
        ),
        migrations.AddField(
            model_name="tenant",
            name="min_sync_interval_minutes",
            field=models.PositiveIntegerField(
                default=15, help_text="The shortest sync interval the tenant's admins may choose, in minutes."
            ),
        ),
        migrations.AddField(
            model_name="tenant",
            name="max_sync_interval_minutes",
            field=models.PositiveIntegerField(
                default=1440, help_text="The longest sync interval the tenant's admins may choose, in minutes."
            ),
        ),
        migrations.AlterField(
            model_name="integrationevent",
            name="kind",
            field=models.CharField(
                choices=[
                    ("created", "Created"),
                    ("status_changed", "Status changed"),
                    ("sync_requested", "Sync requested"),
                    ("link_sent", "Re-authentication link sent"),
                    ("link_used", "Re-authentication link used"),
                    ("credentials_updated", "Credentials updated"),
                    ("credentials_revoked", "Credentials revoked"),
                    ("qa_entered", "Moved to quality assurance"),
                    ("qa_released", "Released from quality assurance"),
                    ("paused", "Paused"),
                    ("resumed", "Resumed"),
                    ("deactivated", "Deactivated"),
                    ("reactivated", "Reactivated"),
                    ("deleted", "Deleted"),
                    ("restored", "Restored"),
                    ("mapping_changed", "Account mapping changed"),
                    ("alert_sent", "Alert sent"),
                    ("session_finished", "Sync finished"),
                    ("connection_tested", "Connection tested"),
                    ("interval_changed", "Sync interval changed"),
                    ("viewed_as_customer", "Viewed as the customer sees it"),
                ],
                max_length=30,
            ),
        ),
        migrations.AddConstraint(
            model_name="tenant",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("min_sync_interval_minutes__gte", 1),
                    ("min_sync_interval_minutes__lte", models.F("max_sync_interval_minutes")),
                ),
                name="tenant_sync_interval_bounds",
                violation_error_message="The shortest sync interval must be at least 1 minute and "
                "no longer than the longest.",
            ),
        ),
    ]
