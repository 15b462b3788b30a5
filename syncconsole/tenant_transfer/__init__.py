"""One tenant's data as JSON lines, and back: `manage.py export_tenant` / `import_tenant`.

For an escalation: engineering loads a customer's tenant into another
installation and reproduces what the customer saw, without the customer's
credentials.

The file, one JSON object a line:

    {"type": "export", "format": 1, "tenant": "acme", "exported_at": "...", "site": "https://...", ...}
    {"type": "tenant", "id": 7, "fields": {...}}
    {"type": "user", "id": 12, "fields": {"username": ..., "email": ..., ...}}
    {"type": "integration", "id": 31, "fields": {"tenant": 7, ...}}
    ...
    {"type": "end", "counts": {"tenant": 1, "integration": 3, ...}}

`fields` are Django's serialization of the row (dates in ISO 8601, durations
as Django writes them); a relation holds the original id of the row it points
at, which comes earlier in the file (users and error codes are written just
before the first row that needs them), except the few a kind declares
deferred (an integration's last session). Each app declares its own kinds
(`integrations/transfer.py`, `issues/transfer.py`, `alerts/transfer.py`,
`audit/transfer.py`); `catalog.py` puts them in order and derives every
relation from the models, so the app graph stays as it is and a model added
later is either declared or named as left out (a test checks).
"""
