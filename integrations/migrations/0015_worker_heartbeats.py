"""Worker heartbeats, and the mark of a person's sync sent to the default cluster (the urgent fallback).

Adding a boolean with a constant default is a change of the catalog only on
PostgreSQL 11 and later: the sessions table is not rewritten.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0014_retention_schedule"),
    ]

    operations = [
        migrations.AddField(
            model_name="syncsession",
            name="fell_back",
            field=models.BooleanField(default=False),
        ),
        migrations.CreateModel(
            name="WorkerHeartbeat",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("cluster", models.CharField(max_length=100)),
                ("host", models.CharField(max_length=200)),
                ("pid", models.PositiveIntegerField()),
                ("last_beat_at", models.DateTimeField()),
            ],
            options={
                "indexes": [models.Index(fields=["last_beat_at"], name="heartbeat_last_beat")],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("cluster", "host", "pid"), name="one_heartbeat_per_worker"
                    )
                ],
            },
        ),
    ]
