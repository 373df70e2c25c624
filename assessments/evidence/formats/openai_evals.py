"""OpenAI evals record files (``oaieval ... --record_path run.jsonl``): JSON lines.

The first line is ``{"spec": {...}}``; then events ``{run_id, event_id, sample_id, type, data}``
(``sampling``, ``match``, ``metrics``…); a finished run ends with ``{"final_report": {...}}``.
``match`` events carry ``data.correct`` and give ``passed``/``failed``; the final report's
numbers become ``score:<key>`` and its ``n_samples`` (when present) is ``total``; otherwise
``total`` is the number of distinct samples with events. A log with no final report is a
run that did not finish, and the details and summary say so.
"""

from __future__ import annotations

import json
from typing import Any

from assessments.evidence.connectors.base import Facts
from assessments.evidence.formats._common import FormatError, as_int, counts_facts, fingerprint, iso_time, number, obj

NAME = "openai_evals"
LABEL = "OpenAI evals log"
HINTS = ('"final_report"', '"eval_name"', '"completion_fns"')


def sniff(first: Any) -> bool:
    if not isinstance(first, dict):
        return False
    spec = first.get("spec")
    return (isinstance(spec, dict) and "eval_name" in spec) or "final_report" in first


def parse(lines: list[str]) -> Facts:
    spec: dict[str, Any] = {}
    report: dict[str, Any] | None = None
    samples: set[str] = set()
    correct = incorrect = 0
    for number_, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            where = "truncated at" if number_ == len(lines) else "not valid JSON at"
            raise FormatError(f"This looks like an OpenAI evals log but is {where} line {number_}.") from None
        if not isinstance(entry, dict):
            continue
        if isinstance(entry.get("spec"), dict):
            spec = entry["spec"]
        elif isinstance(entry.get("final_report"), dict):
            report = entry["final_report"]
        elif "type" in entry:
            if entry.get("sample_id") is not None:
                samples.add(str(entry["sample_id"]))
            data = obj(entry.get("data"))
            if entry["type"] == "match" and isinstance(data.get("correct"), bool):
                correct, incorrect = correct + data["correct"], incorrect + (not data["correct"])
    if not spec and report is None:
        raise FormatError("This looks like an OpenAI evals log but has neither a spec line nor a final_report.")
    extra: dict[str, float] = {}
    for key, value in (report or {}).items():
        score = number(value)
        if score is not None and key != "n_samples":
            extra[f"score:{key}"] = score
    reported_total = as_int((report or {}).get("n_samples"))
    total = reported_total if reported_total is not None else len(samples)
    details: dict[str, Any] = {
        "format": NAME,
        "format_label": LABEL,
        "eval_name": spec.get("eval_name"),
        "completion_fns": spec.get("completion_fns"),
        "run_id": spec.get("run_id"),
        "finished": report is not None,
        "dataset": {
            "name": spec.get("eval_name"),
            "samples_jsonl": ((spec.get("run_config") or {}).get("eval_spec") or {})
            .get("args", {})
            .get("samples_jsonl"),
            "fingerprint": fingerprint(samples) if samples else None,
        },
    }
    run_at = iso_time(spec.get("created_at"))
    if run_at:
        details["run_at"] = run_at
    suffix = "" if report is not None else " (no final report: the run did not finish)"
    name = spec.get("eval_name") or "eval"
    if correct or incorrect:
        return counts_facts(
            passed=correct,
            failed=incorrect,
            total=total,
            extra=extra,
            details=details,
            tool=f"OpenAI evals {name}",
            suffix=suffix,
        )
    extra["total"] = float(total)
    head = ", ".join(f"{k.removeprefix('score:')} = {v:.3f}" for k, v in list(extra.items())[:2] if k != "total")
    return Facts(
        metrics=extra,
        details=details,
        summary=f"{head + ' on ' if head else ''}{total} samples — OpenAI evals {name}{suffix}",
    )
