"""promptfoo ``promptfoo eval -o results.json`` output.

The file is ``{evalId, results: {version, timestamp, prompts, results, stats}, config,
shareableUrl, metadata}``. ``results.version`` 3 is what promptfoo 0.x writes today; version 2
(older releases, with a ``table``) has the same ``results``/``stats`` shape, so both are read.
Counts come from ``results.stats`` (successes, failures, errors) exactly as promptfoo
reported them; named scores are promptfoo's own per-prompt averages (sum / count).
"""

from __future__ import annotations

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
    tool_name,
)

NAME = "promptfoo"
LABEL = "promptfoo results"
HINTS = ('"promptfooVersion"', '"evalId"', '"shareableUrl"')


def sniff(doc: Any) -> bool:
    if not isinstance(doc, dict):
        return False
    results = doc.get("results")
    return (
        isinstance(results, dict)
        and "stats" in results
        and isinstance(results.get("results"), list)
        and ("evalId" in doc or "version" in results or "config" in doc)
    )


def _named_scores(prompts: list[Any], results: list[Any]) -> dict[str, float]:
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for prompt in prompts:
        metrics = prompt.get("metrics") if isinstance(prompt, dict) else None
        if not isinstance(metrics, dict):
            continue
        scores = metrics.get("namedScores") or {}
        score_counts = metrics.get("namedScoresCount") or {}
        for name, value in scores.items():
            if number(value) is None:
                continue
            sums[name] = sums.get(name, 0.0) + float(value)
            counts[name] = counts.get(name, 0.0) + float(number(score_counts.get(name)) or 1)
    if not sums:
        for result in results:
            for name, value in (result.get("namedScores") or {}).items() if isinstance(result, dict) else ():
                if number(value) is not None:
                    sums[name] = sums.get(name, 0.0) + float(value)
                    counts[name] = counts.get(name, 0.0) + 1
    return {f"score:{name}": sums[name] / counts[name] for name in sums if counts[name]}


def parse(doc: dict[str, Any]) -> Facts:
    block = doc["results"]
    stats = block.get("stats")
    if not isinstance(stats, dict):
        raise FormatError("This looks like promptfoo results but has no results.stats to count from.")
    passed, failed, errors = (as_int(stats.get(key)) for key in ("successes", "failures", "errors"))
    if passed is None or failed is None:
        raise FormatError("This looks like promptfoo results but results.stats has no successes/failures counts.")
    errors = errors or 0
    results = [r for r in block.get("results") or [] if isinstance(r, dict)]
    prompts = [p for p in block.get("prompts") or [] if isinstance(p, dict)]
    metadata = obj(doc.get("metadata"))
    version = metadata.get("promptfooVersion") if isinstance(metadata, dict) else None
    extra = _named_scores(prompts, results)
    costs = [number(r.get("cost")) for r in results]
    known_costs = [c for c in costs if c is not None]
    if known_costs:
        extra["cost_total"] = sum(known_costs)
    latencies = [number(r.get("latencyMs")) for r in results]
    known_latencies = [value for value in latencies if value is not None]
    if known_latencies:
        extra["latency_ms_mean"] = sum(known_latencies) / len(known_latencies)

    config = obj(doc.get("config"))
    case_keys = {canonical(r.get("vars") if "vars" in r else r.get("testCase", {}).get("vars")) for r in results}
    details: dict[str, Any] = {
        "format": NAME,
        "format_label": LABEL,
        "results_version": block.get("version"),
        "eval_id": doc.get("evalId"),
        "description": config.get("description") if isinstance(config, dict) else None,
        "providers": sorted({str((r.get("provider") or {}).get("id", "")) for r in results if r.get("provider")}),
        "prompts": [p.get("label") or p.get("raw", "")[:80] for p in prompts][:20],
        "dataset": {
            "name": config.get("description") if isinstance(config, dict) else None,
            "cases": len(case_keys),
            "fingerprint": fingerprint(case_keys),
        },
        "failure_reasons": [
            str((r.get("gradingResult") or {}).get("reason") or r.get("error") or "")[:300]
            for r in results
            if not r.get("success")
        ][:20],
    }
    if version:
        details["tool_version"] = version
    run_at = iso_time(block.get("timestamp"))
    if run_at:
        details["run_at"] = run_at
    return counts_facts(
        passed=passed, failed=failed, errors=errors, extra=extra, details=details, tool=tool_name("promptfoo", version)
    )
