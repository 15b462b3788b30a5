"""Help requests become conversations: states, an assignee, messages, and the integration they are about.

Existing requests keep their words and move to the new states: open -> new,
in_progress stays, answered -> waiting_on_customer, closed -> resolved. Each
takes the integration of its issue. A request may now have no issue (asked
from the General tab), so going back deletes those: the old schema cannot
hold them.

On PostgreSQL the foreign-key checks of the integration column are made
immediate before it is filled, so that the column can be made NOT NULL in
the same transaction (otherwise: "pending trigger events").
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

FORWARD_STATES = {"open": "new", "answered": "waiting_on_customer", "closed": "resolved"}
BACKWARD_STATES = {"new": "open", "waiting_on_customer": "answered", "resolved": "closed"}


def fill_integration(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    SupportRequest = apps.get_model("issues", "SupportRequest")
    SyncIssue = apps.get_model("issues", "SyncIssue")
    integration_of_issue = SyncIssue.objects.filter(pk=models.OuterRef("issue_id")).values("integration_id")[:1]
    SupportRequest.objects.filter(integration__isnull=True).update(integration=models.Subquery(integration_of_issue))


def rename_states(mapping):
    def run(apps, schema_editor):
        SupportRequest = apps.get_model("issues", "SupportRequest")
        for old, new in mapping.items():
            SupportRequest.objects.filter(state=old).update(state=new)

    return run


def delete_requests_without_issue(apps, schema_editor):
    apps.get_model("issues", "SupportRequest").objects.filter(issue__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0014_retention_schedule"),
        ("issues", "0006_search_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="supportrequest",
            options={"ordering": ["-created_at"], "verbose_name": "help request"},
        ),
        migrations.AddField(
            model_name="supportrequest",
            name="integration",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="support_requests",
                to="integrations.integration",
            ),
        ),
        migrations.RunPython(fill_integration, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="supportrequest",
            name="integration",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="support_requests",
                to="integrations.integration",
            ),
        ),
        migrations.AlterField(
            model_name="supportrequest",
            name="issue",
            field=models.ForeignKey(
                blank=True,
                help_text="Empty when the customer asked from the General tab, about the integration as a whole.",
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="support_requests",
                to="issues.syncissue",
            ),
        ),
        # Going back, the rows the old schema cannot hold go first.
        migrations.RunPython(migrations.RunPython.noop, delete_requests_without_issue),
        migrations.AlterField(
            model_name="supportrequest",
            name="state",
            field=models.CharField(
                choices=[
                    ("new", "New"),
                    ("in_progress", "In progress"),
                    ("waiting_on_customer", "Waiting on customer"),
                    ("resolved", "Resolved"),
                ],
                db_index=True,
                default="new",
                max_length=20,
            ),
        ),
        migrations.RunPython(rename_states(FORWARD_STATES), rename_states(BACKWARD_STATES)),
        migrations.AddField(
            model_name="supportrequest",
            name="assignee",
            field=models.ForeignKey(
                blank=True,
                limit_choices_to={"is_active": True, "is_staff": True},
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="assigned_support_requests",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="supportrequest",
            name="facts",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="What support asks first, as [label, value] pairs: when the problem began, "
                "re-authentication and forced syncs tried, the account mapping.",
            ),
        ),
        migrations.CreateModel(
            name="SupportMessage",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "kind",
                    models.CharField(
                        choices=[("reply", "Reply"), ("note", "Internal note")], default="reply", max_length=10
                    ),
                ),
                ("from_support", models.BooleanField()),
                ("body", models.TextField()),
                ("created_at", models.DateTimeField()),
                ("emailed_at", models.DateTimeField(blank=True, null=True)),
                ("email_error", models.CharField(blank=True, max_length=500)),
                (
                    "author",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "request",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="messages",
                        to="issues.supportrequest",
                    ),
                ),
            ],
            options={
                "ordering": ["created_at", "id"],
                "indexes": [models.Index(fields=["request", "created_at"], name="support_message_thread")],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("kind", "reply"), ("from_support", True), _connector="OR"),
                        name="notes_are_support_only",
                    )
                ],
            },
        ),
    ]
