"""Every status is declared once (integrations/statuses.py) and every surface draws from the declaration.

For each status the declaration is swapped for one with made-up words,
colour, API word, next step, refusal and actions; the console badge, the
why-this-status panel, the portal's words and "what happens next", the API's
word, the sync refusal and the staff actions must all show the made-up
values. A surface that kept its own copy would show the real ones.
"""

import dataclasses
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from integrations import selectors, statuses
from integrations.admin import actions as staff_actions
from integrations.admin.common import status_badge
from integrations.admin.panels import why_status
from integrations.models import Integration, Membership, SyncSession
from integrations.statuses import DECLARATIONS, STAFF_ACTIONS, SyncRefusal
from integrations.sync.starting import refusal_for
from tests.factories import IntegrationFactory, MembershipFactory, UserFactory

Status = Integration.Status
pytestmark = pytest.mark.django_db


def test_every_status_is_declared_once():
    assert set(DECLARATIONS) == set(Status.values)
    for status, declared in DECLARATIONS.items():
        assert declared.status == status
        assert declared.headline and declared.meaning and declared.api_word and declared.badge_colour
        assert declared.actions <= set(STAFF_ACTIONS)


def test_the_models_named_groups_agree_with_the_declarations():
    assert set(Integration.NEEDS_ATTENTION) == {s for s, d in DECLARATIONS.items() if d.needs_attention}


LAST_OUTCOME = {
    Status.ACTIVE: Integration.Outcome.SUCCEEDED,
    Status.WARNINGS: Integration.Outcome.WARNINGS,
    Status.FAILING: Integration.Outcome.FAILED,
    Status.UNKNOWN: Integration.Outcome.UNKNOWN,
    Status.AUTH_FAILING: Integration.Outcome.AUTH_FAILED,
    Status.CREDENTIALS_INVALID: Integration.Outcome.AUTH_FAILED,
}


def integration_in(status):
    """An integration whose facts go with the status (enough for every panel to explain it)."""
    now = timezone.now()
    return IntegrationFactory(
        status=status,
        last_outcome=LAST_OUTCOME.get(status, Integration.Outcome.SUCCEEDED),
        last_outcome_at=now - timedelta(minutes=5),
        last_error_code="AUTH_EXPIRED" if status in (Status.AUTH_FAILING, Status.CREDENTIALS_INVALID) else "",
        mapping_complete=True,
        credentials={"api_key": "k"},
        first_sync_finished_at=now - timedelta(days=1),
        unsuccessful_since=now - timedelta(hours=2),
        auth_failing_since=now - timedelta(hours=2),
        quality_assurance_since=now - timedelta(hours=1),
        deactivated_at=now - timedelta(hours=1) if status == Status.INACTIVE else None,
        deleted_at=now - timedelta(hours=1) if status == Status.DELETED else None,
        next_sync_at=now + timedelta(minutes=30),
    )


