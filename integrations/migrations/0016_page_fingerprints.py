import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0015_worker_heartbeats"),
    ]

    operations = [
        migrations.CreateModel(
            name="SeenRange",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("session_id", models.BigIntegerField()),
                ("item_type", models.CharField(max_length=50)),
                ("low", models.CharField(max_length=200)),
                ("high", models.CharField(max_length=200)),
            ],
            options={
                "indexes": [models.Index(fields=["session_id", "item_type", "low"], name="seen_range_session_low")],
            },
        ),
        migrations.CreateModel(
            name="PageFingerprint",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("item_type", models.CharField(max_length=50)),
                ("page_key", models.CharField(help_text="SHA-256 of the page's request.", max_length=64)),
                ("digest", models.CharField(help_text="SHA-256 of the page's rows.", max_length=64)),
                (
                    "generation",
                    models.CharField(help_text="SHA-256 of the settings and mapping it was read with.", max_length=64),
                ),
                ("low", models.CharField(max_length=200)),
                ("high", models.CharField(max_length=200)),
                ("item_count", models.PositiveIntegerField()),
                (
                    "integration",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="page_fingerprints",
                        to="integrations.integration",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("integration", "item_type", "page_key"), name="one_fingerprint_per_page")
                ],
            },
        ),
    ]
