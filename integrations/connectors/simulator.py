"""`simulator`: the `rest` connector preset for the built-in vendor simulator.

Settings: `base_url` (default VENDOR_SIMULATOR_URL) and `account` (the
simulator scenario, e.g. `healthy`, `warnings`, `big-20000`, optionally with
a `.label`); optional `auth` = `oauth2` to use client credentials instead of
the API key header. Credential: `api_key` (the simulator accepts `good-key`
unless the scenario says otherwise).
"""

from datetime import timedelta

from django.conf import settings as django_settings

from integrations.connectors.base import Field, register
from integrations.connectors.rest import RestConnector


@register
class SimulatorConnector(RestConnector):
    key = "simulator"
    label = "Vendor simulator"
    token_lifetime = timedelta(days=90)
    setting_fields = (Field("account", "Vendor account (scenario)"), Field("base_url", "Simulator URL", required=False))
    credential_fields = (Field("api_key", "API key", secret=True),)

    @classmethod
    def validate_settings(cls, settings):
        problems = [f"Setting {f.name!r} is required." for f in cls.setting_fields if f.required and not settings.get(f.name)]
        if settings.get("auth", "api_key") not in ("api_key", "oauth2"):
            problems.append("Setting 'auth' must be 'api_key' (the default) or 'oauth2'.")
        rest_settings = {k: v for k, v in settings.items() if k != "auth"}
        return problems or super().validate_settings({**rest_settings, "base_url": cls.base_url_for(settings)})

    @classmethod
    def validate_credentials_for(cls, settings, credentials):
        return cls.validate_credentials(credentials)

    @staticmethod
    def base_url_for(settings):
        root = (settings.get("base_url") or django_settings.VENDOR_SIMULATOR_URL).rstrip("/")
        return f"{root}/v1/{settings.get('account', '')}"

    def preset(self):
        preset = {
            "base_url": self.base_url_for(self.settings),
            "page_size": self.settings.get("page_size", 1000),
        }
        if self.settings.get("auth") == "oauth2":
            root = (self.settings.get("base_url") or django_settings.VENDOR_SIMULATOR_URL).rstrip("/")
            preset.update(auth="oauth2_client_credentials", token_url=f"{root}/oauth/token")
            self.credentials = {
                "client_id": self.settings.get("account", ""),
                "client_secret": self.credentials.get("api_key", ""),
            }
        else:
            preset["auth"] = "api_key_header"
        return preset
