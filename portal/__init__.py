"""The customer portal (/portal/, /reauth/) and the JSON API (/api/v1/).

They draw on every domain app (integrations, issues, alerts, audit), so they
live above them: no domain app imports this package.
"""
