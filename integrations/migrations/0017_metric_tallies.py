"""The counters behind /metrics (integrations/tallies.py): one row per series."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0016_page_fingerprints"),
    ]

    operations = [
        migrations.CreateModel(
            name="MetricTally",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("metric", models.CharField(max_length=100)),
                (
                    "labels",
                    models.CharField(
                        help_text="The label values as canonical JSON (sorted keys).", max_length=300
                    ),
                ),
                (
                    "count",
                    models.BigIntegerField(
                        default=0, help_text="A counter's value; a histogram's number of observations."
                    ),
                ),
                ("total", models.FloatField(default=0, help_text="A histogram's sum of observed values.")),
                *[(f"bucket_{i:02d}", models.BigIntegerField(default=0)) for i in range(12)],
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("metric", "labels"), name="one_tally_per_series")
                ],
            },
        ),
    ]
