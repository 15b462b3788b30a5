"""Vendor manifests: a vendor's REST shape as a JSON file, each a connector key of its own.

`<key>.json` in this folder becomes the connector `<key>`: the `rest`
connector whose defaults are the manifest's settings, with the manifest's
label, item type and credential lifetime. An integration's own settings
override the manifest's values. A manifest is checked against the `rest`
connector's typed settings when it is loaded, and every message names the
key that is wrong ("pagination.type: must be one of ..."). docs/CONNECTORS.md
explains how to write one.
"""

import json
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

from integrations.connectors.base import _REGISTRY, register
from integrations.connectors.fields import FieldError, Kind, flatten_for
from integrations.connectors.rest import RestConnector
from integrations.connectors.rest.options import REST_FIELDS

FOLDER = Path(__file__).resolve().parent
VENDOR_KINDS = ("distributor", "psa", "email_security", "mailbox", "crm", "other")
TOP_KEYS = {
    "key": "the connector key (the file name without .json)",
    "label": "the vendor's name as people read it",
    "vendor_kind": "one of " + ", ".join(VENDOR_KINDS),
    "documentation": "a list of the public documentation URLs it was written from",
    "item_type": "what one item is, singular",
    "token_lifetime_days": "how many days the customer's credential lives, or null",
    "notes": "free text for whoever maintains it",
    "settings": "the rest connector's settings, nested",
}
REQUIRED_TOP = ("key", "label", "vendor_kind", "documentation", "item_type", "settings")


class ManifestError(ValueError):
    def __init__(self, source, problems):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


@dataclass(frozen=True)
class Manifest:
    key: str
    label: str
    vendor_kind: str
    documentation: tuple
    item_type: str
    token_lifetime_days: int | None
    settings: dict  # flat, typed
    notes: str = ""


def load_manifest(path):
    """The checked Manifest in a file; ManifestError listing every problem, each naming its key."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(path.name, [f"cannot be read: {exc}"]) from None
    except ValueError as exc:
        raise ManifestError(path.name, [f"is not JSON: {exc}"]) from None
    return parse_manifest(document, source=path.name, expected_key=path.stem)


def parse_manifest(document, *, source="manifest", expected_key=None):
    if not isinstance(document, dict):
        raise ManifestError(source, ["must be a JSON object"])
    problems = [f"{key}: unknown key; a manifest has {', '.join(TOP_KEYS)}" for key in document if key not in TOP_KEYS]
    problems += [f"{key}: is required ({TOP_KEYS[key]})" for key in REQUIRED_TOP if key not in document]
    key = document.get("key")
    if "key" in document and (not isinstance(key, str) or not key.replace("_", "").isalnum() or not key.islower()):
        problems.append("key: must be lower-case letters, digits and underscores")
    elif expected_key and key and key != expected_key:
        problems.append(f"key: must match the file name ({expected_key!r}), got {key!r}")
    for name in ("label", "item_type", "notes"):
        if name in document and (not isinstance(document[name], str) or (name != "notes" and not document[name].strip())):
            problems.append(f"{name}: must be text")
    if "vendor_kind" in document and document["vendor_kind"] not in VENDOR_KINDS:
        problems.append(f"vendor_kind: must be one of {', '.join(VENDOR_KINDS)}")
    docs = document.get("documentation", [])
    if not isinstance(docs, list) or not docs or not all(isinstance(u, str) and u.startswith("https://") for u in docs):
        problems.append("documentation: must be a non-empty list of https:// URLs")
    lifetime = document.get("token_lifetime_days")
    if lifetime is not None and (isinstance(lifetime, bool) or not isinstance(lifetime, int) or lifetime < 1):
        problems.append("token_lifetime_days: must be a whole number of days, at least 1, or null")
    settings = _settings(document.get("settings", {}), problems)
    if problems:
        raise ManifestError(source, problems)
    return Manifest(
        key=key,
        label=document["label"].strip(),
        vendor_kind=document["vendor_kind"],
        documentation=tuple(docs),
        item_type=document["item_type"].strip(),
        token_lifetime_days=lifetime,
        settings=settings,
        notes=document.get("notes", ""),
    )


def _settings(nested, problems):
    if not isinstance(nested, dict):
        problems.append("settings: must be an object")
        return {}
    by_name = {f.name: f for f in REST_FIELDS}
    values = {}
    for name, value in flatten_for(REST_FIELDS, nested).items():
        spec = by_name.get(name)
        if spec is None:
            problems.append(f"settings.{name}: unknown setting; see `manage.py connectors rest`")
            continue
        if isinstance(value, str) and spec.kind not in (Kind.STRING, Kind.URL, Kind.CHOICE, Kind.TEXT, Kind.SECRET):
            # JSON has types: "false" in a manifest is a mistake, not a word to read.
            problems.append(f"{name}: must be a JSON {spec.kind}, not a string")
            continue
        try:
            values[name] = spec.parse(value)
        except FieldError as exc:
            problems.append(str(exc))
    for spec in REST_FIELDS:
        if spec.required and spec.name not in values:
            problems.append(f"{spec.name}: is required ({spec.label})")
    if not problems:
        conf = {f.name: f.default for f in REST_FIELDS} | values
        problems.extend(p.removeprefix("Setting ") for p in RestConnector.validate_settings(conf))
    return values


def connector_class(manifest):
    """A connector class for the manifest: `rest` with the manifest's values as defaults."""
    fields = tuple(
        spec.with_default(manifest.settings[spec.name]) if spec.name in manifest.settings else spec for spec in REST_FIELDS
    )
    # A value the manifest gives is not asked for again.
    fields = tuple(replace(spec, required=False) if spec.name in manifest.settings else spec for spec in fields)
    lifetime = timedelta(days=manifest.token_lifetime_days) if manifest.token_lifetime_days else None
    return type(
        f"{manifest.key.title().replace('_', '')}Connector",
        (RestConnector,),
        {
            "key": manifest.key,
            "label": manifest.label,
            "item_type": manifest.item_type,
            "token_lifetime": lifetime,
            "vendor_kind": manifest.vendor_kind,
            "setting_fields": fields,
            "manifest": manifest,
            "__doc__": f"{manifest.label} ({manifest.vendor_kind}), from {FOLDER.name}/{manifest.key}.json.",
            "__module__": __name__,
        },
    )


def manifest_paths():
    return sorted(FOLDER.glob("*.json"))


def register_all():
    """Register every manifest of this folder; a broken one stops start-up with its problems named."""
    for path in manifest_paths():
        existing = _REGISTRY.get(path.stem)
        if existing is not None and getattr(existing, "manifest", None) is not None:
            continue
        if existing is not None:
            raise ManifestError(path.name, [f"key: {path.stem!r} is a built-in connector; choose another name"])
        register(connector_class(load_manifest(path)))
