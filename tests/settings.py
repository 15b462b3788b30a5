"""Test overrides on top of the real settings module.

The suite runs in development mode (switched on here, explicitly, as the
settings module requires); tests of production behaviour override settings
or start a subprocess with a production environment.
"""

import os

os.environ.setdefault("DEBUG", "on")

from syncconsole.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Tasks run inline unless a test starts a real qcluster on purpose.
Q_CLUSTER = {**Q_CLUSTER, "sync": True}  # noqa: F405
VENDOR_BACKOFF_SECONDS = 0.05
VENDOR_READ_TIMEOUT = 1.5
VENDOR_CONNECT_TIMEOUT = 1

# The limits' counters: a Redis database of their own when Redis is used
# (tests clear the cache between tests; the broker's database is left alone).
if REDIS_URL:  # noqa: F405
    from urllib.parse import urlsplit, urlunsplit

    _parts = urlsplit(REDIS_URL)  # noqa: F405
    CACHES = {  # noqa: F405
        "default": {**CACHES["default"], "LOCATION": urlunsplit(_parts._replace(path="/14"))}  # noqa: F405
    }

# SQLite tests use a file in WAL mode, not the shared in-memory database:
# there a reader meets "database table is locked" at once while another
# thread writes (the browser tests watch a sync run in a worker thread),
# where a file database waits on the busy timeout as production does.
if DATABASES["default"]["ENGINE"] == "dbbackends.sqlite3":  # noqa: F405
    import tempfile

    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.path.join(tempfile.gettempdir(), f"syncconsole-test-{os.getpid()}.sqlite3")
    }
