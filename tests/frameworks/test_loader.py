"""Framework files: the shipped one is sound, malformed ones are refused with a clear error."""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from assessments.frameworks.loader import (
    CODE_PREFIX,
    FRAMEWORK_V1_PATH,
    FrameworkFileError,
    framework_parse,
)
from assessments.frameworks.models import CheckKind, Criterion, Framework, GapKey

MAPPING_PATTERNS = {
    "eu_ai_act": re.compile(r"^Art\. \d{1,3}$"),
    "iso_42001": re.compile(r"^A\.\d{1,2}\.\d{1,2}(\.\d{1,2})?$"),
    "nist_ai_rmf": re.compile(r"^(GOVERN|MAP|MEASURE|MANAGE) \d\.\d{1,2}$"),
    "owasp_llm": re.compile(r"^LLM(0[1-9]|10):2025$"),
}


@pytest.fixture(scope="module")
def raw() -> dict:
    return json.loads(FRAMEWORK_V1_PATH.read_text(encoding="utf-8"))


def test_the_default_framework_has_the_six_gaps_in_order(default_spec):
    assert [g.key for g in default_spec.gaps] == list(GapKey.values)
    assert sum(g.weight for g in default_spec.gaps) == 100


def test_the_default_framework_has_35_to_50_uniquely_coded_criteria(default_spec):
    codes = [c.code for g in default_spec.gaps for c in g.criteria]
    assert 35 <= len(codes) <= 50
    assert len(set(codes)) == len(codes)
    for gap in default_spec.gaps:
        assert gap.criteria, f"{gap.key} has no criteria"
        for criterion in gap.criteria:
            assert criterion.code.startswith(CODE_PREFIX[GapKey(gap.key)] + "-")


def test_the_default_framework_has_blocking_criteria_in_every_gap(default_spec):
    for gap in default_spec.gaps:
        assert any("blocking" in c.severity_by_tier.values() for c in gap.criteria), gap.key
    severities = Counter(s for g in default_spec.gaps for c in g.criteria for s in c.severity_by_tier.values())
    assert set(severities) == {"blocking", "major", "minor"}


def test_the_default_framework_mappings_are_well_formed(default_spec):
    mapped = 0
    for gap in default_spec.gaps:
        for criterion in gap.criteria:
            for mapping in criterion.mappings:
                mapped += 1
                assert MAPPING_PATTERNS[mapping.scheme].match(mapping.reference), (criterion.code, mapping)
                assert mapping.title
    assert mapped >= 40


def test_every_automated_check_kind_is_used(default_spec):
    used = {c.check_kind for g in default_spec.gaps for c in g.criteria if c.check_kind}
    assert used == set(CheckKind.values) - {CheckKind.LATENCY_BUDGET}  # v1 predates the latency check


def _broken(raw: dict, mutate) -> bytes:
    data = copy.deepcopy(raw)
    mutate(data)
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["gaps"].pop(), "expected exactly the six gaps"),
        (lambda d: d["gaps"][0]["criteria"][0].update(severity="urgent"), "gaps[0].criteria[0].severity: 'urgent'"),
        (
            lambda d: d["gaps"][1]["criteria"][0].update(code=d["gaps"][1]["criteria"][1]["code"]),
            "is used twice",
        ),
        (lambda d: d["gaps"][2]["criteria"][0].update(code="EV-99"), "should start with GR-"),
        (lambda d: d["gaps"][0]["criteria"][0].pop("guidance"), "gaps[0].criteria[0].guidance: is required"),
        (lambda d: d["gaps"][0]["criteria"][0].update(risk_tiers=["extreme"]), "risk_tiers"),
        (lambda d: d["gaps"][0]["criteria"][0].update(max_evidence_age_days="soon"), "max_evidence_age_days"),
        (lambda d: d["gaps"][0]["criteria"][0].update(check_kind="vibes"), "check_kind: 'vibes'"),
        (lambda d: d["gaps"][0].update(weight=0), "gaps[0].weight: 0 is outside"),
        (lambda d: d.update(version="one"), "framework.version"),
        (
            lambda d: d["gaps"][0]["criteria"][0].update(
                mappings=[{"scheme": "eu_ai_act", "reference": "Art. 500", "title": "x"}]
            ),
            "gaps[0].criteria[0].mappings[0].reference: 'Art. 500' is not in the EU AI Act catalogue",
        ),
    ],
)
def test_a_malformed_framework_names_the_problem(raw, mutate, expected):
    with pytest.raises(FrameworkFileError) as excinfo:
        framework_parse(_broken(raw, mutate))
    assert expected in str(excinfo.value)


@pytest.mark.parametrize("content", [b"", b"{not json", b"[]", b"\xff\xfe\x00"])
def test_garbage_is_refused(content):
    with pytest.raises(FrameworkFileError):
        framework_parse(content)


def test_loading_a_malformed_file_changes_nothing(framework, raw, tmp_path: Path):
    before = (Framework.objects.count(), Criterion.objects.count())
    bad = tmp_path / "bad.json"
    bad.write_bytes(_broken(raw, lambda d: d["gaps"][3]["criteria"][2].update(severity="")))
    with pytest.raises(CommandError) as excinfo:
        call_command("load_framework", str(bad), "--org", "acme")
    assert "nothing changed" in str(excinfo.value)
    assert "gaps[3].criteria[2].severity" in str(excinfo.value)
    assert (Framework.objects.count(), Criterion.objects.count()) == before


def test_loading_the_same_file_twice_is_idempotent(org, tmp_path: Path):
    out = StringIO()
    call_command("load_framework", str(FRAMEWORK_V1_PATH), "--org", "acme", stdout=out)
    call_command("load_framework", str(FRAMEWORK_V1_PATH), "--org", "acme", stdout=out)
    assert Framework.objects.filter(organisation=org).count() == 1
    assert "published" in out.getvalue().lower()


def test_a_changed_file_claiming_a_loaded_version_is_refused(org, raw, tmp_path: Path):
    call_command("load_framework", str(FRAMEWORK_V1_PATH), "--org", "acme", stdout=StringIO())
    before = list(Criterion.objects.values_list("code", "title"))
    changed = tmp_path / "v1-edited.json"
    changed.write_bytes(_broken(raw, lambda d: d["gaps"][0]["criteria"][0].update(title="Quietly renamed")))
    with pytest.raises(CommandError) as excinfo:
        call_command("load_framework", str(changed), "--org", "acme")
    assert "AI production readiness v1 is already loaded and its criteria differ" in str(excinfo.value)
    assert "give the file the next version number" in str(excinfo.value)
    assert list(Criterion.objects.values_list("code", "title")) == before
