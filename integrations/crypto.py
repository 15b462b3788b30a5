"""Credentials at rest: MultiFernet over CREDENTIALS_KEYS, newest key first.

Encrypting always uses the newest key; decrypting tries each key, so old
ciphertexts stay readable until `manage.py rotate_credentials` re-encrypts
them under the newest one.
"""

import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

__all__ = ["InvalidToken", "decrypt_json", "encrypt_json", "rotate"]


def _fernet():
    try:
        return MultiFernet([Fernet(key) for key in settings.CREDENTIALS_KEYS])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "CREDENTIALS_KEYS must be url-safe base64 Fernet keys of 32 bytes."
        ) from exc


def encrypt_json(values):
    return _fernet().encrypt(json.dumps(values, sort_keys=True).encode()).decode()


def decrypt_json(ciphertext):
    return json.loads(_fernet().decrypt(ciphertext.encode()))


def rotate(ciphertext):
    """The same plaintext, encrypted under the newest key."""
    return _fernet().rotate(ciphertext.encode()).decode()
