"""The integration form shows one typed field per connector setting, and stores what it reads typed."""

import pytest
from django.urls import reverse

from integrations.admin.settings_form import form_field_name
from integrations.connectors.base import get_connector_class
from tests.factories import IntegrationFactory


def post_data(response, **changes):
    """What the browser would send back for the page, with `changes` typed in."""
    form = response.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if value is not None:
            data[name] = value
    for formset in response.context["inline_admin_formsets"]:
        management = formset.formset.management_form
        for name in management.fields:
            data[management.add_prefix(name)] = management.initial.get(name, 0)
    data.update(changes)
    return data


@pytest.fixture
def carddav(db, error_catalog):
    return IntegrationFactory(connector="carddav", settings={"addressbook": "/alice/contacts/"})


@pytest.fixture
def page(staff_client, superuser, carddav):
    client = staff_client(superuser)
    url = reverse("admin:integrations_integration_change", args=[carddav.pk])
    return client, url, client.get(url)


def test_every_setting_is_a_field_with_its_help_and_no_json_textarea(page, carddav):
    _, _, response = page
    html = response.content.decode()
    for spec in get_connector_class("carddav").all_setting_fields():
        assert f'name="{form_field_name(spec)}"' in html
        assert spec.help.split(":")[0][:30] in html
    assert 'name="settings"' not in html
    assert response.context["adminform"].form.fields[form_field_name_of("addressbook")].initial == "/alice/contacts/"


def form_field_name_of(name):
    return "setting__" + name.replace(".", "__")


def test_saving_types_the_values_and_leaves_empty_ones_to_the_default(page, carddav):
    client, url, response = page
    data = post_data(
        response,
        **{form_field_name_of("mark_source_items"): "false", form_field_name_of("page_size"): "50"},
    )
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    carddav.refresh_from_db()
    assert carddav.settings == {"addressbook": "/alice/contacts/", "mark_source_items": False, "page_size": 50}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("page_size", "ten", "Must be a whole number"),
        ("page_size", "0", "Must be at least 1"),
        ("ca_certificate", "not a certificate", "ca_certificate"),
    ],
)
def test_a_bad_value_is_named_and_nothing_changes(page, carddav, name, value, message):
    client, url, response = page
    response = client.post(url, post_data(response, **{form_field_name_of(name): value}))
    assert response.status_code == 200
    assert message in response.content.decode()
    carddav.refresh_from_db()
    assert carddav.settings == {"addressbook": "/alice/contacts/"}


def test_a_view_only_user_sees_the_settings_read_only(staff_client, support_user, carddav):
    # Support may view integrations; the settings show as stored, not as inputs.
    client = staff_client(support_user)
    response = client.get(reverse("admin:integrations_integration_change", args=[carddav.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert not support_user.has_perm("integrations.change_integration")
    assert 'name="setting__page_size"' not in html
    assert "/alice/contacts/" in html
