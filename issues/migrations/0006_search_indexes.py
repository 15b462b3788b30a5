"""Trigram indexes for the console's issue search, on PostgreSQL only.

The issue changelist looks a term up in the external id and the item label
(prefix), the message, the integration's name and the tenant's name
(syncconsole/search.py writes it as `col ILIKE ...`, which a pg_trgm GIN
index serves). Without these indexes the search reads all the issues.

The indexes on the integration and tenant names live here, not in the
integrations app's migrations: the issue search is what needed them (it
looks the names up first, then the issues by id), and they need the pg_trgm
extension this migration creates, which a migration of the integrations app
would have to create again or depend on this one for. The integration
changelist's search reads the name index too.

SQLite has no pg_trgm: there the migration does nothing and the search reads
the rows, as before. The indexes are built CONCURRENTLY so that the syncs
keep writing issues while they are built (hence `atomic = False`); a build
that fails leaves an INVALID index behind, which `DROP INDEX` removes before
migrating again. Creating the extension needs a role that may: the database
owner may create pg_trgm, a trusted extension since PostgreSQL 13.
"""

from django.db import migrations

# (index, table, column)
INDEXES = [
    ("issue_external_id_trgm", "issues_syncissue", "external_id"),
    ("issue_item_label_trgm", "issues_syncissue", "item_label"),
    ("issue_message_trgm", "issues_syncissue", "message"),
    ("integration_name_trgm", "integrations_integration", "name"),
    ("tenant_name_trgm", "integrations_tenant", "name"),
]


class PostgresSQL(migrations.RunSQL):
    """RunSQL on PostgreSQL; nothing on other databases."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("issues", "0005_new_vendor_account"),
        ("integrations", "0011_new_vendor_accounts"),
    ]

    operations = [
        # Going back leaves the extension: other objects may use it by then.
        PostgresSQL("CREATE EXTENSION IF NOT EXISTS pg_trgm", reverse_sql=migrations.RunSQL.noop),
        *(
            PostgresSQL(
                f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{index}" ON "{table}" USING gin ("{column}" gin_trgm_ops)',
                reverse_sql=f'DROP INDEX CONCURRENTLY IF EXISTS "{index}"',
            )
            for index, table, column in INDEXES
        ),
    ]
