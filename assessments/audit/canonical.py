"""The canonical encoding audit hashes are computed over (see chain.py and the README)."""

from __future__ import annotations

from assessments.audit.chain import (
    GENESIS_HASH,
    HASHED_FIELDS,
    canonical_bytes,
    event_hash,
    format_datetime,
    to_jsonable,
)

__all__ = ["GENESIS_HASH", "HASHED_FIELDS", "canonical_bytes", "event_hash", "format_datetime", "to_jsonable"]
