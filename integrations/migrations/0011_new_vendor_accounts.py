"""The tenant's choice for vendor accounts found after setup; settings stored typed.

Settings used to be stored as typed on the command line: "false" for a
boolean (which read as on) and "50" for a number. They are typed now, and the
`rest` connector's settings have dotted names by concern with empty item
rules by default: existing `rest` integrations get their old behaviour
written out under the new names, the old defaults included.
"""

from django.db import migrations, models

TRUE = {"true", "1", "yes", "on"}
FALSE = {"false", "0", "no", "off", ""}

# old rest name -> (new name, the old default)
REST_RENAMES = {
    "api_key_header": ("auth.header", "X-API-Key"),
    "token_url": ("auth.token_url", "/oauth/token"),
    "check_endpoint": ("check.endpoint", "/me"),
    "accounts_endpoint": ("accounts.endpoint", "/accounts"),
    "accounts_key": ("accounts.path", "accounts"),
    "items_endpoint": ("items.endpoint", "/items"),
    "items_key": ("items.path", "items"),
    "pagination": ("pagination.type", "page"),
    "page_param": ("pagination.page_param", "page"),
    "page_size_param": ("pagination.size_param", "page_size"),
    "page_size": ("pagination.size", 500),
    "cursor_param": ("pagination.cursor_param", "cursor"),
    "next_cursor_key": ("pagination.cursor_path", "next_cursor"),
    "next_page_key": ("pagination.next_page_path", "next_page"),
    "total_key": ("pagination.total_path", "total"),
    "updated_since_param": ("incremental.param", "updated_since"),
    "server_time_key": ("incremental.cursor_path", "server_time"),
    "id_field": ("items.id_field", "id"),
    "label_field": ("items.label_field", "name"),
    "account_field": ("items.account_field", "account_id"),
    "url_field": ("items.url_field", "url"),
    "required_fields": ("rules.required_fields", ["name", "email"]),
    "email_fields": ("rules.email_fields", ["email"]),
    "non_negative_fields": ("rules.non_negative_fields", ["quantity"]),
    "expired_error_values": ("auth.expired_errors", ["token_expired", "expired_token"]),
}


def boolean(value):
    if isinstance(value, str) and value.strip().lower() in TRUE | FALSE:
        return value.strip().lower() in TRUE
    return value


def whole(value):
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return value


def as_list(value):
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def typed_rest(old):
    if any("." in key for key in old):
        return old  # already in the new form
    new = {"base_url": old.get("base_url", ""), "auth.type": old.get("auth", "api_key_header")}
    for name, (target, default) in REST_RENAMES.items():
        new[target] = old.get(name, default)
    new["incremental.type"] = "cursor" if new["incremental.param"] else "none"
    new["pagination.size"] = whole(new["pagination.size"])
    for name in ("rules.required_fields", "rules.email_fields", "rules.non_negative_fields", "auth.expired_errors"):
        new[name] = as_list(new[name])
    for name in ("manual_mapping", "mark_source_items", "ca_certificate"):
        if name in old:
            new[name] = old[name]
    return new


def type_settings(apps, schema_editor):
    Integration = apps.get_model("integrations", "Integration")
    for integration in Integration.objects.exclude(settings={}).only("pk", "connector", "settings").iterator():
        settings = dict(integration.settings or {})
        if integration.connector == "rest":
            settings = typed_rest(settings)
        for name in ("manual_mapping", "mark_source_items"):
            if name in settings:
                settings[name] = boolean(settings[name])
        if "page_size" in settings:
            settings["page_size"] = whole(settings["page_size"])
        if settings != integration.settings:
            Integration.objects.filter(pk=integration.pk).update(settings=settings)


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0010_connection_tested"),
    ]

    operations = [
        migrations.AddField(
            model_name="tenant",
            name="new_vendor_accounts",
            field=models.CharField(
                choices=[("map", "Map them automatically"), ("ask", "Ask us to map them")],
                default="map",
                help_text="What happens when a full sync finds a vendor account (an address book, a customer) "
                "that appeared after setup. Integrations mapped by hand always ask.",
                max_length=10,
            ),
        ),
        migrations.RunPython(type_settings, migrations.RunPython.noop),
    ]
