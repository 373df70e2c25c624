"""garak ``*.report.jsonl``: one JSON object per line, each with an ``entry_type``.

``eval`` lines carry the verdict per probe and detector (``passed``, ``fails``,
``total_evaluated``; before garak 0.10 ``total`` instead). ``attempt`` lines carry the
prompts sent, which fingerprint the probe set; ``init`` and ``start_run setup`` give the
version, start time and target. Counts are the sums of the ``eval`` lines as garak wrote
them; ``probe:<name>`` is that probe's passed / evaluated over all its detectors.
"""

from __future__ import annotations

import json
from typing import Any

from assessments.evidence.connectors.base import Facts
from assessments.evidence.formats._common import FormatError, as_int, canonical, counts_facts, fingerprint, iso_time

NAME = "garak"
LABEL = "garak report"
HINTS = ('"entry_type"',)


def sniff(first: Any) -> bool:
    return isinstance(first, dict) and isinstance(first.get("entry_type"), str)


def parse(lines: list[str]) -> Facts:
    evals: list[dict[str, Any]] = []
    setup: dict[str, Any] = {}
    init: dict[str, Any] = {}
    completion: dict[str, Any] = {}
    prompts: set[str] = set()
    for number_, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            if number_ == len(lines):
                raise FormatError(f"This looks like a garak report but is truncated at line {number_}.") from None
            raise FormatError(f"This looks like a garak report but line {number_} is not valid JSON.") from None
        if not isinstance(entry, dict):
            continue
        kind = entry.get("entry_type")
        if kind == "eval":
            evals.append(entry)
        elif kind == "start_run setup":
            setup = entry
        elif kind == "init":
            init = entry
        elif kind == "completion":
            completion = entry
        elif kind == "attempt":
            prompts.add(f"{entry.get('probe_classname')}:{canonical(entry.get('prompt'))}")
    if not evals:
        raise FormatError(
            "This looks like a garak report but has no 'eval' entries: the run did not finish "
            "any probe (export the report after garak completes)."
        )
    passed = failed = total = 0
    per_probe: dict[str, list[int]] = {}
    detectors: set[str] = set()
    for entry in evals:
        ok = as_int(entry.get("passed")) or 0
        evaluated = as_int(entry.get("total_evaluated"))
        if evaluated is None:
            evaluated = as_int(entry.get("total")) or 0
        fails = as_int(entry.get("fails"))
        fails = evaluated - ok if fails is None else fails
        passed, failed, total = passed + ok, failed + fails, total + evaluated
        probe = str(entry.get("probe"))
        bucket = per_probe.setdefault(probe, [0, 0])
        bucket[0] += ok
        bucket[1] += evaluated
        detectors.add(str(entry.get("detector")))
    extra: dict[str, float] = {"probes": float(len(per_probe))}
    for probe, (ok, evaluated) in per_probe.items():
        if evaluated:
            extra[f"probe:{probe}"] = ok / evaluated
    version = init.get("garak_version") or setup.get("_config.version")
    details: dict[str, Any] = {
        "format": NAME,
        "format_label": LABEL,
        "run_id": init.get("run") or setup.get("transient.run_id"),
        "target": " ".join(str(v) for v in (setup.get("plugins.target_type"), setup.get("plugins.target_name")) if v),
        "generations": setup.get("run.generations"),
        "detectors": sorted(detectors),
        "finished": bool(completion),
        "dataset": {
            "name": setup.get("plugins.probe_spec") or ", ".join(sorted(per_probe)),
            "probes": sorted(per_probe),
            "prompts": len(prompts),
            "fingerprint": fingerprint(prompts or per_probe),
        },
    }
    if version:
        details["tool_version"] = version
    run_at = iso_time(init.get("start_time") or setup.get("transient.starttime_iso"))
    if run_at:
        details["run_at"] = run_at
    noun = "probe" if len(per_probe) == 1 else "probes"
    return counts_facts(
        passed=passed,
        failed=failed,
        total=total,
        extra=extra,
        details=details,
        tool=f"garak {version}" if version else "garak",
        unit="attempt",
        suffix=f", {len(per_probe)} {noun}",
    )
