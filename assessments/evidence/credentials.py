"""Linked systems' secrets, encrypted at rest with Fernet keys from settings.

- Keys: ``CREDENTIALS_KEYS``, newest first. ``MultiFernet`` encrypts with the first and
  decrypts with any, so a new key is put in front, ``manage.py credentials_rotate``
  re-encrypts every row with it, and only then is the old key removed.
- Each ciphertext names the row it belongs to (inside the encrypted text, which Fernet
  authenticates): copied to another row, it is refused instead of decrypted.
- A wrong or missing key is a ``CredentialsError`` saying so; ciphertext is never shown
  as if it were the secret, and secrets are never shown at all once saved.
"""

from __future__ import annotations

import base64
import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


class CredentialsError(Exception):
    """Stored credentials that cannot be read with the configured keys (or belong elsewhere)."""


def _derived_key() -> bytes:
    """Development fallback: a Fernet key derived from SECRET_KEY."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"preflight-credentials", info=b"fernet-key-v1")
    return base64.urlsafe_b64encode(hkdf.derive(settings.SECRET_KEY.encode()))


def _fernet() -> MultiFernet:
    keys = settings.CREDENTIALS_KEYS or [_derived_key().decode()]
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError as exc:
        raise CredentialsError(
            "CREDENTIALS_KEYS holds a value that is not a Fernet key (32 url-safe base64-encoded bytes)."
        ) from exc


def _row(row_id: int, scope: str) -> int | str:
    # Linked systems (the first users) keep the bare id; other tables name themselves, so a
    # ciphertext from organisation 5 does not decrypt as linked system 5.
    return row_id if scope == LINKED_SYSTEM else f"{scope}:{row_id}"


LINKED_SYSTEM = "linked_system"


def credentials_encrypt(*, row_id: int, secrets: dict[str, str], scope: str = LINKED_SYSTEM) -> str:
    """The ciphertext to store for ``secrets`` on row ``row_id`` of ``scope`` ("" for none)."""
    if not secrets:
        return ""
    plaintext = json.dumps({"row": _row(row_id, scope), "secrets": secrets}, sort_keys=True).encode()
    return _fernet().encrypt(plaintext).decode()


def credentials_decrypt(*, row_id: int, ciphertext: str, scope: str = LINKED_SYSTEM) -> dict[str, str]:
    if not ciphertext:
        return {}
    try:
        plaintext = _fernet().decrypt(ciphertext.encode())
    except InvalidToken:
        raise CredentialsError(
            "The stored credentials cannot be decrypted with the configured CREDENTIALS_KEYS: a key was "
            "removed before `manage.py credentials_rotate` ran, or the value was altered. Enter them again."
        ) from None
    data = json.loads(plaintext)
    if data.get("row") != _row(row_id, scope):
        raise CredentialsError(f"The stored credentials belong to another {scope.replace('_', ' ')}; enter them again.")
    secrets = data.get("secrets")
    if not isinstance(secrets, dict):
        raise CredentialsError("The stored credentials are not in the expected form; enter them again.")
    return {str(k): str(v) for k, v in secrets.items()}


def credentials_reencrypt(*, ciphertext: str) -> str:
    """The same secrets under the newest key (``MultiFernet.rotate``); "" stays ""."""
    if not ciphertext:
        return ""
    try:
        return _fernet().rotate(ciphertext.encode()).decode()
    except InvalidToken:
        raise CredentialsError("A stored credential cannot be decrypted with any configured key.") from None
