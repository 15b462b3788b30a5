from django.db import migrations

CATALOG = [
    (
        "VENDOR_TLS_INVALID",
        "Vendor's TLS certificate not trusted",
        "configuration",
        "error",
        False,
        "We could not verify the security certificate of the vendor's server, so we sent nothing to it. "
        "If the server uses its own certificate authority, add that authority's certificate (PEM, from "
        "-----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----) to the integration's settings as "
        "ca_certificate. If the certificate has expired or names another host, the vendor must fix it, "
        "or the server address in the settings must be the one the certificate was issued for.",
        "The message says what failed: self-signed, an unknown issuer, expired, or another host name. "
        "Verification is never switched off; ca_certificate is trusted besides the usual CAs, for that "
        "integration only. A ca_certificate that does not parse fails with this code too.",
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
    dependencies = [("issues", "0003_destination_refused")]

    operations = [migrations.RunPython(seed, unseed)]
