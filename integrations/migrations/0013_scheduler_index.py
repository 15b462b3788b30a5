"""The scheduler's due query reads this partial index, whatever the planner statistics say.

It holds only the integrations the scheduler may queue (the query's WHERE), so
it stays small however many integrations are paused, switched off or in setup.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0012_integration_counts"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="integration",
            index=models.Index(
                condition=models.Q(
                    ("mapping_complete", True),
                    ("next_sync_at__isnull", False),
                    ("paused", False),
                    models.Q(
                        ("status__in", ["setup", "credentials_invalid", "quality_assurance", "inactive", "deleted"]),
                        _negated=True,
                    ),
                ),
                fields=["next_sync_at"],
                name="integration_due",
            ),
        ),
    ]
