"""The words about an integration's account mapping: counts with their noun, never "vendor account(s)".

`support_facts.describe_mapping` (what a help request keeps and support reads)
and the sentence `mapping.apply_completeness` returns after a save (the
portal's and the console's message).
"""

import pytest

from integrations import mapping
from integrations.models import AccountMapping
from integrations.support_facts import describe_mapping
from tests.factories import IntegrationFactory

pytestmark = pytest.mark.django_db


def with_accounts(mapped, unmapped, **fields):
    integration = IntegrationFactory(**fields)
    for n in range(mapped):
        AccountMapping.objects.create(integration=integration, vendor_account_id=f"m{n}", tenant_account=f"T{n}")
    for n in range(unmapped):
        AccountMapping.objects.create(integration=integration, vendor_account_id=f"u{n}")
    return integration


@pytest.mark.parametrize(
    ("mapped", "unmapped", "words"),
    [
        (1, 0, "complete: 1 vendor account, each mapped or ignored"),
        (3, 0, "complete: 3 vendor accounts, each mapped or ignored"),
        (0, 1, "incomplete: 1 of 1 vendor account not mapped yet"),
        (1, 2, "incomplete: 2 of 3 vendor accounts not mapped yet"),
    ],
)
def test_the_mapping_fact_counts_its_accounts(error_catalog, mapped, unmapped, words):
    assert describe_mapping(with_accounts(mapped, unmapped)) == words


@pytest.mark.parametrize(
    ("unmapped", "words"),
    [
        (1, "Mapping saved; 1 vendor account still needs a target or to be ignored."),
        (2, "Mapping saved; 2 vendor accounts still need a target or to be ignored."),
    ],
)
def test_a_saved_mapping_that_is_not_complete_says_how_many_accounts_are_left(error_catalog, unmapped, words):
    integration = with_accounts(1, unmapped, mapping_complete=False)

    assert mapping.apply_completeness(integration) == words
