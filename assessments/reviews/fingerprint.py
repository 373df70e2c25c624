"""The fingerprint of what a review signs: a SHA-256 over a canonical snapshot.

The snapshot holds exactly what reviewers judge: the framework version, every answer
(status and justification), each piece of evidence by identity (and, for files, the
SHA-256 of the bytes), the latest verdict of each automated check, the value metric
and the stop conditions. Who owns a criterion and when it is due are planning, not
substance, so they are left out: reassigning work does not undo a sign-off.

The canonical bytes follow the audit chain's rules (keys sorted, no whitespace, UTF-8,
decimals as strings), so the same state always hashes the same on any database.
``snapshot_diff`` turns two snapshots into sentences a reviewer can read: criterion
codes, titles and statuses, never field names or ids.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from assessments.evidence.selectors import CheckOutcome, check_outcomes
from assessments.pilots.models import Assessment, Evidence, Response, ResponseStatus, StopCondition

SNAPSHOT_FORMAT = 1
CHECK_WORDS = {"pass": "passing", "fail": "failing", "error": "unable to read its system", "pending": "not run yet"}


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def snapshots(*, assessment_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The snapshot of each assessment, in five queries however many are asked for."""
    if not assessment_ids:
        return {}
    assessments = list(
        Assessment.objects.filter(pk__in=assessment_ids).select_related("framework", "pilot").order_by("pk")
    )
    evidence: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for response_id, pk, kind, title, sha256 in (
        Evidence.objects.filter(response__assessment_id__in=assessment_ids)
        .order_by("pk")
        .values_list("response_id", "pk", "kind", "title", "sha256")
    ):
        evidence[response_id].append({"id": pk, "kind": kind, "title": title, "sha256": sha256 or None})
    checks = check_outcomes(assessment_ids=assessment_ids)
    stops: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for stop in StopCondition.objects.filter(pilot__assessments__id__in=assessment_ids).distinct().order_by("pk"):
        stops[stop.pilot_id].append(
            {
                "id": stop.pk,
                "condition": stop.condition,
                "metric": stop.metric,
                "comparator": stop.get_comparator_display(),
                "threshold": _text(stop.threshold),
                "status": stop.status,
            }
        )
    criteria: dict[int, dict[str, Any]] = defaultdict(dict)
    pilot_of = {a.pk: a.pilot_id for a in assessments}
    for rid, aid, criterion_id, code, title, status, justification in (
        Response.objects.filter(assessment_id__in=assessment_ids)
        .order_by("criterion__gap__order", "criterion__order")
        .values_list(
            "pk", "assessment_id", "criterion_id", "criterion__code", "criterion__title", "status", "justification"
        )
    ):
        found: list[CheckOutcome] = checks.get((pilot_of[aid], criterion_id), [])
        criteria[aid][code] = {
            "title": title,
            "status": status,
            "justification": justification,
            "evidence": evidence.get(rid, []),
            "checks": [{"id": c.check_id, "name": c.name, "state": c.state} for c in sorted(found, key=_by_id)],
        }
    result = {}
    for assessment in assessments:
        pilot = assessment.pilot
        result[assessment.pk] = {
            "format": SNAPSHOT_FORMAT,
            "framework": f"{assessment.framework.name} v{assessment.framework.version}",
            "value_metric": {
                "name": pilot.value_metric_name,
                "unit": pilot.value_metric_unit,
                "baseline": _text(pilot.value_baseline),
                "target": _text(pilot.value_target),
                "current": _text(pilot.value_current),
            },
            "stop_conditions": stops.get(pilot.pk, []),
            "criteria": criteria.get(assessment.pk, {}),
        }
    return result


def _by_id(outcome: CheckOutcome) -> int:
    return outcome.check_id


