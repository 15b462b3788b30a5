"""The error-code catalog as shipped. Staff may edit it in the admin later;
this migration only creates codes that are missing, never overwrites edits."""

from django.db import migrations

CATALOG = [
    # code, title, category, severity, retryable, customer advice, support notes
    (
        "AUTH_EXPIRED",
        "Credentials expired",
        "auth",
        "error",
        False,
        "The vendor says your saved credentials have expired. Re-authenticate the integration "
        "with a fresh API key or sign-in; syncing resumes as soon as the new credentials are saved.",
        "Check credentials age against the connector's token lifetime (some vendors force "
        "re-authentication every 90 days). Send a re-authentication link to a tenant admin.",
    ),
    (
        "AUTH_INVALID",
        "Credentials rejected",
        "auth",
        "error",
        False,
        "The vendor rejected the saved credentials: the key may have been rotated, deleted or "
        "mistyped. Re-authenticate with a valid key from your vendor account.",
        "Ask whether someone rotated the key at the vendor. Credentials of a shared mailbox "
        "(admin@, billing@, info@) are often reset by someone else.",
    ),
    (
        "AUTH_FORBIDDEN",
        "Permission missing at the vendor",
        "auth",
        "error",
        False,
        "The vendor accepted the credentials but the user behind them lacks a permission the "
        "sync needs. Grant the API user read access to the synced records at the vendor, then "
        "sync again.",
        "The vendor's message names the missing permission. Not fixed by re-authenticating "
        "with the same user.",
    ),
    (
        "RATE_LIMITED",
        "Vendor rate limit reached",
        "vendor",
        "warning",
        True,
        "The vendor asked us to slow down. Nothing to do: the sync waits as the vendor asks and "
        "retries on its own.",
        "Persistent rate limiting means another tool shares the vendor's API quota; check the "
        "session's rate-limited waits.",
    ),
    (
        "VENDOR_UNAVAILABLE",
        "Vendor unavailable",
        "vendor",
        "error",
        True,
        "The vendor's service did not answer or answered with a server error. Nothing to do on "
        "your side: we retry automatically with back-off.",
        "Check whether other integrations of the same connector failed in the last hour: a "
        "vendor-wide outage shows up across tenants.",
    ),
    (
        "VENDOR_TIMEOUT",
        "Vendor too slow to answer",
        "vendor",
        "error",
        True,
        "The vendor took too long to answer. We retry automatically; if it keeps happening, "
        "the vendor may be degraded.",
        "Compare the session's duration with earlier ones; a slow vendor often precedes an outage.",
    ),
    (
        "VENDOR_BAD_RESPONSE",
        "Vendor answered with unreadable data",
        "vendor",
        "error",
        True,
        "The vendor answered with data we could not read. We retry automatically; contact "
        "support if it persists.",
        "The session log holds the page and the parse error. Often a vendor API change or a "
        "proxy's error page.",
    ),
    (
        "MAPPING_INCOMPLETE",
        "Account mapping incomplete",
        "mapping",
        "warning",
        False,
        "Some of your vendor accounts are not mapped yet. Open the integration's account "
        "mapping and map or ignore each account; the first sync starts when it is complete.",
        "The integration stays in setup until every discovered account is mapped or ignored.",
    ),
    (
        "ITEM_UNMAPPED",
        "Item belongs to an unmapped account",
        "mapping",
        "warning",
        False,
        "This item belongs to a vendor account that is not mapped. Map or ignore the account in "
        "the integration's account mapping; the item syncs on the next run.",
        "A new account appeared at the vendor after setup.",
    ),
    (
        "ITEM_MISSING_FIELD",
        "Item is missing a required field",
        "data",
        "warning",
        False,
        "This record is missing a field we need (for example a name). Fill it in at the vendor; "
        "the next sync picks it up and closes this issue.",
        "The issue's details name the field.",
    ),
    (
        "ITEM_INVALID_VALUE",
        "Item has an invalid value",
        "data",
        "warning",
        False,
        "A field of this record holds a value we cannot accept (for example a malformed email "
        "address). Correct it at the vendor; the next sync closes this issue.",
        "The issue's details name the field and the value.",
    ),
    (
        "ITEM_DUPLICATE",
        "Duplicate item",
        "data",
        "warning",
        False,
        "The vendor sent this record more than once (or two records share a unique value). "
        "Remove or merge the duplicate at the vendor.",
        "Only the first copy is synced.",
    ),
    (
        "SYNC_LEASE_LOST",
        "Sync stopped without finishing",
        "engine",
        "error",
        True,
        "A sync stopped without reporting how it ended. Nothing to do on your side: the next "
        "sync runs as scheduled, and whatever was already saved is kept.",
        "The worker died or lost its database connection mid-run (deploy, out of memory, "
        "host restart). Check the qcluster logs around the session's last heartbeat.",
    ),
    (
        "SYNC_TIMEOUT",
        "Sync took too long",
        "engine",
        "error",
        True,
        "A sync ran longer than allowed and was stopped. It resumes on the next run.",
        "Compare items seen with the vendor's total; very large accounts may need a longer timeout.",
    ),
    (
        "SYNC_NOT_STARTED",
        "Sync never started",
        "engine",
        "error",
        True,
        "A sync was queued but never started. Nothing to do on your side: it will be queued again.",
        "No qcluster picked the task up: check that the workers (and the urgent cluster) run.",
    ),
    (
        "INTERNAL_ERROR",
        "Internal error",
        "engine",
        "critical",
        True,
        "Something went wrong on our side. Our engineers have been told; no action is needed "
        "from you.",
        "A bug in SyncConsole: the session log holds the exception. Escalate to engineering.",
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


class Migration(migrations.Migration):
    dependencies = [("issues", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
