"""Panels other apps add to the integration page, without integrations importing them.

An app registers a provider in its AppConfig.ready() (alerts adds the
delivery of the integration's alerts). The page calls each provider with the
request, the integration (its tenant already loaded) and the time, and shows
the HTML it returns, or nothing for an empty string. A provider runs a fixed
number of queries whatever the data size: tests/admin/test_query_counts.py
measures the page with every provider registered.
"""

_providers = []


def register(provider):
    """Add `provider(request, integration, now) -> str` (safe HTML) to the integration page; idempotent."""
    if provider not in _providers:
        _providers.append(provider)


def render_all(request, integration, now):
    return [html for html in (provider(request, integration, now) for provider in _providers) if html]
