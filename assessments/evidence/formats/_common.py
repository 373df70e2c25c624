"""Shared pieces of the format parsers: the error type, bounded JSON loading, fingerprints.

Every parser reports problems as ``FormatError`` with a sentence a person can act on, because
the file came from someone's upload or URL and the person fixing it is not a developer of
Preflight.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from assessments.evidence.connectors.base import ConnectorError, Facts

# Uploads and fetched files are capped well above what one evaluation run writes (a few MB)
# so that parsing (which holds the decoded document in memory) stays bounded.
MAX_INPUT_BYTES = 12 * 1024 * 1024


class FormatError(ConnectorError):
    """The bytes are not a results file we can read. Never transient: re-reading the same
    bytes gives the same answer, so the run fails at once with this message."""

    def __init__(self, message: str) -> None:
        super().__init__(message, transient=False)


def check_size(data: bytes) -> None:
    if not data or not data.strip():
        raise FormatError("The file is empty: there are no results to read.")
    if len(data) > MAX_INPUT_BYTES:
        raise FormatError(
            f"The file is {len(data) / 1_048_576:.1f} MB; results files over "
            f"{MAX_INPUT_BYTES // 1_048_576} MB are not read. Export a single run."
        )


def decode_text(data: bytes) -> str:
    """UTF-8 text (a leading BOM dropped), or a FormatError saying the bytes are binary."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(
            f"The file is binary data, not text (byte {exc.start} is not UTF-8); "
            "expected a JSON, JSONL, XML or CSV results file."
        ) from None
    if "\x00" in text[:4096]:
        raise FormatError("The file is binary data, not text; expected a JSON, JSONL, XML or CSV results file.")
    return text


def json_error_message(label: str, text: str, exc: json.JSONDecodeError) -> str:
    """Say whether the document stops early (truncated) or is broken in the middle."""
    at_end = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
    if at_end:
        last_line = text.rstrip().count("\n") + 1
        return f"This looks like {label} but is truncated at line {last_line}: the JSON stops before it is complete."
    return f"This looks like {label} but is not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}."


def load_json(text: str, label: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(json_error_message(label, text, exc)) from None
    except RecursionError:
        raise FormatError(f"This looks like {label} but is nested too deeply to read.") from None


def fingerprint(items: Iterable[str]) -> str:
    """A short, order-independent hash of test-case identities: a changed golden set
    (a case added, removed or reworded) gives a different fingerprint."""
    digest = hashlib.sha256()
    for item in sorted(items):
        digest.update(item.encode("utf-8", "surrogatepass"))
        digest.update(b"\x1f")
    return "sha256:" + digest.hexdigest()[:16]


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def number(value: Any) -> float | None:
    """A finite float from a JSON number (bools and strings are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    result = float(value)
    return result if math.isfinite(result) else None


def as_int(value: Any) -> int | None:
    """An int from a number or a numeric string (XML attributes), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            parsed = float(value.strip())
        except ValueError:
            return None
        return int(parsed) if parsed.is_integer() else None
    return None


def counts_facts(
    *,
    passed: int,
    failed: int,
    errors: int = 0,
    skipped: int = 0,
    total: int | None = None,
    extra: dict[str, float] | None = None,
    details: dict[str, Any],
    tool: str,
    unit: str = "case",
    suffix: str = "",
) -> Facts:
    """Facts for a pass/fail run. ``pass_rate`` is passed over all cases the tool counted
    (skipped and errored cases did not pass), so a run that skips half its cases cannot
    look healthy."""
    counted = total if total is not None else passed + failed + errors + skipped
    metrics: dict[str, float] = {
        "passed": float(passed),
        "failed": float(failed),
        "errors": float(errors),
        "skipped": float(skipped),
        "total": float(counted),
    }
    if counted:
        metrics["pass_rate"] = passed / counted
    metrics.update(extra or {})
    rate = f" ({passed / counted:.2f})" if counted else ""
    noun = unit if counted == 1 else f"{unit}s"
    summary = f"{passed} of {counted} {noun} passed{rate}"
    tail = [
        f"{failed} failed" if failed else "",
        f"{errors} errors" if errors else "",
        f"{skipped} skipped" if skipped else "",
    ]
    tail_text = ", ".join(part for part in tail if part)
    if tail_text:
        summary += f"; {tail_text}"
    return Facts(metrics=metrics, details=details, summary=f"{summary} — {tool}{suffix}")


def tool_name(label: str, version: str | None) -> str:
    return f"{label} {version}" if version else label


def iso_time(value: Any) -> str | None:
    """An ISO 8601 string from what tools write: ISO text (with ``Z`` or `` UTC``) or epoch seconds."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(float(value), tz=UTC).isoformat()
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and value.strip():
        cleaned = value.strip()
        utc = cleaned.endswith(" UTC")
        try:
            parsed = datetime.fromisoformat(cleaned.removesuffix(" UTC"))
        except ValueError:
            return None
        if utc and parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.isoformat()
    return None


def obj(value: Any) -> dict[str, Any]:
    """The value if it is a JSON object, else an empty one: tools omit or null out sections."""
    return value if isinstance(value, dict) else {}
