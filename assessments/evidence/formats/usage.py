"""Usage and cost exports, read into cost per task, totals, token percentiles and a daily series.

Three shapes, recognised from the content:

``openai_usage`` — the OpenAI organisation usage and costs API (``GET /v1/organization/usage/
completions`` and ``GET /v1/organization/costs``): a ``{"object": "page", "data": [buckets]}``
page, or a JSON array of such pages (save each page you fetched into one array to combine
usage and costs). Costs come from ``organization.costs.result`` (``amount.value``), requests
and tokens from ``organization.usage.*.result`` (``num_model_requests``, ``input_tokens``,
``output_tokens``). The API knows requests, not tasks, so one model request counts as one task,
and token percentiles are over each bucket's tokens per request. Cost per task needs both
pages; with costs alone only ``cost_total`` and the daily cost are known.

``langfuse`` — a Langfuse trace export (see ``langfuse``): one trace is one task, with the
trace's cost and the tokens of its observations.

``csv`` — Preflight's generic request log, one row per model request, header required::

    timestamp,task_id,input_tokens,output_tokens,cost_usd
    2025-11-03T09:12:00Z,claim-1841,1234,310,0.0042

``timestamp`` (ISO 8601 or a date) and ``cost_usd`` are required. ``task_id`` groups requests
into one task (a task may span several requests); without it each row is a task.
``input_tokens`` and ``output_tokens`` (or a single ``total_tokens``) are optional. Extra
columns are ignored.

Metrics: ``tasks``, ``cost_total``, ``cost_per_task`` (= cost_total / tasks),
``tokens_p50`` and ``tokens_p95`` (tokens per task), ``monthly_projection`` (cost_per_task times
the pilot's expected monthly volume, when known) and ``envelope_ratio`` (cost_per_task divided by the
pilot's cost envelope per task, when known; above 1 means over budget). Details: ``format``,
``format_label``, ``series`` = ``[[ISO date, cost_per_task], ...]`` per day, ``period``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any

from assessments.evidence.connectors.base import Facts
from assessments.evidence.formats import langfuse
from assessments.evidence.formats._common import FormatError, check_size, decode_text, json_error_message, number, obj

USAGE_FORMATS = {
    "openai_usage": "OpenAI usage and costs API",
    "langfuse": "Langfuse trace export",
    "csv": "CSV request log",
}
CSV_COLUMNS = ("timestamp", "task_id", "input_tokens", "output_tokens", "cost_usd")
_TRIED = "OpenAI usage/costs API JSON, Langfuse trace export, CSV with columns " + ",".join(CSV_COLUMNS)


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (the common spreadsheet/numpy definition)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class _Tally:
    """Per-task totals and per-day totals, shared by the three readers."""

    def __init__(self) -> None:
        self.task_cost: dict[str, float] = defaultdict(float)
        self.task_tokens: dict[str, float] = defaultdict(float)
        self.day_cost: dict[date, float] = defaultdict(float)
        self.day_tasks: dict[date, set[str] | int] = {}
        self.token_samples: list[float] | None = None  # set when tokens are known per bucket only
        self.tasks_counted: int | None = None  # set when tasks are counts, not ids
        self.cost_known = False
        self.tokens_known = False


def _is_openai_page(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("object") == "page" and isinstance(doc.get("data"), list)


def _openai(doc: Any) -> tuple[dict[str, float], dict[str, Any]]:
    pages = doc if isinstance(doc, list) else [doc]
    cost_total = 0.0
    requests = 0
    per_request_tokens: list[float] = []
    day_cost: dict[date, float] = defaultdict(float)
    day_requests: dict[date, int] = defaultdict(int)
    has_cost = has_usage = False
    currencies: set[str] = set()
    more = False
    for page in pages:
        more = more or bool(page.get("has_more"))
        for bucket in page["data"]:
            if not isinstance(bucket, dict):
                continue
            start = number(bucket.get("start_time"))
            day = datetime.fromtimestamp(start, tz=UTC).date() if start is not None else None
            for result in bucket.get("results") or []:
                if not isinstance(result, dict):
                    continue
                kind = str(result.get("object", ""))
                if kind == "organization.costs.result":
                    amount = obj(result.get("amount"))
                    value = number(amount.get("value"))
                    if value is not None:
                        has_cost = True
                        cost_total += value
                        currencies.add(str(amount.get("currency", "usd")))
                        if day:
                            day_cost[day] += value
                elif kind.startswith("organization.usage."):
                    count = int(number(result.get("num_model_requests")) or 0)
                    if not count:
                        continue
                    has_usage = True
                    requests += count
                    tokens = (number(result.get("input_tokens")) or 0) + (number(result.get("output_tokens")) or 0)
                    per_request_tokens.append(tokens / count)
                    if day:
                        day_requests[day] += count
    if not has_cost and not has_usage:
        raise FormatError("This is an OpenAI API page but holds no usage or cost results (is it another endpoint?).")
    metrics: dict[str, float] = {}
    if has_usage:
        metrics["tasks"] = float(requests)
        metrics["tokens_p50"] = percentile(per_request_tokens, 0.5)
        metrics["tokens_p95"] = percentile(per_request_tokens, 0.95)
    if has_cost:
        metrics["cost_total"] = cost_total
    if has_cost and has_usage and requests:
        metrics["cost_per_task"] = cost_total / requests
    series = [[day.isoformat(), day_cost[day] / day_requests[day]] for day in sorted(day_cost) if day_requests.get(day)]
    details: dict[str, Any] = {
        "series": series,
        "series_cost": [[day.isoformat(), day_cost[day]] for day in sorted(day_cost)],
        "currency": ", ".join(sorted(currencies)) or None,
        "task_unit": "model request",
        "incomplete": more,
    }
    if more:
        details["note"] = "The API said has_more: later pages were not in this export."
    if has_usage and not has_cost:
        details["note"] = "Usage without costs: add the /organization/costs page to get cost per task."
    days = sorted(set(day_cost) | set(day_requests))
    if days:
        details["period"] = [days[0].isoformat(), days[-1].isoformat()]
    return metrics, details


def _langfuse(doc: Any) -> tuple[dict[str, float], dict[str, Any]]:
    traces = langfuse.traces(doc)
    if not traces:
        raise FormatError("This looks like a Langfuse export but holds no traces.")
    costs = [t.cost or 0.0 for t in traces]
    tokens = [t.tokens for t in traces if t.tokens is not None]
    day_cost: dict[date, float] = defaultdict(float)
    day_tasks: dict[date, int] = defaultdict(int)
    for trace, cost in zip(traces, costs, strict=True):
        if trace.timestamp:
            day = datetime.fromisoformat(trace.timestamp).date()
            day_cost[day] += cost
            day_tasks[day] += 1
    metrics = {"tasks": float(len(traces)), "cost_total": sum(costs), "cost_per_task": sum(costs) / len(traces)}
    if tokens:
        metrics["tokens_p50"] = percentile(tokens, 0.5)
        metrics["tokens_p95"] = percentile(tokens, 0.95)
    days = sorted(day_tasks)
    details: dict[str, Any] = {
        "series": [[day.isoformat(), day_cost[day] / day_tasks[day]] for day in days],
        "task_unit": "trace",
    }
    if days:
        details["period"] = [days[0].isoformat(), days[-1].isoformat()]
    return metrics, details


def _day(value: str, row: int) -> date:
    text = value.strip()
    try:
        return datetime.fromisoformat(text).date()
    except ValueError:
        pass
    try:
        return datetime.fromtimestamp(float(text), tz=UTC).date()
    except (ValueError, OverflowError, OSError):
        raise FormatError(f"CSV row {row}: timestamp {text[:40]!r} is not an ISO date or time.") from None


def _csv(text: str) -> tuple[dict[str, float], dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip().lower() for c in reader.fieldnames or []]
    reader.fieldnames = columns
    missing = [c for c in ("timestamp", "cost_usd") if c not in columns]
    if missing:
        raise FormatError(
            f"This CSV lacks the column(s) {', '.join(missing)}; a usage CSV needs a header with "
            f"{','.join(CSV_COLUMNS)} (task_id and the token columns are optional)."
        )
    task_cost: dict[str, float] = defaultdict(float)
    task_tokens: dict[str, float] = defaultdict(float)
    task_day: dict[str, date] = {}
    has_tokens = False
    for row_number, row in enumerate(reader, start=2):
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue
        try:
            cost = float((row.get("cost_usd") or "0").strip() or 0)
        except ValueError:
            raise FormatError(f"CSV row {row_number}: cost_usd {row.get('cost_usd')!r} is not a number.") from None
        if not math.isfinite(cost):
            raise FormatError(f"CSV row {row_number}: cost_usd is not a finite number.")
        day = _day(row.get("timestamp") or "", row_number)
        task = (row.get("task_id") or "").strip() or f"row-{row_number}"
        task_cost[task] += cost
        task_day.setdefault(task, day)
        task_day[task] = min(task_day[task], day)
        tokens = 0.0
        for column in ("input_tokens", "output_tokens", "total_tokens"):
            raw = (row.get(column) or "").strip()
            if raw:
                try:
                    tokens += float(raw)
                except ValueError:
                    raise FormatError(f"CSV row {row_number}: {column} {raw!r} is not a number.") from None
                has_tokens = True
        task_tokens[task] += tokens
    if not task_cost:
        raise FormatError("This usage CSV has a header but no rows.")
    total = sum(task_cost.values())
    metrics = {"tasks": float(len(task_cost)), "cost_total": total, "cost_per_task": total / len(task_cost)}
    if has_tokens:
        metrics["tokens_p50"] = percentile(list(task_tokens.values()), 0.5)
        metrics["tokens_p95"] = percentile(list(task_tokens.values()), 0.95)
    day_cost: dict[date, float] = defaultdict(float)
    day_tasks: dict[date, int] = defaultdict(int)
    for task, day in task_day.items():
        day_cost[day] += task_cost[task]
        day_tasks[day] += 1
    days = sorted(day_tasks)
    return metrics, {
        "series": [[day.isoformat(), day_cost[day] / day_tasks[day]] for day in days],
        "period": [days[0].isoformat(), days[-1].isoformat()],
        "task_unit": "task_id" if "task_id" in columns else "row",
    }


def usage_parse(data: bytes, *, expected_monthly_volume: int | None, cost_envelope_per_task: float | None) -> Facts:
    """Facts from a usage or cost export; projections use what the pilot says it expects."""
    check_size(data)
    text = decode_text(data)
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            doc = json.loads(stripped)
        except json.JSONDecodeError as exc:
            label = "an OpenAI usage export" if '"object"' in stripped[:2048] else "a usage export (JSON)"
            raise FormatError(json_error_message(label, stripped, exc)) from None
        except RecursionError:
            raise FormatError("This JSON is nested too deeply to be a usage export.") from None
        if _is_openai_page(doc) or (isinstance(doc, list) and doc and all(_is_openai_page(p) for p in doc)):
            name = "openai_usage"
            metrics, details = _openai(doc)
        elif langfuse.sniff(doc):
            name = "langfuse"
            metrics, details = _langfuse(doc)
        else:
            raise FormatError(f"This JSON is not a recognised usage export (tried {_TRIED}).")
    elif stripped[:1] == "<":
        raise FormatError(f"This is HTML or XML, not a usage export (tried {_TRIED}).")
    else:
        first = stripped.split("\n", 1)[0].lower()
        if "," not in first or "timestamp" not in first:
            raise FormatError(f"This is not a recognised usage export (tried {_TRIED}).")
        name = "csv"
        metrics, details = _csv(stripped)
    per_task = metrics.get("cost_per_task")
    if per_task is not None and expected_monthly_volume is not None:
        metrics["monthly_projection"] = per_task * expected_monthly_volume
    if per_task is not None and cost_envelope_per_task:
        metrics["envelope_ratio"] = per_task / cost_envelope_per_task
    details = {"format": name, "format_label": USAGE_FORMATS[name], **details}
    return Facts(metrics=metrics, details=details, summary=_summary(metrics, details))


def _money(value: float) -> str:
    return f"${value:,.2f}" if value >= 0.995 else f"${value:.3g}"


def _summary(metrics: dict[str, float], details: dict[str, Any]) -> str:
    parts: list[str] = []
    if "cost_per_task" in metrics:
        parts.append(f"{_money(metrics['cost_per_task'])} per task over {int(metrics['tasks'])} tasks")
    elif "tasks" in metrics:
        parts.append(f"{int(metrics['tasks'])} tasks, no costs in the export")
    if "cost_total" in metrics:
        parts.append(f"{_money(metrics['cost_total'])} in total")
    if "monthly_projection" in metrics:
        parts.append(f"about {_money(metrics['monthly_projection'])} a month at the expected volume")
    if "envelope_ratio" in metrics:
        parts.append(f"{metrics['envelope_ratio']:.0%} of the cost envelope")
    return "; ".join(parts) + f" — {details['format_label']}"
