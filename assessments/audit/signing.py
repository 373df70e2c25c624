"""Ed25519 keys and signatures for audit checkpoints."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings


class SigningKeyMissing(RuntimeError):
    """No checkpoint key is configured; run ``manage.py audit_keygen``."""


def signing_key_ensure(path: Path | None = None) -> Path:
    """Create the checkpoint key (mode 0600) if it does not exist yet; return its path."""
    target = Path(path or settings.AUDIT_SIGNING_KEY_PATH)
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return target


def signing_key_load(path: Path | None = None) -> Ed25519PrivateKey:
    target = Path(path or settings.AUDIT_SIGNING_KEY_PATH)
    if not target.exists():
        raise SigningKeyMissing(f"No audit signing key at {target}; run `manage.py audit_keygen`.")
    key = serialization.load_pem_private_key(target.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyMissing(f"{target} is not an Ed25519 private key.")
    return key


def public_key_b64(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def key_id(public: Ed25519PublicKey) -> str:
    """SHA-256 of the raw 32-byte public key, hex."""
    raw = public.public_bytes(encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def signature_valid(*, public_key_b64_text: str, message: bytes, signature_b64: str) -> bool:
    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64_text, validate=True))
        public.verify(base64.b64decode(signature_b64, validate=True), message)
    except (InvalidSignature, ValueError):
        return False
    return True
