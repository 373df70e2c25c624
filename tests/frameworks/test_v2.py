"""The default framework v2: its content as the outside review asked, and the move from v1."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from assessments.audit.context import Actor
from assessments.audit.models import AuditEvent
from assessments.frameworks.catalogues import catalogue
from assessments.frameworks.loader import FRAMEWORK_V2_PATH, FRAMEWORKS_DIR, framework_read_file
from assessments.frameworks.models import CheckKind, Criterion, FrameworkStatus, HeldEvidence, RiskTier
from assessments.frameworks.selectors import framework_diff
from assessments.frameworks.services import framework_load
from assessments.pilots.models import Assessment, Pilot
from assessments.pilots.selectors import assessment_move_preview, assessment_open
from assessments.pilots.services import assessment_move, evidence_add, pilot_create, response_update

V2 = framework_read_file(FRAMEWORK_V2_PATH)
CRITERIA = [c for g in V2.gaps for c in g.criteria]
REMOVED_IN_V2 = {"GR-03", "OB-02", "CO-06"}  # merged into EV-05, OB-01 and GR-04/CO-03 (fixtures/frameworks/README.md)


def _open(pilot: Pilot) -> Assessment:
    found = assessment_open(pilot=pilot)
    assert found is not None
    return found


def _blocking(tier: str) -> list[str]:
    return [c.code for c in CRITERIA if c.severity_by_tier.get(tier) == "blocking"]


def test_v2_has_50_to_60_criteria_each_with_guidance_evidence_and_a_mapping():
    assert 50 <= len(CRITERIA) <= 60
    for c in CRITERIA:
        assert c.guidance and c.evidence_expected and c.cost_if_missing, c.code
        assert c.mappings, f"{c.code} has no regulatory mapping"


def test_every_blocking_choice_says_why_it_blocks():
    for c in CRITERIA:
        if "blocking" in c.severity_by_tier.values():
            assert "Why this blocks: " in c.guidance, c.code


def test_blocking_is_calibrated_per_tier_roughly_a_dozen_at_minimal_and_more_at_high():
    minimal, limited, high = _blocking("minimal"), _blocking("limited"), _blocking("high")
    assert 10 <= len(minimal) <= 15
    assert len(minimal) < len(limited) < len(high)
    assert set(minimal) <= set(limited) <= set(high)
    # Legal duties the review found under-weighted now block where the law binds.
    assert "GR-08" in limited  # Article 50 disclosure
    assert {"EV-06", "GV-08", "OW-08", "GV-05"} <= set(high)  # Articles 14, 11, 73 and the audit trail
    # And the must-haves of the essays: fail closed, runtime enforcement.
    assert "GR-07" in minimal and "GV-04" in limited
    # Exceeding the envelope is a stop condition already: cost criteria are not blockers.
    assert not {"CO-01", "CO-03"} & set(high)


def test_the_duplicated_red_team_criteria_are_merged_and_v1_codes_carry_over():
    v1 = framework_read_file(FRAMEWORKS_DIR / "ai-production-readiness-v1.json")
    v1_codes = {c.code for g in v1.gaps for c in g.criteria}
    v2_codes = {c.code for c in CRITERIA}
    assert v1_codes - v2_codes == REMOVED_IN_V2
    readme = (FRAMEWORKS_DIR / "README.md").read_text(encoding="utf-8")
    for code in REMOVED_IN_V2:
        assert code in readme
    redteam = [c.code for c in CRITERIA if c.check_kind == CheckKind.REDTEAM_COVERAGE]
    assert redteam == ["EV-05"]


def test_the_missing_requirements_now_have_criteria():
    titles = " | ".join(c.title.lower() for c in CRITERIA)
    for words in (
        "risk tier", "prohibited", "readiness definition", "go/no-go", "permission", "latency budget",
        "baseline", "provider", "threat model", "canary", "rollback", "incident", "system card",
    ):  # fmt: skip
        assert words in titles, words
    assert any(c.check_kind == CheckKind.LATENCY_BUDGET for c in CRITERIA)


def test_each_kind_of_evidence_preflight_holds_has_exactly_one_criterion():
    held = {c.preflight_evidence: c.code for c in CRITERIA if c.preflight_evidence}
    assert set(held) == set(HeldEvidence.values)


def test_the_doubtful_mappings_of_the_review_are_gone():
    refs = {(c.code, m.scheme, m.reference.split("(")[0]) for c in CRITERIA for m in c.mappings}
    for doubtful in [
        ("EV-06", "nist_ai_rmf", "MEASURE 2.8"),
        ("OB-04", "eu_ai_act", "Art. 72"),
        ("GV-01", "iso_42001", "A.3.2"),
        ("GV-01", "nist_ai_rmf", "GOVERN 2.1"),
        ("GV-02", "eu_ai_act", "Art. 10"),
        ("GV-03", "eu_ai_act", "Art. 10"),
        ("CO-01", "owasp_llm", "LLM10:2025"),
        ("CO-01", "nist_ai_rmf", "MAP 3.2"),
        ("CO-04", "iso_42001", "A.6.1.2"),
        ("OW-06", "iso_42001", "A.4.5"),
    ]:
        assert doubtful not in refs, doubtful
    # The two unmapped criteria are mapped; the two unused OWASP risks are cited.
    assert {c.code for c in CRITERIA if c.code in {"CO-02", "CO-05"} and c.mappings} == {"CO-02", "CO-05"}
    cited = {m.reference for c in CRITERIA for m in c.mappings if m.scheme == "owasp_llm"}
    assert {"LLM04:2025", "LLM08:2025"} <= cited
    assert any(m.scheme == "gdpr" for c in CRITERIA for m in c.mappings)


def test_high_risk_articles_on_lower_tier_criteria_are_flagged_not_claimed():
    eu = catalogue("eu_ai_act")
    flagged = 0
    for c in CRITERIA:
        for m in c.mappings:
            if m.scheme == "eu_ai_act":
                assert m.obligation_from == eu.lookup(m.reference).from_tier
                flagged += m.obligation_from == "high" and "minimal" in c.risk_tiers
    assert flagged > 0


# --- the move from v1 ------------------------------------------------------------------


@pytest.fixture
def v2(framework, system_actor):
    return framework_load(organisation=framework.organisation, spec=V2, actor=system_actor)


def test_v2_loads_as_the_next_version_and_v1_stays_unchanged(framework, v2):
    before = list(Criterion.objects.filter(framework=framework).values_list("code", "severity_high", "title"))
    framework.refresh_from_db()
    assert (v2.version, v2.based_on_id, v2.status) == (2, framework.pk, FrameworkStatus.PUBLISHED)
    assert framework.status == FrameworkStatus.RETIRED
    assert list(Criterion.objects.filter(framework=framework).values_list("code", "severity_high", "title")) == before
    event = AuditEvent.objects.filter(action="framework.loaded", object_id=str(v2.pk)).get()
    assert event.changes["based_on"] == [None, f"{framework.name} v1"]


def test_the_diff_shows_tier_severities_and_mapping_fixes(framework, v2):
    diff = framework_diff(old=framework, new=v2)
    assert {code for code, _ in diff.removed} == REMOVED_IN_V2
    changes = {c.code: c for c in diff.changed}
    assert "Severity by risk tier: minimal blocking → major" in " ".join(changes["CO-01"].details)
    assert "removed NIST AI RMF MEASURE 2.8" in " ".join(changes["EV-06"].details)


def test_moving_a_pilot_to_v2_keeps_answers_and_evidence_by_code_and_lists_the_rest(framework, v2, users):
    owner = Actor.for_user(users["owner"])
    pilot = pilot_create(
        organisation=framework.organisation, actor=owner, name="Claims", risk_tier="high",
        technical_owner=users["owner"],
    )  # fmt: skip
    assessment = _open(pilot=pilot)
    # (pilots created after v2 is published start on v2; this one is put back on v1 to be moved)
    assert assessment.framework_id == v2.pk
    framework.status = FrameworkStatus.PUBLISHED
    framework.save(update_fields=["status"])
    old = assessment_move(assessment=assessment, framework=framework, actor=owner)
    for code in ("EV-01", "GR-03"):
        response = old.responses.get(criterion__code=code)
        response_update(response=response, actor=owner, expected_version=response.version, status="met")
        evidence_add(
            response=response, actor=owner, kind="link", title=f"Proof {code}", url="https://ci.example.com/1",
            effective_date=timezone.localdate() - dt.timedelta(days=2),
        )  # fmt: skip
    preview = assessment_move_preview(assessment=old, framework=v2)
    assert {line.code for line in preview.dropped} == REMOVED_IN_V2
    assert {"GV-10", "GV-12", "EV-09"} <= {line.code for line in preview.new}
    new = assessment_move(assessment=old, framework=v2, actor=owner)
    ev01 = new.responses.get(criterion__code="EV-01")
    assert ev01.status == "met" and [e.title for e in ev01.evidence.all()] == ["Proof EV-01"]
    assert not new.responses.filter(criterion__code="GR-03").exists()
    event = AuditEvent.objects.filter(action="assessment.migrated", object_id=str(new.pk)).get()
    assert event.changes["dropped_criteria"] == [None, 3]


def test_scores_follow_the_tier_severity_of_v2(v2, users):
    owner = Actor.for_user(users["owner"])
    made = {
        tier: pilot_create(
            organisation=v2.organisation, actor=owner, name=f"P {tier}", risk_tier=tier, technical_owner=users["owner"]
        )
        for tier in RiskTier.values
    }
    from assessments.pilots.selectors import scorecard

    counts = {
        tier: len(scorecard(assessment=_open(pilot=p), today=timezone.localdate()).blockers) for tier, p in made.items()
    }
    assert counts == {tier: len(_blocking(tier)) for tier in RiskTier.values}
    assert re.match(r"^unanswered, and Preflight holds no signed joint review", _reason(made["minimal"], "GV-12"))


def _reason(pilot, code: str) -> str:
    from assessments.pilots.selectors import scorecard

    card = scorecard(assessment=_open(pilot=pilot), today=timezone.localdate())
    return {b.code: b.reason for b in card.blockers}[code]


def test_the_pilot_report_names_each_criterion_severity_at_the_pilot_tier(v2, users):
    from assessments.reports.pilot_report import pilot_report_html

    owner = Actor.for_user(users["owner"])
    minimal = pilot_create(
        organisation=v2.organisation, actor=owner, name="Small", risk_tier="minimal", technical_owner=users["owner"]
    )
    html = pilot_report_html(pilot=minimal, today=timezone.localdate())
    # CO-01 is major for every tier in v2, GV-14 does not apply to minimal-risk pilots.
    assert re.search(r"<strong>CO-01</strong>[^<]*<br><span class=\"small muted\">Major ·", html)
    assert re.search(
        r"<strong>GV-14</strong>[^<]*<br><span class=\"small muted\">Does not apply at this risk tier", html
    )
    assert re.search(r"<strong>GV-12</strong>[^<]*<br><span class=\"small muted\">Blocking ·", html)


def test_the_checklist_shows_each_line_at_the_pilot_tier(v2, users, client):
    owner = Actor.for_user(users["owner"])
    minimal = pilot_create(
        organisation=v2.organisation, actor=owner, name="Small", risk_tier="minimal", technical_owner=users["owner"]
    )
    client.force_login(users["owner"])
    page = client.get(f"/pilots/{minimal.pk}/").content.decode()
    line = {
        code: page.split(f'data-code="{code}"', 1)[1].split("</article>", 1)[0] for code in ("CO-01", "GV-14", "EV-01")
    }
    assert '<span class="sev sev-major" title="Severity for minimal-risk pilots">Major</span>' in line["CO-01"]
    assert '<span class="sev sev-na" title="Severity for minimal-risk pilots">Not this tier</span>' in line["GV-14"]
    assert '<span class="sev sev-blocking" title="Severity for minimal-risk pilots">Blocking</span>' in line["EV-01"]
