"""Regulation catalogues, per-tier severities and evidence Preflight holds, as the loader reads them."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from assessments.frameworks.catalogues import CATALOGUE_FILES, catalogue
from assessments.frameworks.loader import FRAMEWORK_V1_PATH, FrameworkFileError, framework_parse
from assessments.frameworks.models import MappingScheme, RegulatoryMapping
from assessments.frameworks.services import framework_load


def _v1() -> dict[str, Any]:
    return json.loads(FRAMEWORK_V1_PATH.read_text(encoding="utf-8"))


def _with_first_criterion(**changes: Any) -> bytes:
    """v1 with its first criterion (EV-01, all tiers) changed."""
    data = copy.deepcopy(_v1())
    data["gaps"][0]["criteria"][0].update(changes)
    return json.dumps(data).encode()


def _problems(raw: bytes) -> str:
    with pytest.raises(FrameworkFileError) as excinfo:
        framework_parse(raw)
    return str(excinfo.value)


def test_each_catalogue_holds_its_whole_pinned_edition():
    sizes = {scheme: len(catalogue(scheme).entries) for scheme in CATALOGUE_FILES}
    assert sizes == {"eu_ai_act": 113, "iso_42001": 38, "nist_ai_rmf": 72, "owasp_llm": 10, "gdpr": 99}
    assert set(CATALOGUE_FILES) == set(MappingScheme.values)
    assert all(ref.endswith(":2025") for ref in catalogue("owasp_llm").entries)
    eu = catalogue("eu_ai_act").entries
    assert (eu["Art. 4"].from_tier, eu["Art. 50"].from_tier, eu["Art. 15"].from_tier) == ("minimal", "limited", "high")
    assert "deployer" in eu["Art. 26"].binds and "provider" in eu["Art. 16"].binds


def test_every_v1_mapping_is_in_its_catalogue_and_takes_the_catalogue_title():
    spec = framework_parse(FRAMEWORK_V1_PATH.read_bytes())
    for gap in spec.gaps:
        for criterion in gap.criteria:
            for mapping in criterion.mappings:
                entry = catalogue(mapping.scheme).lookup(mapping.reference)
                assert entry is not None, (criterion.code, mapping.reference)
                assert mapping.title == entry.title
    # The review's misleading paraphrase of MEASURE 1.1 is replaced by the catalogue's title.
    ev02 = next(c for g in spec.gaps for c in g.criteria if c.code == "EV-02")
    measure = next(m for m in ev02.mappings if m.reference == "MEASURE 1.1")
    assert "risk" in measure.title.lower()


@pytest.mark.parametrize(
    ("scheme", "reference", "expected"),
    [
        ("eu_ai_act", "Art. 114", "'Art. 114' is not in the EU AI Act catalogue (fixtures/regulations/eu_ai_act.json)"),
        ("eu_ai_act", "Article 15", "'Article 15' is not in the EU AI Act catalogue"),
        ("iso_42001", "A.6.2.9", "'A.6.2.9' is not in the ISO/IEC 42001 Annex A catalogue"),
        ("nist_ai_rmf", "MEASURE 2.14", "'MEASURE 2.14' is not in the NIST AI RMF catalogue"),
        ("owasp_llm", "LLM06", "'LLM06' is not in the OWASP Top 10 for LLM 2025 catalogue"),
        ("owasp_llm", "LLM06:2026", "'LLM06:2026' is not in"),
        ("gdpr", "Art. 100", "'Art. 100' is not in the GDPR catalogue"),
    ],
)
def test_an_identifier_outside_its_catalogue_is_refused_naming_the_path(scheme, reference, expected):
    message = _problems(_with_first_criterion(mappings=[{"scheme": scheme, "reference": reference}]))
    assert f"gaps[0].criteria[0].mappings[0].reference: {expected}" in message


def test_an_unpinned_owasp_reference_is_told_to_write_the_edition():
    message = _problems(_with_first_criterion(mappings=[{"scheme": "owasp_llm", "reference": "LLM06"}]))
    assert "write the edition, as in LLM06:2025" in message


def test_paragraphs_of_an_article_resolve_to_the_article():
    spec = framework_parse(
        _with_first_criterion(
            mappings=[
                {"scheme": "eu_ai_act", "reference": "Art. 15(4)"},
                {"scheme": "gdpr", "reference": "Art. 28(3)(a)"},
            ]
        )
    )
    first = spec.gaps[0].criteria[0]
    assert [(m.reference, m.title) for m in first.mappings] == [
        ("Art. 15(4)", "Accuracy, robustness and cybersecurity"),
        ("Art. 28(3)(a)", "Processor"),
    ]


@pytest.mark.parametrize(
    ("tiers", "reference", "binds_from"),
    [
        (["minimal"], "Art. 27", "high"),
        (["minimal", "limited"], "Art. 14", "high"),
        (["minimal"], "Art. 50", "limited"),
    ],
)
def test_a_mapping_that_can_never_bind_at_the_criterion_tiers_is_refused(tiers, reference, binds_from):
    raw = _with_first_criterion(
        severity_by_tier={t: "major" for t in tiers},
        mappings=[{"scheme": "eu_ai_act", "reference": reference}],
    )
    data = json.loads(raw)
    for key in ("severity", "risk_tiers"):
        data["gaps"][0]["criteria"][0].pop(key)
    message = _problems(json.dumps(data).encode())
    assert (
        f"gaps[0].criteria[0].mappings[0].reference: {reference} binds only {binds_from}-risk systems and above, "
        f"but the criterion applies only to {', '.join(tiers)}"
    ) in message


@pytest.mark.django_db
def test_a_high_risk_article_on_a_criterion_for_every_tier_is_flagged_as_high_only(org, system_actor):
    framework = framework_load(
        organisation=org, spec=framework_parse(FRAMEWORK_V1_PATH.read_bytes()), actor=system_actor
    )
    art15 = RegulatoryMapping.objects.get(criterion__framework=framework, criterion__code="EV-01", reference="Art. 15")
    assert art15.obligation_from == "high"
    assert art15.note == "an obligation for high-risk pilots only"
    assert art15.applies_as == "An obligation for high-risk pilots only; aligned practice below that tier"
    nist = RegulatoryMapping.objects.get(criterion__framework=framework, criterion__code="EV-01", scheme="nist_ai_rmf")
    assert (nist.obligation_from, nist.note, nist.applies_as) == ("", "", "Aligned practice (a voluntary standard)")
    art50 = RegulatoryMapping.objects.get(criterion__framework=framework, reference="Art. 50")
    assert art50.obligation_from == "limited"
    assert art50.note in ("", "an obligation for limited- and high-risk pilots only")


def _criterion_with(**fields: Any) -> bytes:
    data = copy.deepcopy(_v1())
    criterion = data["gaps"][0]["criteria"][0]
    criterion.pop("severity")
    criterion.pop("risk_tiers")
    criterion.update(fields)
    return json.dumps(data).encode()


def test_severity_by_tier_reads_lowest_tier_first_and_sets_the_tiers_it_applies_to():
    spec = framework_parse(_criterion_with(severity_by_tier={"high": "blocking", "limited": "major"}))
    first = spec.gaps[0].criteria[0]
    assert first.severity_by_tier == {"limited": "major", "high": "blocking"}
    assert first.risk_tiers == ["limited", "high"]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"severity_by_tier": {"extreme": "blocking"}}, ".severity_by_tier: extreme is not a risk tier"),
        ({"severity_by_tier": {"high": "urgent"}}, ".severity_by_tier.high: 'urgent' is not one of"),
        ({"severity_by_tier": {}}, ".severity_by_tier: expected an object"),
        ({"severity_by_tier": "blocking"}, ".severity_by_tier: expected an object"),
        (
            {"severity_by_tier": {"minimal": "blocking", "high": "minor"}},
            ".severity_by_tier: a criterion cannot matter less for a riskier pilot (minimal blocking, high minor)",
        ),
        (
            {"severity_by_tier": {"high": "major"}, "severity": "major"},
            ": give severity_by_tier or severity with risk_tiers, not both",
        ),
        ({"preflight_evidence": "screenshot"}, ".preflight_evidence: 'screenshot' is not one of"),
    ],
)
def test_a_bad_severity_or_held_evidence_names_the_path(fields, expected):
    fields.setdefault("severity_by_tier", {"high": "major"})
    assert f"gaps[0].criteria[0]{expected}" in _problems(_criterion_with(**fields))


def test_one_kind_of_held_evidence_belongs_to_one_criterion():
    data = copy.deepcopy(_v1())
    data["gaps"][0]["criteria"][0]["preflight_evidence"] = "audit_trail"
    data["gaps"][3]["criteria"][4]["preflight_evidence"] = "audit_trail"
    message = _problems(json.dumps(data).encode())
    assert "gaps[3].criteria[4].preflight_evidence: 'audit_trail' is already the evidence of EV-01" in message
