"""The pilot readiness report: what leadership reads instead of logging in.

``pilot_report_context`` gathers everything the template shows, read-only, from the same
selectors the pilot page uses (scorecard, gate, checks, conditions, overrides), so the
report and the page cannot disagree. The renderer turns it into a PDF in the sandbox.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.template.loader import render_to_string
from django.utils import timezone

from assessments.audit.models import AuditChainHead, AuditCheckpoint
from assessments.frameworks.charts import radar_svg
from assessments.pilots.models import Pilot
from assessments.pilots.selectors import ChecklistRow, assessment_open, checklist
from assessments.reports.charts import gap_bars_svg
from assessments.reports.models import Report, ReportKind, ReportStatus
from assessments.reports.renderers import Rendered, ReportUnavailable, register
from assessments.reports.sandbox import BASE_URL, pdf_render
from assessments.reviews.fingerprint import fingerprint_current
from assessments.reviews.selectors import conditions_of, decisions_of, overrides_of, person, readiness_gate

TOP_BLOCKERS = 5


@dataclass(frozen=True)
class BlockerLine:
    code: str
    title: str
    reason: str
    owner: str
    due_date: dt.date | None


@dataclass(frozen=True)
class GapSection:
    key: str
    name: str
    score: int | None
    rows: list[ChecklistRow]


@dataclass(frozen=True)
class SignoffLine:
    role: str
    people: str
    decision: str
    signed_at: dt.datetime | None
    fingerprint: str
    note: str
    must_change: str = ""


def _owner(user: User | None) -> str:
    return person(user) if user is not None else "no owner named"


def _previous(pilot: Pilot, report: Report | None) -> Report | None:
    done = Report.objects.filter(pilot=pilot, kind=ReportKind.PILOT, status=ReportStatus.DONE)
    if report is not None and report.pk:
        done = done.exclude(pk=report.pk).filter(requested_at__lte=report.requested_at)
    return done.order_by("-finished_at", "-pk").first()


def _movement(overall: int | None, previous: Report | None) -> str:
    if previous is None:
        return "This is the first readiness report for this pilot."
    before = previous.summary.get("overall") if isinstance(previous.summary, dict) else None
    when = timezone.localtime(previous.finished_at or previous.requested_at).strftime("%-d %B %Y")
    name = f"report R-{previous.pk} of {when}"
    if overall is None or not isinstance(before, int):
        return f"The previous {name} has no comparable score."
    delta = overall - before
    if delta == 0:
        return f"Unchanged since the previous {name} ({before})."
    points = f"{abs(delta)} point{'s' if abs(delta) != 1 else ''}"
    return f"{'Up' if delta > 0 else 'Down'} {points} since the previous {name} ({before})."


def _signoffs(assessment_id: int, roles: list[Any]) -> list[SignoffLine]:
    latest_fingerprint: dict[str, str] = {}
    for decision in decisions_of(assessment_ids=[assessment_id]):
        latest_fingerprint[decision.role] = decision.fingerprint
    lines = []
    for role in roles:
        if role.decision is None:
            continue
        note = ""
        if role.stale:
            note = "Signed an earlier version: the assessment changed after this signature."
        elif role.only_owners:
            note = "Signed only by the pilot's own owners, so it does not count."
        lines.append(
            SignoffLine(
                role=role.label,
                people=", ".join(role.signers),
                decision=role.decision_label,
                signed_at=role.signed_at,
                fingerprint=latest_fingerprint.get(role.role, ""),
                note=note,
                must_change=role.must_change,
            )
        )
    return lines


def pilot_report_context(*, pilot: Pilot, report: Report | None = None, today: dt.date | None = None) -> dict[str, Any]:
    """Everything the pilot report shows, as of ``today``."""
    today = today or timezone.localdate()
    assessment = assessment_open(pilot=pilot)
    if assessment is None:
        raise ReportUnavailable(f"{pilot.name} has no open assessment to report on.")
    data = checklist(assessment=assessment, today=today, with_evidence=True)
    card = data.card
    gate = readiness_gate(assessment=assessment, card=card, rows=data.rows, today=today)
    row_of = {r.criterion_row.code: r for r in data.rows}
    blockers = [
        BlockerLine(
            code=b.code,
            title=b.title,
            reason=b.reason,
            owner=_owner(row_of[b.code].response.owner if b.code in row_of else None),
            due_date=row_of[b.code].response.due_date if b.code in row_of else None,
        )
        for b in card.blockers
    ]
    sections = [
        GapSection(key=g.key, name=g.name, score=g.score, rows=[r for r in data.rows if r.gap_key == g.key])
        for g in card.gaps
    ]
    previous = _previous(pilot, report)
    head = AuditChainHead.objects.filter(organisation_id=pilot.organisation_id).first()
    checkpoint = (
        AuditCheckpoint.objects.filter(organisation_id=pilot.organisation_id).order_by("-sequence", "-pk").first()
    )
    conditions = list(conditions_of(pilot=pilot))
    generated = report.requested_at if report is not None else timezone.now()
    return {
        "pilot": pilot,
        "organisation": pilot.organisation,
        "assessment": assessment,
        "framework": assessment.framework,
        "report": report,
        "report_label": f"R-{report.pk}" if report is not None and report.pk else "preview",
        "generated_at": generated,
        "today": today,
        "card": card,
        "gate": gate,
        "ready": gate.ready,
        "reasons": gate.reasons,
        "blockers": blockers,
        "top_blockers": blockers[:TOP_BLOCKERS],
        "more_blockers": max(0, len(blockers) - TOP_BLOCKERS),
        "movement": _movement(card.overall, previous),
        "radar": radar_svg(card.gaps, size=300),
        "gap_bars": gap_bars_svg(card.gaps),
        "sections": sections,
        "stop_conditions": list(pilot.stop_conditions.all()),
        "open_conditions": [c for c in conditions if c.status == "open"],
        "closed_conditions": [c for c in conditions if c.status != "open"],
        "signoffs": _signoffs(assessment.pk, gate.roles),
        "unsigned_roles": [r.label for r in gate.roles if r.decision is None],
        "overrides": list(overrides_of(pilot=pilot).order_by("created_at")),
        "chain_head": head,
        "checkpoint": checkpoint,
        # The gate computes it only when someone has signed; the report always names it.
        "fingerprint": gate.fingerprint or fingerprint_current(assessment_id=assessment.pk)[0],
    }


def pilot_report_html(*, pilot: Pilot, report: Report | None = None, today: dt.date | None = None) -> str:
    return render_to_string("reports/pilot.html", pilot_report_context(pilot=pilot, report=report, today=today))


@register(ReportKind.PILOT)
def render_pilot(report: Report) -> Rendered:
    assert report.pilot is not None
    context = pilot_report_context(pilot=report.pilot, report=report)
    pdf = pdf_render(render_to_string("reports/pilot.html", context), base_url=BASE_URL)
    date = timezone.localtime(report.requested_at).strftime("%Y-%m-%d")
    return Rendered(
        content=pdf,
        filename=f"{report.pilot.slug}-readiness-{date}-R{report.pk}.pdf",
        content_type="application/pdf",
        summary={"overall": context["card"].overall, "ready": context["ready"], "blockers": len(context["blockers"])},
    )
