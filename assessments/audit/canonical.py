"""The canonical encoding that audit hashes are computed over.

Kept free of Django so the standalone verifier (benchmarks and tools/) can share
the exact same rules; the README specifies them for re-implementers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import Decimal
from typing import Any

HASHED_FIELDS = (
    "organisation",
    "sequence",
    "occurred_at",
    "actor_type",
    "actor_id",
    "actor_label",
    "action",
    "object_type",
    "object_id",
    "pilot_id",
    "changes",
    "request_id",
    "prev_hash",
)


def to_jsonable(value: Any) -> Any:
    """Normalise a Python value to the JSON subset the chain stores.

    Datetimes become UTC ISO 8601 with microseconds and ``Z``; dates ISO 8601;
    Decimals their plain string; floats are refused because their text form is
    not stable across languages.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        raise TypeError("floats are not allowed in audit events; use Decimal or str")
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return str(value)


def format_datetime(value: dt.datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("audit datetimes must be timezone-aware")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_bytes(record: dict[str, Any]) -> bytes:
    """UTF-8 JSON of the hashed fields: keys sorted, no whitespace, non-ASCII kept as-is."""
    body = {name: record[name] for name in HASHED_FIELDS}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def event_hash(record: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(record)).hexdigest()
