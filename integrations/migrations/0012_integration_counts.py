"""Integrations keep their open-issue count instead of every list counting it per row.

The column is added with its index, then filled from the issues in batches of
integrations, each batch one UPDATE in its own transaction (the migration is
not atomic, so a big table is not locked for the whole fill). Writers running
the previous release while this runs do not move the count: the hourly
reconciliation (`manage.py reconcile_counters`, scheduled here) repairs what
they leave behind.
"""

from django.db import migrations, models, transaction
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce

BATCH = 1000


def fill_counts(apps, schema_editor):
    Integration = apps.get_model("integrations", "Integration")
    SyncIssue = apps.get_model("issues", "SyncIssue")
    open_issues = (
        SyncIssue.objects.filter(integration=OuterRef("pk"), state="open")
        .order_by()
        .values("integration")
        .annotate(n=Count("pk"))
        .values("n")
    )
    last = 0
    while True:
        batch = Integration.objects.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)
        pks = list(batch[:BATCH])
        if not pks:
            return
        with transaction.atomic(using=schema_editor.connection.alias):
            Integration.objects.filter(pk__gte=pks[0], pk__lte=pks[-1]).update(
                open_issue_count=Coalesce(Subquery(open_issues[:1]), 0)
            )
        last = pks[-1]


def schedule_reconciliation(apps, schema_editor):
    from integrations.schedules import ensure_schedules

    ensure_schedules(apps.get_model("django_q", "Schedule"))


def unschedule_reconciliation(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="reconcile-counters").delete()


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("integrations", "0011_new_vendor_accounts"),
        ("issues", "0005_new_vendor_account"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [
        migrations.AddField(
            model_name="integration",
            name="open_issue_count",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.AddIndex(
            model_name="integration",
            index=models.Index(fields=["open_issue_count", "id"], name="integration_open_issues"),
        ),
        migrations.RunPython(fill_counts, migrations.RunPython.noop, atomic=False),
        migrations.RunPython(schedule_reconciliation, unschedule_reconciliation),
    ]
