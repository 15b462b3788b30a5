from django.db import migrations


def create_schedules(apps, schema_editor):
    from integrations.schedules import ensure_schedules

    ensure_schedules(apps.get_model("django_q", "Schedule"))


def remove_schedules(apps, schema_editor):
    from integrations.schedules import schedule_specs

    names = [spec["name"] for spec in schedule_specs()]
    apps.get_model("django_q", "Schedule").objects.filter(name__in=names).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0002_initial"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(create_schedules, remove_schedules)]
