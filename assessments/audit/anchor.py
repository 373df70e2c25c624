"""Write-once copies of checkpoints outside the database: the anchor directory.

Each checkpoint is written once as ``<org>-<sequence>-<signed at>.json`` and its
RFC 3161 token, when it has one, as ``<same name>.tsr`` (DER, readable by
``openssl ts``). Files are created with ``O_EXCL`` and never overwritten; point
``AUDIT_ANCHOR_DIR`` at storage the database's administrators cannot rewrite
(another host's mount, a WORM bucket synchronised from it, …).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings


class AnchorConflict(RuntimeError):
    """An anchor file of that name already holds something else; it is left as it is."""


def anchor_dir() -> Path:
    """``AUDIT_ANCHOR_DIR``, or the checkpoint folder under its older name ``AUDIT_CHECKPOINT_DIR``."""
    return Path(settings.AUDIT_ANCHOR_DIR or settings.AUDIT_CHECKPOINT_DIR)


def anchor_stem(payload: dict[str, Any]) -> str:
    moment = re.sub(r"[^0-9TZ]", "", str(payload["signed_at"]))
    return f"{payload['organisation']}-{int(payload['sequence']):010d}-{moment}"


def anchor_bytes(payload: dict[str, Any]) -> bytes:
    return (json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def write_once(path: Path, data: bytes) -> bool:
    """Create ``path`` holding ``data``; True if written now, False if it already held exactly that."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    except FileExistsError:
        if path.read_bytes() == data:
            return False
        raise AnchorConflict(f"{path.name} already exists with other content; it was not overwritten") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return True


def anchor_checkpoint(*, payload: dict[str, Any], token: bytes | None = None) -> Path:
    """Write a checkpoint (and its token) to the anchor directory, once."""
    directory = anchor_dir()
    target = directory / f"{anchor_stem(payload)}.json"
    write_once(target, anchor_bytes(payload))
    if token:
        write_once(directory / f"{anchor_stem(payload)}.tsr", token)
    return target


@dataclass(frozen=True)
class Anchored:
    """One anchored checkpoint file: its payload (or why it cannot be read) and its token, if any."""

    name: str
    sequence: int
    payload: dict[str, Any] | None
    token: bytes | None
    error: str = ""


def anchored_checkpoints(*, organisation: str) -> Iterator[Anchored]:
    """The organisation's anchored checkpoints in sequence order, read one at a time.

    Files written before anchoring existed (``<org>-<sequence>-<id>.json``) are read too.
    """
    directory = anchor_dir()
    if not directory.is_dir():
        return
    pattern = re.compile(rf"{re.escape(organisation)}-(\d{{10,}})-[0-9A-Za-z]+\.json")
    names = sorted(
        (int(match.group(1)), entry.name) for entry in os.scandir(directory) if (match := pattern.fullmatch(entry.name))
    )
    for sequence, name in names:
        path = directory / name
        token_path = path.with_suffix(".tsr")
        token = token_path.read_bytes() if token_path.is_file() else None
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            yield Anchored(name, sequence, None, token, f"cannot be read: {exc}")
            continue
        if not isinstance(payload, dict) or payload.get("organisation") != organisation:
            yield Anchored(name, sequence, None, token, "is not a checkpoint of this organisation")
            continue
        yield Anchored(name, sequence, payload, token)
