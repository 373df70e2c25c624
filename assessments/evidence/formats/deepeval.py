"""DeepEval test-run JSON (the serialised ``TestRun``, as ``deepeval test run`` caches it and
``deepeval inspect`` reads it).

Keys: ``testCases`` and ``conversationalTestCases`` (each with ``success``), ``metricsScores``
(per metric: ``scores``, ``passes``, ``fails``, ``errors``), ``testPassed``, ``testFailed``,
``runDuration`` and, when judged by a paid model, ``evaluationCost``. Counts are
``testPassed`` / ``testFailed`` as DeepEval reported them (metric evaluation errors are in
details, as DeepEval does not count them as test cases). ``score:<metric>`` is the mean of
that metric's scores. ``evaluationCost`` is the judge's cost, not the application's, so it
is ``evaluation_cost``, never ``cost_total``.
"""

from __future__ import annotations

from typing import Any

from assessments.evidence.connectors.base import Facts
from assessments.evidence.formats._common import FormatError, as_int, canonical, counts_facts, fingerprint, number

NAME = "deepeval"
LABEL = "DeepEval test run"
HINTS = ('"testCases"', '"metricsScores"', '"testPassed"')


def sniff(doc: Any) -> bool:
    return (
        isinstance(doc, dict)
        and isinstance(doc.get("testCases"), list)
        and ("testPassed" in doc or "metricsScores" in doc)
    )


def parse(doc: dict[str, Any]) -> Facts:
    cases = [c for c in doc["testCases"] if isinstance(c, dict)]
    conversational = [c for c in doc.get("conversationalTestCases") or [] if isinstance(c, dict)]
    passed, failed = as_int(doc.get("testPassed")), as_int(doc.get("testFailed"))
    if passed is None or failed is None:
        every = cases + conversational
        if not every:
            raise FormatError(
                "This looks like a DeepEval test run but has neither testPassed/testFailed nor test cases."
            )
        passed = sum(1 for c in every if c.get("success") is True)
        failed = len(every) - passed
    extra: dict[str, float] = {}
    errors = 0
    for entry in doc.get("metricsScores") or []:
        if not isinstance(entry, dict):
            continue
        scores = [s for s in (number(v) for v in entry.get("scores") or []) if s is not None]
        if scores:
            extra[f"score:{entry.get('metric')}"] = sum(scores) / len(scores)
        errors += as_int(entry.get("errors")) or 0
    cost = number(doc.get("evaluationCost"))
    if cost is not None:
        extra["evaluation_cost"] = cost
    durations = [d for d in (number(c.get("runDuration")) for c in cases) if d is not None]
    if durations:
        extra["latency_ms_mean"] = 1000 * sum(durations) / len(durations)
    identities = [canonical(c.get("input")) for c in cases] + [canonical(c.get("turns")) for c in conversational]
    details: dict[str, Any] = {
        "format": NAME,
        "format_label": LABEL,
        "run_duration_s": number(doc.get("runDuration")),
        "metric_errors": errors,
        "metrics": [m.get("metric") for m in doc.get("metricsScores") or [] if isinstance(m, dict)],
        "failing_cases": [c.get("name") for c in cases if c.get("success") is False][:50],
        "dataset": {
            "name": doc.get("identifier") or doc.get("testFile"),
            "cases": len(cases) + len(conversational),
            "fingerprint": fingerprint(identities),
        },
    }
    return counts_facts(
        passed=passed,
        failed=failed,
        total=passed + failed,
        extra=extra,
        details=details,
        tool="DeepEval",
        unit="test case",
    )
