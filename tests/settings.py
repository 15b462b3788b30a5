"""Test overrides on top of the real settings module."""

from syncconsole.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Tasks run inline unless a test starts a real qcluster on purpose.
Q_CLUSTER = {**Q_CLUSTER, "sync": True}  # noqa: F405
VENDOR_BACKOFF_SECONDS = 0.05
VENDOR_READ_TIMEOUT = 1.5
VENDOR_CONNECT_TIMEOUT = 1