@pytest.mark.parametrize("status", Status.values)
def test_every_surface_draws_from_the_declaration(status, monkeypatch, error_catalog):
    made_up = dataclasses.replace(
        DECLARATIONS[status],
        badge_colour="#0a0b0c",
        headline=f"Made-up headline for {status}",
        meaning=f"Made-up meaning for {status}",
        api_word=f"made-up-{status}",
        next_step=f"Made-up next step for {status}",
        refusal=SyncRefusal("MADE_UP_REFUSAL", f"Made-up refusal for {status}", frozenset({SyncSession.Trigger.STAFF})),
        actions=frozenset({"delete", "pause"}),
    )
    monkeypatch.setitem(DECLARATIONS, status, made_up)
    integration = integration_in(status)

    # The console: badge, why-this-status, the actions offered.
    assert "#0a0b0c" in status_badge(status)
    why = why_status(integration, now=timezone.now())
    assert f"Made-up headline for {status}" in " ".join(why.evidence)
    offered = {name for name in STAFF_ACTIONS if staff_actions.available(name, integration)}
    assert offered == {"delete", "pause"}

    # Syncs: refused for every trigger but the one the declaration allows.
    refused = refusal_for(integration, SyncSession.Trigger.CUSTOMER)
    assert (refused.code, refused.message) == ("MADE_UP_REFUSAL", f"Made-up refusal for {status}")
    assert refusal_for(integration, SyncSession.Trigger.STAFF) is None

    # The customer's words, what happens next, and the API's word.
    assert selectors.customer_words(status) == (f"Made-up headline for {status}", f"Made-up meaning for {status}")
    assert selectors.api_status(status) == f"made-up-{status}"
    if status != Status.SETUP:  # in setup, the mapping decides the sentence
        assert selectors.what_next(integration, timezone.now()) == f"Made-up next step for {status}"
    if status != Status.DELETED:  # deleted integrations are gone for the customer
        user = UserFactory()
        MembershipFactory(user=user, tenant=integration.tenant, role=Membership.Role.ADMIN)
        client = Client()
        client.force_login(user)
        page = client.get(reverse("portal:general", args=[integration.pk])).content.decode()
        assert f"Made-up headline for {status}" in page


def test_the_real_declarations_refuse_what_design_says(error_catalog):
    """DESIGN.md's table, for the statuses that hold syncs back."""
    Trigger = SyncSession.Trigger
    expectations = {
        Status.DELETED: ("DELETED", set()),
        Status.INACTIVE: ("INACTIVE", set()),
        Status.CREDENTIALS_INVALID: ("CREDENTIALS_INVALID", {Trigger.REAUTH}),
        Status.QUALITY_ASSURANCE: ("QUALITY_ASSURANCE", {Trigger.STAFF, Trigger.REAUTH, Trigger.RETRY}),
    }
    for status in Status.values:
        integration = integration_in(status)
        allowed = {t for t in Trigger.values if refusal_for(integration, t) is None}
        if status in expectations:
            code, expected_allowed = expectations[status]
            assert allowed == expected_allowed, status
            refused = set(Trigger.values) - allowed
            assert {refusal_for(integration, t).code for t in refused} == {code}
        else:
            assert allowed == set(Trigger.values), status
    assert settings.CREDENTIALS_INVALID_AFTER == timedelta(days=3)
    assert statuses.declaration(Status.ACTIVE).refusal is None


def test_a_cause_the_declaration_words_apart_reaches_the_customer(monkeypatch, error_catalog):
    """Credentials revoked by staff read as their own cause wherever the customer's words show."""
    status = Status.CREDENTIALS_INVALID
    made_up = dataclasses.replace(
        DECLARATIONS[status],
        meaning="Made-up meaning for credentials that kept failing",
        meaning_by_cause=((statuses.CREDENTIALS_REVOKED, "Made-up meaning for revoked credentials"),),
    )
    monkeypatch.setitem(DECLARATIONS, status, made_up)
    failing = integration_in(status)
    revoked = integration_in(status)
    revoked.credentials_revoked_at = timezone.now()
    revoked.save(update_fields=["credentials_revoked_at"])

    assert statuses.cause_of(failing) == "" and statuses.cause_of(revoked) == statuses.CREDENTIALS_REVOKED
    assert selectors.customer_words(failing)[1] == "Made-up meaning for credentials that kept failing"
    assert selectors.customer_words(revoked)[1] == "Made-up meaning for revoked credentials"
    assert selectors.customer_words(status)[1] == "Made-up meaning for credentials that kept failing"
    user = UserFactory()
    MembershipFactory(user=user, tenant=revoked.tenant, role=Membership.Role.VIEWER)
    client = Client()
    client.force_login(user)
    page = client.get(reverse("portal:general", args=[revoked.pk])).content.decode()
    assert "Made-up meaning for revoked credentials" in page
    assert "Made-up meaning for credentials that kept failing" not in page
