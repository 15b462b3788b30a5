"""The admin registers every model, its pages load, and the integration changelist's queries do not grow."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.utils import timezone

from integrations.models import Integration
from issues.models import ErrorCode
from tests.factories import IntegrationFactory, SyncIssueFactory, SyncSessionFactory
from tests.queries import grown, measure

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


def test_integration_changelist_query_count_does_not_grow(client, staff_user, error_catalog):
    """5 integrations, then 60 (more than a page): the same queries, and the count.

    Every integration has a last session and an open issue, so a column
    following `last_session` or `tenant` without `list_select_related` costs a
    query per row and the counts differ. The 5 fit on the first page, which
    is their count (PageFirstChangeList); the 60 are counted.
    """
    failed = ErrorCode.objects.get(code="VENDOR_UNAVAILABLE")

    def grow(total):
        while Integration.objects.count() < total:
            integration = IntegrationFactory()
            last = SyncSessionFactory(
                integration=integration, state="failed", error_code=failed, finished_at=timezone.now()
            )
            Integration.objects.filter(pk=integration.pk).update(last_session=last)
            SyncIssueFactory(integration=integration)

    client.force_login(staff_user)
    url = "/admin/integrations/integration/"
    grow(5)
    client.get(url)  # warm the per-process caches (content types, ...)
    small_page, small = measure(client, url)
    grow(60)
    large_page, large = measure(client, url)

    assert small_page.status_code == large_page.status_code == 200
    assert len(small_page.context["cl"].result_list) == 5
    assert len(large_page.context["cl"].result_list) == 50
    counts = [sql for sql in large if sql.startswith("SELECT COUNT(*)")]
    assert not [sql for sql in small if sql.startswith("SELECT COUNT(*)")]
    assert len(counts) == 1 and len(large) == len(small) + 1, "\n".join(grown(small, large))
    assert len(small) <= 10, small


def test_anonymous_is_sent_to_login(client):
    response = client.get("/admin/integrations/integration/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
