"""factory_boy factories for the domain model."""

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from integrations.models import Integration, IntegrationEvent, Membership, SyncedRecord, SyncSession, Tenant
from issues import counts
from issues.models import ErrorCode, SyncIssue


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")

    @factory.post_generation
    def password(obj, create, extracted, **kwargs):
        obj.set_password(extracted or "password")
        if create:
            obj.save(update_fields=["password"])


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Tenant {n}")
    slug = factory.Sequence(lambda n: f"tenant-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    tenant = factory.SubFactory(TenantFactory)


class IntegrationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Integration
        skip_postgeneration_save = True

    tenant = factory.SubFactory(TenantFactory)
    connector = "simulator"
    name = factory.Sequence(lambda n: f"Integration {n}")
    mapping_complete = True

    @factory.post_generation
    def credentials(obj, create, extracted, **kwargs):
        if extracted is not None:
            obj.set_credentials(extracted, set_at=timezone.now())
            if create:
                obj.save()


class SyncSessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SyncSession

    integration = factory.SubFactory(IntegrationFactory)
    queued_at = factory.LazyFunction(timezone.now)


class SyncedRecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SyncedRecord

    integration = factory.SubFactory(IntegrationFactory)
    item_type = "item"
    external_id = factory.Sequence(lambda n: f"item-{n:07d}")
    content_hash = "0" * 64
    first_synced_at = factory.LazyFunction(timezone.now)
    last_synced_at = factory.LazyFunction(timezone.now)


class SyncIssueFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SyncIssue

    integration = factory.SubFactory(IntegrationFactory)
    tenant = factory.SelfAttribute("integration.tenant")
    error_code = factory.LazyFunction(lambda: ErrorCode.objects.get(code="ITEM_MISSING_FIELD"))
    item_type = "item"
    external_id = factory.Sequence(lambda n: f"item-{n:07d}")
    first_seen_at = factory.LazyFunction(timezone.now)
    last_seen_at = factory.LazyFunction(timezone.now)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        """An open issue counts on its integration, as the recorder keeps it."""
        issue = super()._create(model_class, *args, **kwargs)
        if issue.state == SyncIssue.State.OPEN:
            counts.move(issue.integration_id, 1)
        return issue


class IntegrationEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = IntegrationEvent

    integration = factory.SubFactory(IntegrationFactory)
    kind = IntegrationEvent.Kind.CREATED
    created_at = factory.LazyFunction(timezone.now)
