"""The daily retention purge (integrations.retention), scheduled by name."""

from django.db import migrations


def schedule_retention(apps, schema_editor):
    from integrations.schedules import ensure_schedules

    ensure_schedules(apps.get_model("django_q", "Schedule"))


def unschedule_retention(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="purge-old-rows").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0013_scheduler_index"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(schedule_retention, unschedule_retention)]
