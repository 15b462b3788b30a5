"""The catalog's advice for a sync whose outcome is unknown gives the runbook's first steps.

SYNC_LEASE_LOST and SYNC_NOT_STARTED told customers "Nothing to do on your
side", while their integration is Unknown and seed 000's first steps apply:
run a sync, re-authenticate a token, check the mapping, wait out a busy
window. Only advice still as shipped is replaced (staff edit the catalog in
the admin; their words stay), and going back restores the shipped words
where these are still the ones stored.
"""

from django.db import migrations

# code: (the advice as shipped in 0002, the advice now)
ADVICE = {
    "SYNC_LEASE_LOST": (
        "A sync stopped without reporting how it ended. Nothing to do on your side: the next "
        "sync runs as scheduled, and whatever was already saved is kept.",
        "A sync stopped without reporting how it ended; whatever it had already saved is kept. "
        "What you can do now: run a sync now, since most of these clear with the next sync that "
        "finishes; if the integration signs in with a token or an API key, re-authenticate it, "
        "since a token the vendor replaced or expired can stop a sync without a clear answer; "
        "check the account mapping (every vendor account mapped or ignored); and if many syncs "
        "run at this hour, let the busy window pass before asking support.",
    ),
    "SYNC_NOT_STARTED": (
        "A sync was queued but never started. Nothing to do on your side: it will be queued again.",
        "A sync was queued but never started, so nothing was read or changed. What you can do "
        "now: run a sync now; if the integration signs in with a token or an API key, "
        "re-authenticate it; check the account mapping (every vendor account mapped or "
        "ignored); and if many syncs run at this hour, wait for the busy window to pass: a "
        "queued sync starts once the syncs in front of it are done.",
    ),
}


def _replace(apps, old_index, new_index):
    ErrorCode = apps.get_model("issues", "ErrorCode")
    for code, texts in ADVICE.items():
        ErrorCode.objects.filter(code=code, customer_advice=texts[old_index]).update(
            customer_advice=texts[new_index]
        )


def seed(apps, schema_editor):
    _replace(apps, 0, 1)


def unseed(apps, schema_editor):
    _replace(apps, 1, 0)


class Migration(migrations.Migration):
    dependencies = [("issues", "0007_support_conversations")]

    operations = [migrations.RunPython(seed, unseed)]
