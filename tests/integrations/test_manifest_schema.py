"""Manifests are checked against the rest connector's typed settings; every message names its key."""

import json
from pathlib import Path

import pytest

from integrations.connectors.base import connector_keys, get_connector_class
from integrations.connectors.manifests import ManifestError, load_manifest, manifest_paths, parse_manifest
from integrations.connectors.rest.options import REST_FIELDS

GOOD = {
    "key": "example",
    "label": "Example",
    "vendor_kind": "psa",
    "documentation": ["https://developer.example.com/"],
    "item_type": "contact",
    "token_lifetime_days": 90,
    "settings": {"base_url": "https://api.example.com", "items": {"endpoint": "/contacts"}},
}


def problems_of(**changes):
    document = {**GOOD, **changes}
    with pytest.raises(ManifestError) as caught:
        parse_manifest({k: v for k, v in document.items() if v is not ...}, expected_key="example")
    return caught.value.problems


def test_a_good_manifest_becomes_flat_typed_settings():
    manifest = parse_manifest(GOOD, expected_key="example")
    assert manifest.settings == {"base_url": "https://api.example.com", "items.endpoint": "/contacts"}
    assert manifest.token_lifetime_days == 90


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"settings": {**GOOD["settings"], "pagination": {"type": "pages"}}},
            "pagination.type: must be one of none, page, offset, cursor, next_url, link_header",
        ),
        ({"settings": {**GOOD["settings"], "pagination": {"size": "200"}}}, "pagination.size: must be a JSON integer, not a string"),
        ({"settings": {**GOOD["settings"], "pagination": {"size": 0}}}, "pagination.size: must be at least 1, got 0"),
        ({"settings": {**GOOD["settings"], "paging": {"type": "page"}}}, "settings.paging.type: unknown setting"),
        ({"settings": {"base_url": "https://api.example.com"}}, "items.endpoint: is required"),
        ({"settings": {**GOOD["settings"], "base_url": "ftp://x"}}, "base_url: is not an http(s) URL"),
        ({"settings": {**GOOD["settings"], "rules": {"checks": [{"field": "a"}]}}}, "rules.checks[0]: needs exactly one of"),
        ({"settings": {**GOOD["settings"], "auth": {"type": "headers"}}}, "auth.headers: name at least one header"),
        ({"key": "other"}, "key: must match the file name"),
        ({"vendor_kind": "bank"}, "vendor_kind: must be one of"),
        ({"documentation": ["http://insecure.example.com"]}, "documentation: must be a non-empty list of https:// URLs"),
        ({"token_lifetime_days": 0}, "token_lifetime_days: must be a whole number"),
        ({"surprise": 1}, "surprise: unknown key"),
        ({"label": ...}, "label: is required"),
    ],
)
def test_each_mistake_is_named_by_its_key(changes, expected):
    problems = problems_of(**changes)
    assert any(expected in problem for problem in problems), problems


def test_a_file_that_is_not_json_says_so(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(ManifestError, match="broken.json: is not JSON"):
        load_manifest(path)


def test_every_shipped_manifest_loads_and_is_a_connector_of_its_own():
    paths = manifest_paths()
    assert len(paths) >= 4
    keys = connector_keys()
    for path in paths:
        manifest = load_manifest(path)
        assert manifest.key in keys
        cls = get_connector_class(manifest.key)
        assert cls.label == manifest.label and cls.item_type == manifest.item_type
        # The manifest's values are the defaults an integration starts from.
        for name, value in manifest.settings.items():
            assert cls.option_of({}, name) == value
        if manifest.token_lifetime_days:
            assert cls.token_lifetime.days == manifest.token_lifetime_days


def test_an_integration_setting_overrides_the_manifest_value():
    path = manifest_paths()[0]
    cls = get_connector_class(path.stem)
    values, problems = cls.clean_settings({"base_url": "https://eu.example.com", "pagination.size": "7"})
    assert problems == []
    connector = cls(values, {}, http=None)
    assert connector.conf["base_url"] == "https://eu.example.com"
    assert connector.conf["pagination.size"] == 7
    assert connector.conf["items.endpoint"] == json.loads(path.read_text())["settings"]["items"]["endpoint"]


def test_the_connector_guide_explains_every_setting():
    guide = (Path(__file__).resolve().parents[2] / "docs" / "CONNECTORS.md").read_text()
    missing = [spec.name for spec in REST_FIELDS if f"`{spec.name}`" not in guide]
    assert missing == []
