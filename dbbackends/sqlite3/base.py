"""SQLite with its real limit on query parameters.

Django 5.2 assumes SQLite's historical limit of 999 parameters and splits
every bulk_create and bulk upsert into batches of 999 / fields rows, so a
page of 1,000 records costs a dozen INSERTs. SQLite has allowed 32,766 since
3.32 (Python 3.11 ships a newer one); with that limit a page is one INSERT,
as on PostgreSQL. (Django 6.0 reads the real limit from the library.)
"""

import sqlite3

from django.db.backends.sqlite3 import base, features

MAX_VARIABLES = 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999


class DatabaseFeatures(features.DatabaseFeatures):
    max_query_params = MAX_VARIABLES


class DatabaseWrapper(base.DatabaseWrapper):
    features_class = DatabaseFeatures
