"""`simulator`: the `rest` connector set up for the built-in vendor simulator.

Settings: `account` (the simulator scenario, e.g. `healthy`, `warnings`,
`big-20000`, optionally with a `.label`), `base_url` (default
VENDOR_SIMULATOR_URL), `auth` (`api_key`, or `oauth2` for client
credentials), `page_size`. Credential: `api_key` (the simulator accepts
`good-key` unless the scenario says otherwise).

The simulator's item rules (name and email required, email well formed,
quantity not negative) are this preset's, not the `rest` connector's.
"""

from datetime import timedelta

from django.conf import settings as django_settings

from integrations.connectors.base import register
from integrations.connectors.fields import Field, Kind
from integrations.connectors.rest import RestConnector
from integrations.connectors.rest.options import REST_FIELDS

SHAPE = {
    "auth.header": "X-API-Key",
    "check.endpoint": "/me",
    "accounts.endpoint": "/accounts",
    "accounts.path": "accounts",
    "items.endpoint": "/items",
    "items.path": "items",
    "items.account_field": "account_id",
    "items.url_field": "url",
    "pagination.type": "page",
    "pagination.page_param": "page",
    "pagination.size_param": "page_size",
    "pagination.next_page_path": "next_page",
    "pagination.total_path": "total",
    "incremental.type": "cursor",
    "incremental.param": "updated_since",
    "incremental.cursor_path": "server_time",
    "rules.required_fields": ["name", "email"],
    "rules.email_fields": ["email"],
    "rules.non_negative_fields": ["quantity"],
}


@register
class SimulatorConnector(RestConnector):
    key = "simulator"
    label = "Vendor simulator"
    token_lifetime = timedelta(days=90)
    setting_fields = (
        Field("account", "Vendor account (scenario)", required=True, help="A simulator scenario, e.g. healthy or warnings.label."),
        Field("base_url", "Simulator URL", Kind.URL, help="Empty: VENDOR_SIMULATOR_URL."),
        Field("auth", "Authentication", Kind.CHOICE, default="api_key", choices=("api_key", "oauth2"), help="oauth2: client credentials with the account as client id."),
        Field("page_size", "Page size", Kind.INTEGER, default=1000, minimum=1, maximum=5000),
    )
    credential_fields = (Field("api_key", "API key", Kind.SECRET, required=True, help="good-key, unless the scenario says otherwise."),)

    @classmethod
    def credential_fields_for(cls, settings):
        return cls.credential_fields

    @classmethod
    def validate_settings(cls, settings):
        return super(RestConnector, cls).validate_settings(settings)

    @staticmethod
    def root_of(settings):
        return (settings.get("base_url") or django_settings.VENDOR_SIMULATOR_URL).rstrip("/")

    def configuration(self):
        own = {f.name: f.default for f in self.all_setting_fields()} | self.settings
        conf = {f.name: f.default for f in REST_FIELDS} | SHAPE
        root = self.root_of(own)
        conf.update(base_url=f"{root}/v1/{own['account']}", **{"pagination.size": own["page_size"]})
        if own["auth"] == "oauth2":
            conf.update({"auth.type": "oauth2_client_credentials", "auth.token_url": f"{root}/oauth/token"})
            self.credentials = {"client_id": own["account"], "client_secret": self.credentials.get("api_key", "")}
        else:
            conf["auth.type"] = "api_key_header"
        conf["manual_mapping"] = own["manual_mapping"]
        return conf
