"""`manage.py connectors [KEY]`: the connectors, with their settings, credentials, defaults and help."""

import textwrap

from django.core.management.base import BaseCommand, CommandError

from integrations.connectors.base import connector_keys, get_connector_class


class Command(BaseCommand):
    help = (
        "List the connectors (built in and from vendor manifests). With a KEY: every setting and "
        "credential of that connector, its type, default and help."
    )

    def add_arguments(self, parser):
        parser.add_argument("key", nargs="?", help="a connector key, e.g. rest or pax8")

    def handle(self, *args, key=None, **options):
        if key is None:
            for name in connector_keys():
                cls = get_connector_class(name)
                origin = "manifest" if getattr(cls, "manifest", None) else "built in"
                self.stdout.write(f"{name:28} {cls.label} ({origin}; items: {cls.item_type})")
            self.stdout.write("\nDetails: manage.py connectors KEY")
            return
        try:
            cls = get_connector_class(key)
        except KeyError as exc:
            raise CommandError(exc.args[0]) from None
        self.describe(cls)

    def describe(self, cls):
        write = self.stdout.write
        write(f"{cls.key}: {cls.label}")
        manifest = getattr(cls, "manifest", None)
        if manifest is not None:
            write(f"  from the manifest {manifest.key}.json ({manifest.vendor_kind}); documentation:")
            for url in manifest.documentation:
                write(f"    {url}")
        if cls.token_lifetime:
            write(f"  Credentials live {cls.token_lifetime.days} days (the expiring-credentials check counts from when they are saved).")
        write("\nSettings (--setting KEY=VALUE):")
        for spec in cls.all_setting_fields():
            self.field(spec)
        auth_settings = {k: v for k, v in ((f.name, f.default) for f in cls.all_setting_fields()) if k.startswith("auth.")}
        write("\nCredentials (--credential KEY=VALUE, stored encrypted):")
        fields = cls.credential_fields_for(auth_settings) if auth_settings else cls.credential_fields
        if not fields:
            write("  none with these settings")
        for spec in fields:
            self.field(spec)
        if "auth.type" in auth_settings:
            write("  (they follow auth.type: none, or api_key; username/password; client_id/client_secret[/refresh_token])")

    def field(self, spec):
        flags = " required" if spec.required else ""
        self.stdout.write(f"  {spec.name} ({spec.type_words()}{flags}) default: {spec.describe_default()}")
        text = spec.label + (f": {spec.help}" if spec.help else "")
        for line in textwrap.wrap(text, 96):
            self.stdout.write(f"      {line}")
