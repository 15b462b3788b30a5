"""The OpenAPI document at /api/v1/openapi.json is valid and tells the truth.

Schemathesis reads the document and sends generated requests (valid ones and
deliberately invalid ones) to every operation on the live server, with a real
tenant API key. No answer may be a server error, and every answer must match
the response schema the document gives for its status code. Path ids are
drawn now and then from the tenant's real integrations (one that syncs
against the vendor simulator, one under review with real issues, one
syncing, one inactive, one in setup, another tenant's), so that the 200,
202, 409 and 422 answers are checked as well as the 400 and 404 ones.
"""

import json
from types import SimpleNamespace

import hypothesis.strategies as st
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from integrations.models import Integration, SyncSession
from portal.api import document
from tests.factories import SyncSessionFactory, TenantFactory

Status = Integration.Status
CHECKS = [not_a_server_error, response_schema_conformance]
# Bounded and reproducible: 30 generated cases per operation and phase, derandomized,
# and no example database written into the work tree.
CONFIG = {
    "generation": {
        "max-examples": 30,
        "deterministic": True,
        "database": "none",
        "with-security-parameters": False,
    },
}


def generated(server_url):
    """The document ninja generates from the API's operations, as JSON (status codes as strings)."""
    return json.loads(json.dumps(document(server_url)))


# The generated document, as the server serves it (checked below); the generated requests
# go to the live server given to each call.
schema = schemathesis.openapi.from_dict(
    generated("http://testserver/api/v1/"), config=schemathesis.Config.from_dict(CONFIG)
)
# The ids of the running test's integrations (set by `api_world`).
KNOWN_IDS = []


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    if not path_parameters or "integration_id" not in path_parameters or not KNOWN_IDS:
        return st.just(path_parameters)
    return st.sampled_from(
        [path_parameters, *({**path_parameters, "integration_id": pk} for pk in KNOWN_IDS)]
    )


@pytest.fixture
def api_world(live_server, make_integration, sync, integration_in, api_key):
    acme = TenantFactory(name="Acme")
    healthy = make_integration("healthy", tenant=acme, name="Acme billing")
    sync(healthy)
    reviewed = make_integration("warnings", tenant=acme, name="Acme contacts")
    sync(reviewed)  # real issues to page through; under review, it refuses customers' syncs
    busy = integration_in(acme, name="Acme busy")
    SyncSessionFactory(integration=busy, state=SyncSession.State.RUNNING, items_seen=50, items_total=500)
    idle = integration_in(acme, Status.INACTIVE, name="Acme idle")
    setup = integration_in(acme, Status.SETUP, name="Acme setup")
    foreign = integration_in(TenantFactory(name="Globex"), name="Globex billing")
    _, raw = api_key(acme)
    KNOWN_IDS[:] = [healthy.pk, reviewed.pk, busy.pk, idle.pk, setup.pk, foreign.pk]
    yield SimpleNamespace(headers={"Authorization": f"Bearer {raw}"}, base_url=f"{live_server.url}/api/v1")
    KNOWN_IDS.clear()


@pytest.mark.django_db(transaction=True)
def test_the_served_document_is_valid_openapi_3(api_world):
    served = requests.get(f"{api_world.base_url}/openapi.json", timeout=10)
    assert served.status_code == 200
    assert served.headers["Content-Type"] == "application/json"
    body = served.json()
    assert body == generated(f"{api_world.base_url}/")
    assert body["openapi"].startswith("3.")
    assert body["servers"] == [{"url": api_world.base_url}]
    loaded = schemathesis.openapi.from_url(
        f"{api_world.base_url}/openapi.json", config=schemathesis.Config.from_dict(CONFIG)
    )
    loaded.validate()  # raises on a document that is not valid OpenAPI
    operations = sorted(
        (result.ok().method.upper(), result.ok().path) for result in loaded.get_all_operations()
    )
    assert operations == [
        ("GET", "/integrations/"),
        ("GET", "/integrations/{integration_id}/"),
        ("GET", "/integrations/{integration_id}/issues/"),
        ("POST", "/integrations/{integration_id}/sync"),
        ("POST", "/integrations/{integration_id}/test"),
    ]


@schema.parametrize()
# The fixture's rows are meant to outlive each generated case: they are what the cases ask about.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@pytest.mark.django_db(transaction=True)
def test_every_answer_matches_the_document(case, api_world):
    case.call_and_validate(base_url=api_world.base_url, headers=api_world.headers, checks=CHECKS)
