"""Usage and cost exports (OpenAI usage/costs API, Langfuse traces, a CSV request log) from an
uploaded file or a URL, projected against what the pilot expects to spend."""

from __future__ import annotations

from typing import ClassVar

from assessments.evidence.connectors.base import ConnectorError, Facts, Fetched, Source, register
from assessments.evidence.connectors.eval_results import source_bytes
from assessments.evidence.formats import usage_parse


def _context_number(source: Source, key: str) -> float | None:
    """A positive number the pilot gave, or None when it gave none (no projection then)."""
    value = source.context.get(key)
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConnectorError(f"The pilot's {key.replace('_', ' ')} ({value!r}) is not a number.") from None
    return number if number > 0 else None


def _facts(source: Source, data: bytes) -> Facts:
    volume = _context_number(source, "expected_monthly_volume")
    return usage_parse(
        data,
        expected_monthly_volume=round(volume) if volume is not None else None,
        cost_envelope_per_task=_context_number(source, "cost_envelope_per_task"),
    )


@register
class UsageCostConnector:
    kind: ClassVar[str] = "usage_cost"
    label: ClassVar[str] = "Usage and cost export"

    def test_connection(self, source: Source) -> str:
        data, origin = source_bytes(source)
        facts = _facts(source, data)
        tasks = facts.metrics.get("tasks")
        count = f", {int(tasks)} tasks" if tasks is not None else ""
        return f"Reached {origin}: {facts.details['format_label']}{count}."

    def fetch(self, source: Source) -> Fetched:
        data, _ = source_bytes(source)
        return Fetched(facts=_facts(source, data), payload=data)
