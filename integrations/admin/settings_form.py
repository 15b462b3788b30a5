"""The integration form's connector settings: one typed form field per setting, with its help.

An empty field means "the connector's default" and is not stored, so an
integration keeps following a manifest or a connector whose default
changes. What a person types is read by the same `Field.parse` as
`add_integration --setting`, and the whole set is checked by the
connector's `clean_settings`, so the admin cannot store what the command
would refuse.
"""

import json

from django import forms

from integrations.connectors.base import get_connector_class
from integrations.connectors.fields import FieldError, Kind

PREFIX = "setting__"


def form_field_name(spec):
    return PREFIX + spec.name.replace(".", "__")


def _shown(spec, value):
    if value is None:
        return ""
    if spec.kind == Kind.BOOLEAN:
        return "true" if value else "false"
    if spec.kind == Kind.LIST:
        if all(isinstance(v, str) and "," not in v for v in value):
            return ", ".join(value)
        return json.dumps(value)
    if spec.kind == Kind.OBJECT:
        return json.dumps(value, indent=1) if value else ""
    return str(value)


def form_field(spec, value):
    """A Django form field for one setting, holding its current value as text."""
    default = spec.describe_default()
    help_text = f"{spec.name} — {spec.help} Default: {default}.".replace(" —  Default", " — Default")
    common = {"label": spec.label, "required": False, "help_text": help_text, "initial": _shown(spec, value)}
    if spec.kind in (Kind.CHOICE, Kind.BOOLEAN):
        values = spec.choices if spec.kind == Kind.CHOICE else ("true", "false")
        choices = [("", f"Default ({default})"), *((v, v) for v in values)]
        return forms.ChoiceField(choices=choices, **common)
    if spec.kind in (Kind.TEXT, Kind.OBJECT) or (spec.kind == Kind.LIST and spec.item_kind != "string"):
        return forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), strip=False, **common)
    widget = forms.TextInput(attrs={"size": 60})
    return forms.CharField(widget=widget, **common)


class SettingsFormMixin:
    """Mixed into the integration ModelForm built for one connector (see `settings_form_class`)."""

    connector_class = None

    def clean(self):
        cleaned = super().clean()
        raw = {}
        for spec in self.connector_class.all_setting_fields():
            text = cleaned.get(form_field_name(spec), "")
            if text in ("", None):
                continue
            try:
                raw[spec.name] = spec.parse(text)
            except FieldError as exc:
                self.add_error(form_field_name(spec), str(exc).removeprefix(f"{spec.name}: ").capitalize() + ".")
        if not self.errors:
            values, problems = self.connector_class.clean_settings(raw)
            for problem in problems:
                self.add_error(None, problem)
            self.cleaned_settings = values
        return cleaned

    def save(self, commit=True):
        self.instance.settings = self.cleaned_settings
        return super().save(commit)


def settings_form_class(base_form, integration):
    """`base_form` with one field per setting of the integration's connector (the JSON field left out)."""
    connector_class = get_connector_class(integration.connector)
    attrs = {"connector_class": connector_class}
    for spec in connector_class.all_setting_fields():
        attrs[form_field_name(spec)] = form_field(spec, (integration.settings or {}).get(spec.name))
    return type("IntegrationSettingsForm", (SettingsFormMixin, base_form), attrs)


def field_names(integration):
    return [form_field_name(spec) for spec in get_connector_class(integration.connector).all_setting_fields()]
