"""Inspect AI eval logs: the JSON log (``--log-format json``) and the ``.eval`` zip archive.

A JSON log is ``{version, status, eval, plan, results, stats, samples, reductions}``. An
``.eval`` file is a zip holding ``header.json`` (the same fields without samples) and
``summaries.json`` (one summary per sample, with its scores); an unfinished run keeps its
summaries in ``_journal/summaries/*.json`` instead. ``total`` is ``results.total_samples`` as
Inspect reported it. A sample passes when its first scorer's value is CORRECT (``"C"``),
``True`` or a number ≥ 1 — Inspect's own value-to-float mapping — and counts as an error
when Inspect recorded an error for it. ``score:<scorer>/<metric>`` are Inspect's aggregates.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from assessments.evidence.connectors.base import Facts
from assessments.evidence.formats._common import (
    FormatError,
    as_int,
    canonical,
    counts_facts,
    fingerprint,
    iso_time,
    number,
    obj,
)

NAME = "inspect_ai"
LABEL = "Inspect AI log"
HINTS = ('"task_registry_name"', '"completed_samples"', '"eval_id"')
_MEMBER_LIMIT = 32 * 1024 * 1024


def sniff(doc: Any) -> bool:
    return (
        isinstance(doc, dict)
        and isinstance(doc.get("eval"), dict)
        and "task" in doc["eval"]
        and "status" in doc
        and "version" in doc
    )


def _passes(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().upper() == "C"
    score = number(value)
    return score is not None and score >= 1


def _read_member(archive: zipfile.ZipFile, name: str) -> Any:
    info = archive.getinfo(name)
    if info.file_size > _MEMBER_LIMIT:
        raise FormatError(f"This Inspect AI .eval log's {name} is {info.file_size} bytes unpacked; too large to read.")
    with archive.open(info) as member:
        raw = member.read(_MEMBER_LIMIT + 1)
    if len(raw) > _MEMBER_LIMIT:
        raise FormatError(f"This Inspect AI .eval log's {name} unpacks to more than it declares; refusing to read it.")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise FormatError(f"This Inspect AI .eval log's {name} is not valid JSON.") from None


def parse_archive(data: bytes) -> Facts:
    """The ``.eval`` zip: header plus sample summaries, read member by member with size caps
    (a zip's declared sizes are checked before anything is unpacked)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = archive.namelist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError):
        raise FormatError(
            "This is a zip archive but it is damaged or truncated; an Inspect AI .eval log cannot be read from it."
        ) from None
    if "header.json" not in names:
        raise FormatError(
            "This is a zip archive but not an Inspect AI .eval log (it has no header.json); "
            "upload the results file itself rather than an archive."
        )
    try:
        header = _read_member(archive, "header.json")
        if "summaries.json" in names:
            summaries = _read_member(archive, "summaries.json")
        else:
            summaries = []
            for name in sorted(n for n in names if n.startswith("_journal/summaries/")):
                part = _read_member(archive, name)
                summaries.extend(part if isinstance(part, list) else [])
    except (zipfile.BadZipFile, OSError, EOFError):
        raise FormatError("This Inspect AI .eval log is damaged: a member could not be unpacked.") from None
    if not sniff(header):
        raise FormatError("This zip has a header.json but it is not an Inspect AI log header.")
    return parse(header, samples=summaries if isinstance(summaries, list) else [], label=f"{LABEL} (.eval archive)")


def parse(doc: dict[str, Any], *, samples: list[Any] | None = None, label: str = f"{LABEL} (JSON)") -> Facts:
    spec = doc["eval"]
    results = obj(doc.get("results"))
    sample_list = [s for s in (doc.get("samples") if samples is None else samples) or [] if isinstance(s, dict)]
    scores = results.get("scores") if isinstance(results, dict) else None
    extra: dict[str, float] = {}
    primary: str | None = None
    for scorer in scores or []:
        if not isinstance(scorer, dict):
            continue
        primary = primary or scorer.get("name")
        for metric_name, metric in (scorer.get("metrics") or {}).items():
            value = number(metric.get("value")) if isinstance(metric, dict) else None
            if value is not None:
                extra[f"score:{scorer.get('name')}/{metric_name}"] = value
    passed = failed = errors = 0
    for sample in sample_list:
        if sample.get("error"):
            errors += 1
            continue
        sample_scores = obj(sample.get("scores"))
        score = sample_scores.get(primary) if primary in sample_scores else next(iter(sample_scores.values()), None)
        if isinstance(score, dict) and _passes(score.get("value")):
            passed += 1
        else:
            failed += 1
    reported = as_int(results.get("total_samples"))
    total = reported if reported is not None else len(sample_list)
    dataset = obj(spec.get("dataset"))
    stats = obj(doc.get("stats"))
    packages = obj(spec.get("packages"))
    version = packages.get("inspect_ai")
    ids = [f"{s.get('id')}:{canonical(s.get('input'))}" for s in sample_list] or [
        str(i) for i in dataset.get("sample_ids") or []
    ]
    details: dict[str, Any] = {
        "format": NAME,
        "format_label": label,
        "status": doc.get("status"),
        "task": spec.get("task"),
        "model": spec.get("model"),
        "completed_samples": results.get("completed_samples") if isinstance(results, dict) else None,
        "dataset": {
            "name": dataset.get("name"),
            "location": dataset.get("location"),
            "samples_in_dataset": dataset.get("samples"),
            "fingerprint": fingerprint(ids),
        },
        "model_usage": stats.get("model_usage"),
    }
    if doc.get("error"):
        details["error"] = str((doc["error"] or {}).get("message", doc["error"]))[:500]
    if version:
        details["tool_version"] = version
    run_at = iso_time(stats.get("started_at") or spec.get("created"))
    if run_at:
        details["run_at"] = run_at
    status = doc.get("status")
    tool = f"Inspect AI {version}" if version else "Inspect AI"
    suffix = f" (run {status})" if status and status != "success" else ""
    if not sample_list:
        # A header-only log (samples not logged): Inspect's aggregates are all there is.
        extra["total"] = float(total)
        head = ", ".join(f"{k.removeprefix('score:')} = {v:.3f}" for k, v in list(extra.items())[:3])
        return Facts(
            metrics=extra, details=details, summary=f"{head or 'no scores'} on {total} samples — {tool}{suffix}"
        )
    return counts_facts(
        passed=passed,
        failed=failed,
        errors=errors,
        total=total,
        extra=extra,
        details=details,
        tool=tool,
        unit="sample",
        suffix=suffix,
    )
