"""integrations/advice.py: the runbook's first steps by status, a PSA's checklist by vendor kind."""

import pytest

from integrations import advice
from integrations.connectors.base import get_connector_class
from integrations.models import Integration

Status = Integration.Status


def integration(status, connector="simulator", kind=Integration.Kind.VENDOR, **settings):
    return Integration(connector=connector, kind=kind, status=status, settings=settings)


def titles(found):
    return [shown.title for shown in found]


def step_texts(found):
    return [text for shown in found for text, _ in shown.steps]


def test_unknown_shows_the_four_first_steps_to_the_customer_and_to_support():
    unknown = integration(Status.UNKNOWN)  # the simulator signs in with an API key: a token

    customer = advice.advice_for(unknown, advice.CUSTOMER)
    support = advice.advice_for(unknown, advice.SUPPORT)

    assert titles(customer) == ["What you can do now"]
    assert titles(support) == ["First steps (runbook: unknown outcome)"]
    assert [link for _, link in customer[0].steps] == ["sync", "reauthenticate", "mapping", ""]
    said = " ".join(step_texts(customer)).lower()
    for words in ("run a sync now", "re-authenticate", "account mapping", "busy window"):
        assert words in said
    told = " ".join(step_texts(support)).lower()
    for words in ("force a sync", "re-authentication link", "account mapping", "wait for them to drain"):
        assert words in told
    # Each audience reads its own words.
    assert not set(step_texts(customer)) & set(step_texts(support))


def test_unknown_advice_replaces_the_catalogs_nothing_to_do():
    assert advice.supersedes_catalog(integration(Status.UNKNOWN))
    for status in set(Status.values) - {Status.UNKNOWN}:
        assert not advice.supersedes_catalog(integration(status)), status


def test_re_authenticating_is_advised_only_to_integrations_that_sign_in_with_a_token():
    by_password = integration(Status.UNKNOWN, connector="carddav")  # url, username, password
    basic_rest = integration(Status.UNKNOWN, connector="rest", **{"auth.type": "basic"})
    oauth_rest = integration(Status.UNKNOWN, connector="rest", **{"auth.type": "oauth2_client_credentials"})

    for no_token in (by_password, basic_rest):
        links = [link for _, link in advice.advice_for(no_token, advice.CUSTOMER)[0].steps]
        assert links == ["sync", "mapping", ""]
    for token in (oauth_rest, integration(Status.UNKNOWN)):
        links = [link for _, link in advice.advice_for(token, advice.CUSTOMER)[0].steps]
        assert "reauthenticate" in links


@pytest.mark.parametrize("status", sorted(advice.TROUBLED))
def test_a_psa_in_trouble_gets_the_psa_checklist(status):
    connectwise = integration(status, connector="connectwise_manage")

    found = advice.advice_for(connectwise, advice.CUSTOMER)

    assert "For a PSA" in titles(found)
    said = " ".join(step_texts(found)).lower()
    for words in ("permissions of the api user", "migration", "full sync"):
        assert words in said
    assert "PSA checklist" in titles(advice.advice_for(connectwise, advice.SUPPORT))


@pytest.mark.parametrize("status", sorted(set(Status.values) - advice.TROUBLED))
def test_a_healthy_or_switched_off_psa_is_not_lectured(status):
    assert "psa" not in [shown.key for shown in advice.advice_for(integration(status, connector="connectwise_manage"), advice.CUSTOMER)]


def test_the_psa_kind_is_declared_by_the_connector_or_recorded_on_the_integration():
    assert get_connector_class("connectwise_manage").vendor_kind == "psa"  # from its manifest
    assert get_connector_class("carddav").vendor_kind == "mailbox"
    assert get_connector_class("simulator").vendor_kind == ""

    assert advice.vendor_kind(integration(Status.FAILING, connector="connectwise_manage")) == "psa"
    assert advice.vendor_kind(integration(Status.FAILING, kind=Integration.Kind.PSA)) == "psa"
    assert advice.vendor_kind(integration(Status.FAILING)) == ""
    assert "For a PSA" in titles(advice.advice_for(integration(Status.FAILING, kind=Integration.Kind.PSA), advice.CUSTOMER))
    assert advice.advice_for(integration(Status.FAILING), advice.CUSTOMER) == []


def test_an_unknown_psa_gets_both_status_first():
    found = advice.advice_for(integration(Status.UNKNOWN, connector="connectwise_manage"), advice.CUSTOMER)

    assert [shown.key for shown in found] == ["unknown-first-steps", "psa"]


def test_statuses_without_advice_show_none():
    for status in (Status.ACTIVE, Status.SETUP, Status.INACTIVE, Status.DELETED):
        assert advice.advice_for(integration(status), advice.CUSTOMER) == []


def test_an_uninstalled_connector_gets_the_status_advice_without_conditional_steps():
    found = advice.advice_for(integration(Status.UNKNOWN, connector="gone"), advice.CUSTOMER)

    assert [link for _, link in found[0].steps] == ["sync", "mapping", ""]