def canonical(snapshot: dict[str, Any]) -> bytes:
    return json.dumps(snapshot, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def fingerprint_of(snapshot: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(snapshot)).hexdigest()


def fingerprint_current(*, assessment_id: int) -> tuple[str, dict[str, Any]]:
    """The fingerprint of an assessment as it is now, and the snapshot it hashes."""
    snapshot = snapshots(assessment_ids=[assessment_id])[assessment_id]
    return fingerprint_of(snapshot), snapshot


@dataclass(frozen=True)
class DiffLine:
    """One difference between what was signed and what is there now, in words."""

    subject: str  # "EV-03 Golden set pass rate", "Value metric", "Stop condition “…”", "Framework"
    change: str  # "Met → Partly met", "evidence “Run log” added"


def _status(value: str) -> str:
    return ResponseStatus(value).label if value in ResponseStatus.values else value


def _criterion_lines(code: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[DiffLine]:
    if old is None and new is not None:
        return [DiffLine(f"{code} {new['title']}", f"added to the assessment ({_status(new['status'])})")]
    if new is None and old is not None:
        return [DiffLine(f"{code} {old['title']}", "no longer in the assessment")]
    assert old is not None and new is not None
    subject = f"{code} {new['title']}"
    lines = []
    if old["status"] != new["status"]:
        lines.append(DiffLine(subject, f"{_status(old['status'])} → {_status(new['status'])}"))
    if old["justification"] != new["justification"]:
        lines.append(DiffLine(subject, "justification rewritten"))
    before = {e["id"]: e for e in old["evidence"]}
    after = {e["id"]: e for e in new["evidence"]}
    lines += [DiffLine(subject, f"evidence “{e['title']}” added") for i, e in after.items() if i not in before]
    lines += [DiffLine(subject, f"evidence “{e['title']}” removed") for i, e in before.items() if i not in after]
    lines += [
        DiffLine(subject, f"evidence “{e['title']}” changed")
        for i, e in after.items()
        if i in before and before[i] != e
    ]
    was = {c["id"]: c for c in old["checks"]}
    for check in new["checks"]:
        prior = was.pop(check["id"], None)
        if prior is None:
            lines.append(DiffLine(subject, f"check “{check['name']}” added ({CHECK_WORDS[check['state']]})"))
        elif prior["state"] != check["state"]:
            lines.append(
                DiffLine(
                    subject,
                    f"check “{check['name']}” {CHECK_WORDS[prior['state']]} → {CHECK_WORDS[check['state']]}",
                )
            )
    lines += [DiffLine(subject, f"check “{c['name']}” removed") for c in was.values()]
    return lines


VALUE_LABELS = {"name": "name", "unit": "unit", "baseline": "baseline", "target": "target", "current": "current value"}


def snapshot_diff(old: dict[str, Any], new: dict[str, Any]) -> list[DiffLine]:
    """What changed from ``old`` (as signed) to ``new`` (now), in the order the checklist reads."""
    lines: list[DiffLine] = []
    if old.get("framework") != new.get("framework"):
        lines.append(DiffLine("Framework", f"{old.get('framework')} → {new.get('framework')}"))
    old_criteria, new_criteria = old.get("criteria", {}), new.get("criteria", {})
    for code in [*new_criteria, *(c for c in old_criteria if c not in new_criteria)]:
        lines += _criterion_lines(code, old_criteria.get(code), new_criteria.get(code))
    old_value, new_value = old.get("value_metric", {}), new.get("value_metric", {})
    for key, label in VALUE_LABELS.items():
        if old_value.get(key) != new_value.get(key):
            shown = [v if v not in (None, "") else "not set" for v in (old_value.get(key), new_value.get(key))]
            lines.append(DiffLine("Value metric", f"{label} {shown[0]} → {shown[1]}"))
    old_stops = {s["id"]: s for s in old.get("stop_conditions", [])}
    for stop in new.get("stop_conditions", []):
        prior = old_stops.pop(stop["id"], None)
        subject = f"Stop condition “{stop['condition']}”"
        if prior is None:
            lines.append(DiffLine(subject, "added"))
        elif prior["status"] != stop["status"]:
            lines.append(DiffLine(subject, f"{prior['status'].title()} → {stop['status'].title()}"))
        elif prior != stop:
            lines.append(DiffLine(subject, f"changed to {stop['metric']} {stop['comparator']} {stop['threshold']}"))
    lines += [DiffLine(f"Stop condition “{s['condition']}”", "removed") for s in old_stops.values()]
    return lines
