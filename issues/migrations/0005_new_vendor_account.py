from django.db import migrations

CATALOG = [
    (
        "NEW_VENDOR_ACCOUNT",
        "New vendor account to map",
        "mapping",
        "warning",
        False,
        "A full sync found a new account at the vendor (for example a new address book or a new "
        "customer) that is not mapped yet. Open the integration's account mapping and map it or ignore "
        "it; its items wait until then. To have new accounts mapped automatically, choose that on the "
        "mapping page.",
        "Raised once per new account by full syncs when the tenant asked to map new accounts itself, "
        "or when the integration is mapped by hand. Resolved by the next sync after the account is "
        "mapped or ignored. Items of the account are held: neither stored nor an issue each.",
    ),
]


def seed(apps, schema_editor):
    ErrorCode = apps.get_model("issues", "ErrorCode")
    for code, title, category, severity, retryable, advice, notes in CATALOG:
        ErrorCode.objects.get_or_create(
            code=code,
            defaults={
                "title": title,
                "category": category,
                "default_severity": severity,
                "retryable": retryable,
                "customer_advice": advice,
                "support_notes": notes,
            },
        )


def unseed(apps, schema_editor):
    apps.get_model("issues", "ErrorCode").objects.filter(code__in=[row[0] for row in CATALOG]).delete()


class Migration(migrations.Migration):
    dependencies = [("issues", "0004_vendor_tls_invalid")]

    operations = [migrations.RunPython(seed, unseed)]
