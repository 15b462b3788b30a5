"""The admin registers every model and its pages load, with a bounded number of queries."""

import pytest
from django.apps import apps
from django.contrib import admin

from tests.factories import IntegrationFactory, SyncIssueFactory, SyncSessionFactory

pytestmark = pytest.mark.django_db


def test_every_model_is_registered():
    for app_label in ("integrations", "issues"):
        for model in apps.get_app_config(app_label).get_models():
            assert admin.site.is_registered(model), model.__name__


def test_every_changelist_and_change_page_loads(client, staff_user):
    integration = IntegrationFactory(credentials={"api_key": "k"})
    SyncSessionFactory(integration=integration, state="succeeded")
    SyncIssueFactory(integration=integration)
    client.force_login(staff_user)
    for app_label in ("integrations", "issues"):
        for model in apps.get_app_config(app_label).get_models():
            url = f"/admin/{app_label}/{model._meta.model_name}/"
            assert client.get(url).status_code == 200, url
            obj = model.objects.first()
            if obj is not None:
                response = client.get(f"{url}{obj.pk}/change/")
                assert response.status_code == 200, url


@pytest.mark.parametrize("rows", [5, 60])
def test_integration_changelist_query_count_does_not_grow(client, staff_user, django_assert_max_num_queries, rows):
    for _ in range(rows):
        integration = IntegrationFactory()
        SyncIssueFactory(integration=integration)
    client.force_login(staff_user)
    with django_assert_max_num_queries(10):
        assert client.get("/admin/integrations/integration/").status_code == 200


def test_anonymous_is_sent_to_login(client):
    response = client.get("/admin/integrations/integration/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
