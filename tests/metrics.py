"""What the tests of /metrics share: scraping it and reading samples."""

from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

TOKEN = "metrics-test-token-5a1c"


def scrape(client=None, token=TOKEN):
    """{(sample name, ((label, value), ...)): value} of one /metrics answer, parsed by prometheus_client."""
    client = client or Client()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels):
    """A sample's value; 0 for a series that has no sample yet (a counter never moved)."""
    return samples.get((name, tuple(sorted((k, str(v)) for k, v in labels.items()))), 0)


def series(samples, name):
    """{labels dict as a tuple: value} of every sample named `name`."""
    return {labels: v for (sample, labels), v in samples.items() if sample == name}
