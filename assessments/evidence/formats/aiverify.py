"""AI Verify test results (the ``TestResult`` objects AI Verify's API gateway accepts and its
plugins write): ``{gid, cid, version, startTime, timeTaken, testArguments, output}``, alone or
in a JSON array.

AI Verify algorithms report measurements, not pass/fail, with one exception read here: the
Veritas plugin concludes ``fair``/``unfair`` per protected feature
(``output.fairness.features.<f>.fairness_conclusion``), which gives ``passed``/``failed``.
``total`` is the number of test results. Scores: Veritas's chosen fairness metric per feature
(``score:<cid>/<metric>:<feature>``) and the fairness toolbox's group-comparison metrics
(``score:<cid>/<metric>[class <i>]`` where one value compares all groups).
"""

from __future__ import annotations

from typing import Any

from assessments.evidence.connectors.base import Facts
from assessments.evidence.formats._common import canonical, counts_facts, fingerprint, iso_time, number, obj

NAME = "aiverify"
LABEL = "AI Verify test result"
HINTS = ('"gid"', '"cid"', '"testArguments"')


def _is_result(value: Any) -> bool:
    return isinstance(value, dict) and {"gid", "cid", "output"} <= value.keys()


def sniff(doc: Any) -> bool:
    if isinstance(doc, list):
        return bool(doc) and all(_is_result(item) for item in doc)
    return _is_result(doc)


def _scores(result: dict[str, Any]) -> tuple[dict[str, float], list[str], list[str]]:
    cid = result.get("cid")
    output = obj(result.get("output"))
    metrics: dict[str, float] = {}
    fair: list[str] = []
    unfair: list[str] = []
    fairness = obj(output.get("fairness"))
    init = obj(fairness.get("fairness_init"))
    chosen = init.get("fair_metric_name")
    for feature, info in (fairness.get("features") or {}).items():
        if not isinstance(info, dict):
            continue
        conclusion = str(info.get("fairness_conclusion") or "").lower()
        if conclusion == "fair":
            fair.append(feature)
        elif conclusion == "unfair":
            unfair.append(feature)
        values = (info.get("fair_metric_values") or {}).get(chosen) if chosen else None
        if isinstance(values, list) and values and number(values[0]) is not None:
            metrics[f"score:{cid}/{chosen}:{feature}"] = float(values[0])
    for index, per_class in enumerate(output.get("results") or []):
        if not isinstance(per_class, dict):
            continue
        for metric, groups in per_class.items():
            if isinstance(groups, list) and len(groups) == 1 and isinstance(groups[0], dict):
                value = number(groups[0].get("metric"))
                if value is not None:
                    metrics[f"score:{cid}/{metric}[class {index}]"] = value
    return metrics, fair, unfair


def parse(doc: Any) -> Facts:
    results = doc if isinstance(doc, list) else [doc]
    extra: dict[str, float] = {}
    fair: list[str] = []
    unfair: list[str] = []
    for result in results:
        scores, fair_here, unfair_here = _scores(result)
        extra.update(scores)
        fair.extend(f"{result.get('cid')}:{f}" for f in fair_here)
        unfair.extend(f"{result.get('cid')}:{f}" for f in unfair_here)
    stamps = sorted(s for s in (iso_time(r.get("startTime")) for r in results) if s)
    tests = [f"{r.get('gid')}:{r.get('cid')} {r.get('version') or ''}".strip() for r in results]
    details: dict[str, Any] = {
        "format": NAME,
        "format_label": LABEL,
        "tests": tests,
        "fair_features": fair,
        "unfair_features": unfair,
        "dataset": {
            "name": ", ".join(sorted({str(_arguments(r).get("testDataset", "")) for r in results} - {""})) or None,
            "fingerprint": fingerprint(canonical(_arguments(r)) for r in results),
        },
    }
    versions = sorted({str(r.get("version")) for r in results if r.get("version")})
    if versions:
        details["tool_version"] = ", ".join(versions)
    if stamps:
        details["run_at"] = stamps[0]
    if fair or unfair:
        facts = counts_facts(
            passed=len(fair), failed=len(unfair), extra=extra, details=details, tool="AI Verify", unit="fairness check"
        )
        return Facts(metrics={**facts.metrics, "tests": float(len(results))}, details=details, summary=facts.summary)
    noun = "test result" if len(results) == 1 else "test results"
    return Facts(
        metrics={"total": float(len(results)), **extra},
        details=details,
        summary=f"{len(results)} {noun} ({', '.join(str(r.get('cid')) for r in results)}), "
        f"{len(extra)} scores — AI Verify",
    )


def _arguments(result: dict[str, Any]) -> dict[str, Any]:
    args = result.get("testArguments")
    return obj(args)
