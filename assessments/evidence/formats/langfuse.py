"""Langfuse trace exports: what the Langfuse UI and public API give for traces.

Read shapes (all from Langfuse itself): the single-trace export ``{trace: {...}, observations:
[...]}``; a trace with full details (``GET /api/public/traces/{id}``: a trace whose
``observations`` are objects); a page of traces (``GET /api/public/traces``: ``{data: [...],
meta: {...}}``, each with ``totalCost`` and ``latency``); or a JSON array of any of these.
Per trace: cost is the trace's ``totalCost`` or the sum of its observations' ``totalCost``;
tokens are the sum of observations' ``totalUsage`` (or ``usageDetails.total``); latency is the
trace's ``latency`` in seconds. Scores may be objects, ids, or (in older exports) a Python-repr
string of a list, which is read with ``ast.literal_eval`` (literals only, never code).

As eval results a trace export has no pass/fail: the facts are ``total`` (traces),
``errors`` (traces with an ERROR-level observation), ``score:<name>`` (mean of numeric trace
scores), ``cost_total`` and ``latency_ms_mean``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from assessments.evidence.connectors.base import Facts
from assessments.evidence.formats._common import FormatError, canonical, fingerprint, iso_time, number

NAME = "langfuse"
LABEL = "Langfuse trace export"
HINTS = ('"projectId"', '"usageDetails"', '"costDetails"')


@dataclass
class Trace:
    id: str
    name: str | None
    timestamp: str | None
    latency_s: float | None
    cost: float | None
    tokens: float | None
    error: bool
    identity: str
    scores: dict[str, list[float]] = field(default_factory=dict)


def _is_trace(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and "id" in value
        and "timestamp" in value
        and ("projectId" in value or "latency" in value)
    )


def sniff(doc: Any) -> bool:
    if isinstance(doc, list):
        return bool(doc) and all(sniff(item) or _is_trace(item) for item in doc[:20])
    if not isinstance(doc, dict):
        return False
    if _is_trace(doc.get("trace")) and isinstance(doc.get("observations"), list):
        return True
    if isinstance(doc.get("data"), list) and isinstance(doc.get("meta"), dict):
        return bool(doc["data"]) and all(_is_trace(item) for item in doc["data"][:20])
    return _is_trace(doc) and isinstance(doc.get("observations"), list)


def _score_list(value: Any) -> list[Any]:
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError, RecursionError, MemoryError, TypeError):
            return []
    return value if isinstance(value, list) else []


def _trace(trace: dict[str, Any], observations: list[Any]) -> Trace:
    objects = [o for o in observations if isinstance(o, dict)]
    costs = [c for c in (number(o.get("totalCost", o.get("calculatedTotalCost"))) for o in objects) if c is not None]
    tokens: list[float] = []
    for o in objects:
        usage = o.get("usageDetails") if isinstance(o.get("usageDetails"), dict) else o.get("usage")
        value = number(o.get("totalUsage"))
        if value is None and isinstance(usage, dict):
            value = number(usage.get("total"))
        if value is not None:
            tokens.append(value)
    scores: dict[str, list[float]] = {}
    for score in _score_list(trace.get("scores")):
        if isinstance(score, dict) and number(score.get("value")) is not None:
            scores.setdefault(str(score.get("name")), []).append(float(score["value"]))
    own_cost = number(trace.get("totalCost"))
    return Trace(
        id=str(trace.get("id")),
        name=trace.get("name"),
        timestamp=iso_time(trace.get("timestamp")),
        latency_s=number(trace.get("latency")),
        cost=own_cost if own_cost is not None else (sum(costs) if costs else None),
        tokens=sum(tokens) if tokens else None,
        error=any(o.get("level") == "ERROR" for o in objects),
        identity=f"{trace.get('name')}:{canonical(trace.get('input'))}",
        scores=scores,
    )


def traces(doc: Any) -> list[Trace]:
    """Every trace in an export, in the order given."""
    if isinstance(doc, list):
        found: list[Trace] = []
        for item in doc:
            found.extend(traces(item) if not _is_trace(item) or "observations" in item else [_trace(item, [])])
        return found
    if isinstance(doc, dict) and _is_trace(doc.get("trace")):
        return [_trace(doc["trace"], doc.get("observations") or doc["trace"].get("observations") or [])]
    if isinstance(doc, dict) and isinstance(doc.get("data"), list):
        return [_trace(item, []) for item in doc["data"] if _is_trace(item)]
    if _is_trace(doc):
        return [_trace(doc, doc.get("observations") or [])]
    return []


def parse(doc: Any) -> Facts:
    found = traces(doc)
    if not found:
        raise FormatError("This looks like a Langfuse export but holds no traces.")
    metrics: dict[str, float] = {"total": float(len(found)), "errors": float(sum(t.error for t in found))}
    names: dict[str, list[float]] = {}
    for trace in found:
        for name, values in trace.scores.items():
            names.setdefault(name, []).extend(values)
    for name, values in names.items():
        metrics[f"score:{name}"] = sum(values) / len(values)
    costs = [t.cost for t in found if t.cost is not None]
    if costs:
        metrics["cost_total"] = sum(costs)
    latencies = [t.latency_s for t in found if t.latency_s is not None]
    if latencies:
        metrics["latency_ms_mean"] = 1000 * sum(latencies) / len(latencies)
    stamps = sorted(t.timestamp for t in found if t.timestamp)
    details: dict[str, Any] = {
        "format": NAME,
        "format_label": LABEL,
        "trace_names": sorted({t.name for t in found if t.name})[:20],
        "dataset": {"name": None, "traces": len(found), "fingerprint": fingerprint(t.identity for t in found)},
    }
    if stamps:
        details["run_at"] = stamps[0]
    noun = "trace" if len(found) == 1 else "traces"
    parts = [f"{len(found)} {noun}"]
    if "cost_total" in metrics:
        parts.append(f"cost {metrics['cost_total']:.6f}")
    parts.extend(f"{name} {sum(v) / len(v):.2f}" for name, v in list(names.items())[:3])
    return Facts(metrics=metrics, details=details, summary=", ".join(parts) + " — Langfuse")
