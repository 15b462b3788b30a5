"""The migration state of each release: the last migration of each of our apps (None: not there yet).

Upgrading from the previous release is tested (tests/test_migrations.py): a
database at that state, holding data, is migrated forward and the data
checked. When a release is cut, add its line here; every migration after the
previous release must be reversible, since the test rolls a current database
back to the release state before loading its data.
"""

RELEASES = {
    # The first round: engine, console, portal, API, alerts, CardDAV.
    "1.0": {
        "integrations": "0008_seen_items",
        "issues": "0002_seed_error_codes",
        "alerts": "0001_initial",
        "audit": None,
    },
}

PREVIOUS_RELEASE = "1.0"
