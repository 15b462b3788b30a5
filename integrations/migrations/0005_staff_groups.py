"""The staff groups: Support and Engineering, with the permissions each needs."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEW = [
    ("integrations", "view_tenant"),
    ("integrations", "view_membership"),
    ("integrations", "view_integration"),
    ("integrations", "view_accountmapping"),
    ("integrations", "view_syncsession"),
    ("integrations", "view_syncedrecord"),
    ("integrations", "view_integrationevent"),
    ("integrations", "view_reauthlink"),
    ("integrations", "view_apikey"),
    ("issues", "view_errorcode"),
    ("issues", "view_syncissue"),
    ("issues", "view_supportrequest"),
]
SUPPORT = VIEW + [
    ("integrations", "sync_integration"),
    ("integrations", "send_reauth_link"),
    ("issues", "resolve_syncissue"),
    ("issues", "change_supportrequest"),
]
ENGINEERING = SUPPORT + [
    ("integrations", "manage_quality_assurance"),
    ("integrations", "pause_integration"),
    ("integrations", "deactivate_integration"),
    ("integrations", "delete_restore_integration"),
    ("integrations", "revoke_credentials"),
    ("integrations", "change_integration"),
    ("integrations", "change_accountmapping"),
    ("issues", "change_errorcode"),
]
GROUPS = {"Support": SUPPORT, "Engineering": ENGINEERING}


def create_groups(apps, schema_editor):
    # Permissions are normally created after all migrations; make sure they exist now.
    for label in ("integrations", "issues"):
        app_config = apps.get_app_config(label)
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, perms in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, codename in perms:
            group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0004_quality_assurance_details"),
        ("issues", "0002_seed_error_codes"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
