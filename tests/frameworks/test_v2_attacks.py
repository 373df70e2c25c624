"""Framework v2 attacked from outside: hostile framework files, hostile editor posts, rows
tampered with in raw SQL, evidence Preflight holds that someone tries to fake, and hostile
criterion text on every page that shows it."""

from __future__ import annotations

import copy
import datetime as dt
import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from assessments.audit.context import Actor
from assessments.audit.models import AuditEvent
from assessments.audit.signing import signing_key_ensure
from assessments.audit.verify import checkpoint_create
from assessments.frameworks.loader import (
    FRAMEWORK_V1_PATH,
    FRAMEWORK_V2_PATH,
    FrameworkFileError,
    framework_parse,
)
from assessments.frameworks.models import Criterion, Framework, Gap, RegulatoryMapping
from assessments.frameworks.services import (
    criterion_create,
    criterion_update,
    framework_copy,
    framework_load,
    framework_publish,
)
from assessments.organisations.models import Organisation, Role
from assessments.organisations.services import membership_grant, user_create
from assessments.pilots.models import Assessment, AssessmentScore, Pilot
from assessments.pilots.selectors import assessment_open, checklist, scorecard
from assessments.pilots.services import assessment_move, pilot_create, pilot_update
from assessments.reports.models import Report, ReportKind, ReportStatus
from assessments.reviews.models import SIGNING_ROLES
from assessments.reviews.selectors import readiness_gate
from assessments.reviews.services import decision_record, meeting_cancel, meeting_schedule
from tests.frameworks.test_views import _criterion_data as _form

SYSTEM = Actor.system("tests")
NON_ADMIN_ROLES = [role for role in Role.values if role != Role.ADMIN]
PREFIX = "gaps[0].criteria[0]"


# --------------------------------------------------------------------------------------------
# 1. The loader: hostile framework files
# --------------------------------------------------------------------------------------------


def _v1() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FRAMEWORK_V1_PATH.read_text(encoding="utf-8"))
    return data


def _v2() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FRAMEWORK_V2_PATH.read_text(encoding="utf-8"))
    return data


def _v2_first(**changes: Any) -> dict[str, Any]:
    """v2 with its first criterion (EV-01, which uses severity_by_tier) changed; ... removes a key."""
    data = copy.deepcopy(_v2())
    criterion = data["gaps"][0]["criteria"][0]
    for key, value in changes.items():
        if value is ...:
            criterion.pop(key, None)
        else:
            criterion[key] = value
    return data


def _problems(data: dict[str, Any] | str | bytes) -> str:
    raw = data if isinstance(data, str | bytes) else json.dumps(data)
    with pytest.raises(FrameworkFileError) as excinfo:
        framework_parse(raw)
    return str(excinfo.value)


@pytest.mark.parametrize("value", [["major"], 3, None, "major", True, {}, {"high": {"severity": "major"}}])
def test_a_severity_by_tier_of_the_wrong_type_is_refused_naming_its_path(value):
    message = _problems(_v2_first(severity_by_tier=value))
    assert f"{PREFIX}.severity_by_tier" in message


@pytest.mark.parametrize("value", [None, 2, ["major"], {"x": 1}, "", "Major", " major"])
def test_a_tier_severity_of_the_wrong_type_or_spelling_is_refused_naming_the_tier(value):
    message = _problems(_v2_first(severity_by_tier={"minimal": "minor", "high": value}))
    assert f"{PREFIX}.severity_by_tier.high: {value!r} is not one of blocking, major, minor" in message


def test_an_explicit_null_severity_by_tier_is_not_read_as_absent():
    """``"severity_by_tier": null`` beside v1's fields must not silently switch format."""
    data = _v2_first(severity_by_tier=None, severity="major", risk_tiers=["high"])
    message = _problems(data)
    assert f"{PREFIX}: give severity_by_tier or severity with risk_tiers, not both" in message
    assert f"{PREFIX}.severity_by_tier: expected an object" in _problems(_v2_first(severity_by_tier=None))


@pytest.mark.parametrize(
    ("key", "shown"),
    [("High", "'High'"), (" high ", "' high '"), ("HIGH", "'HIGH'"), ("high\u200b", "'high\\u200b'")],
)
def test_a_tier_key_in_the_wrong_case_or_with_spaces_is_named_visibly(key, shown):
    message = _problems(_v2_first(severity_by_tier={"minimal": "minor", key: "major"}))
    assert f"{PREFIX}.severity_by_tier: {shown} is not a risk tier (minimal, limited, high)" in message
    assert "did you mean 'high'" in message


@pytest.mark.parametrize(
    "changes",
    [
        {"severity": "major"},
        {"risk_tiers": ["high"]},
        {"severity": "major", "risk_tiers": ["minimal", "limited", "high"]},
    ],
)
def test_both_severity_formats_at_once_are_refused(changes):
    message = _problems(_v2_first(**changes))
    assert f"{PREFIX}: give severity_by_tier or severity with risk_tiers, not both" in message


def test_a_severity_that_falls_as_the_tier_rises_is_refused():
    message = _problems(_v2_first(severity_by_tier={"minimal": "blocking", "high": "minor"}))
    assert f"{PREFIX}.severity_by_tier: a criterion cannot matter less for a riskier pilot" in message


@pytest.mark.parametrize(
    ("scheme", "reference", "expected"),
    [
        ("eu_ai_act", "Art. 15(", "'Art. 15(' is not in the EU AI Act catalogue"),
        ("eu_ai_act", "Art. 015", "'Art. 015' is not in the EU AI Act catalogue"),
        ("eu_ai_act", "Art. 15 (4)", "'Art. 15 (4)' is not in the EU AI Act catalogue"),
        ("eu_ai_act", "Art.\u00a015", "is not in the EU AI Act catalogue"),
        ("eu_ai_act", "Art. 15\u200b", "is not in the EU AI Act catalogue"),
        ("owasp_llm", "llm01:2025", "'llm01:2025' is not in the OWASP Top 10 for LLM 2025 catalogue"),
        ("gdpr", "Art. 05", "'Art. 05' is not in the GDPR catalogue"),
    ],
)
def test_malformed_references_are_refused_naming_the_path(scheme, reference, expected):
    message = _problems(_v2_first(mappings=[{"scheme": scheme, "reference": reference}]))
    assert f"{PREFIX}.mappings[0].reference: " in message
    assert expected in message


@pytest.mark.parametrize(
    ("scheme", "reference", "meant"),
    [
        ("owasp_llm", "llm01:2025", "LLM01:2025"),
        ("eu_ai_act", "art. 15", "Art. 15"),
        ("eu_ai_act", "Art.15", "Art. 15"),
    ],
)
def test_a_reference_in_the_wrong_case_or_spacing_is_told_what_it_means(scheme, reference, meant):
    message = _problems(_v2_first(mappings=[{"scheme": scheme, "reference": reference}]))
    assert f"did you mean {meant}?" in message


def test_a_reference_with_surrounding_spaces_is_stored_trimmed_and_counts_as_a_duplicate():
    spec = framework_parse(json.dumps(_v2_first(mappings=[{"scheme": "eu_ai_act", "reference": " Art. 15 "}])))
    assert [m.reference for m in spec.gaps[0].criteria[0].mappings] == ["Art. 15"]
    twice = [{"scheme": "eu_ai_act", "reference": " Art. 15 "}, {"scheme": "eu_ai_act", "reference": "Art. 15"}]
    assert f"{PREFIX}.mappings[1]: eu_ai_act Art. 15 is listed twice" in _problems(_v2_first(mappings=twice))


@pytest.mark.parametrize("entry", ["Art. 15", None, ["eu_ai_act", "Art. 15"], 15, True])
def test_a_mapping_that_is_not_an_object_is_refused_naming_its_index(entry):
    ok = {"scheme": "iso_42001", "reference": "A.6.2.4"}
    message = _problems(_v2_first(mappings=[ok, entry]))
    assert f"{PREFIX}.mappings[1]: expected an object" in message


@pytest.mark.parametrize("mappings", [{"scheme": "eu_ai_act", "reference": "Art. 15"}, None, "Art. 15"])
def test_mappings_that_are_not_a_list_are_refused(mappings):
    assert f"{PREFIX}.mappings: expected a list" in _problems(_v2_first(mappings=mappings))


def test_a_mapping_without_a_scheme_says_the_scheme_is_required():
    message = _problems(_v2_first(mappings=[{"reference": "Art. 15"}]))
    assert f"{PREFIX}.mappings[0].scheme: is required (one of eu_ai_act, " in message


@pytest.mark.parametrize("scheme", [None, ["eu_ai_act"], {"id": "eu_ai_act"}, "EU_AI_ACT", " eu_ai_act"])
def test_a_scheme_of_the_wrong_type_or_spelling_is_refused(scheme):
    message = _problems(_v2_first(mappings=[{"scheme": scheme, "reference": "Art. 15"}]))
    assert f"{PREFIX}.mappings[0].scheme: {scheme!r} is not one of" in message


@pytest.mark.parametrize("value", [["audit_trail"], {"kind": "audit_trail"}, None, "Audit_Trail", " audit_trail", 1])
def test_a_preflight_evidence_of_the_wrong_type_or_spelling_is_refused(value):
    message = _problems(_v2_first(preflight_evidence=value))
    assert (
        f"{PREFIX}.preflight_evidence: {value!r} is not one of review_signoff, sow_definition, audit_trail" in message
    )


def test_the_same_preflight_evidence_on_two_criteria_is_refused_naming_both():
    # v2's GV-05 (gaps[3].criteria[4]) already counts the audit trail.
    message = _problems(_v2_first(preflight_evidence="audit_trail"))
    assert "gaps[3].criteria[4].preflight_evidence: 'audit_trail' is already the evidence of EV-01" in message


def test_a_misspelt_field_is_refused_rather_than_silently_ignored():
    data = _v2_first(preflight_evidance="audit_trail")
    message = _problems(data)
    assert f"{PREFIX}.preflight_evidance: not a field of a criterion; did you mean preflight_evidence?" in message
    data = _v2_first(mappings=[{"scheme": "eu_ai_act", "reference": "Art. 15", "schema": "x"}])
    assert f"{PREFIX}.mappings[0].schema: not a field of a mapping" in _problems(data)
    data = _v2()
    data["gaps"][2]["wieght"] = 5
    assert "gaps[2].wieght: not a field of a gap; did you mean weight?" in _problems(data)


def test_a_key_given_twice_in_one_object_is_refused_naming_the_object():
    """JSON keeps the last of two equal keys; a reviewer reads the first. Neither may win."""
    raw = json.dumps(_v2_first(severity_by_tier={"minimal": "minor", "high": "blocking"}))
    raw = raw.replace('"high": "blocking"', '"high": "blocking", "high": "minor"', 1)
    message = _problems(raw)
    assert f"{PREFIX}.severity_by_tier.high: given more than once" in message


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("title", "Invoice \u202efdp.exe", "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("code", "EV-\u200b01", "U+200B ZERO WIDTH SPACE"),
        ("title", "Two\nlines", "U+000A"),
        ("guidance", "Null \x00 byte", "U+0000"),
        ("cost_if_missing", "Escape \x1b[31m", "U+001B"),
    ],
)
def test_hostile_characters_in_criterion_text_are_refused_as_the_editor_refuses_them(field, value, expected):
    message = _problems(_v2_first(**{field: value}))
    assert f"{PREFIX}.{field}: " in message
    assert expected in message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (json.dumps({**_v2(), "version": "\u00b2"}), "framework.version: expected a positive whole number"),
        (json.dumps({**_v2(), "version": 10**30}), "framework.version: expected a positive whole number"),
        (json.dumps({**_v2(), "version": "9" * 30}), "framework.version: expected a positive whole number"),
        ('{"name": "x", "version": ' + "1" * 5000 + "}", "not valid JSON"),
        ("[" * 100_000 + "]" * 100_000, "not valid JSON"),
    ],
)
def test_files_that_crashed_the_parser_are_refused_with_a_message(raw, expected):
    assert expected in _problems(raw)


def _write(tmp_path: Path, data: dict[str, Any] | str) -> Path:
    path = tmp_path / "framework.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_v2_first(severity_by_tier=[]), f"{PREFIX}.severity_by_tier: expected an object"),
        (_v2_first(severity_by_tier={"High": "major"}), f"{PREFIX}.severity_by_tier: 'High' is not a risk tier"),
        (_v2_first(mappings=["Art. 15"]), f"{PREFIX}.mappings[0]: expected an object"),
        (_v2_first(mappings=[{"reference": "Art. 15"}]), f"{PREFIX}.mappings[0].scheme: is required"),
        ({**_v2(), "version": 10**30}, "framework.version: expected a positive whole number"),
        ({**_v2(), "version": "\u00b2"}, "framework.version: expected a positive whole number"),
        (_v2_first(title="\u202eevil"), f"{PREFIX}.title: "),
    ],
)
def test_load_framework_refuses_with_the_path_and_writes_nothing(db, org, tmp_path, data, expected):
    path = _write(tmp_path, data)
    before = (Framework.objects.count(), Criterion.objects.count(), AuditEvent.objects.count())
    with pytest.raises(CommandError) as excinfo:
        call_command("load_framework", str(path), org=org.slug, stdout=StringIO())
    assert "was not loaded; nothing changed" in str(excinfo.value)
    assert expected in str(excinfo.value)
    assert (Framework.objects.count(), Criterion.objects.count(), AuditEvent.objects.count()) == before


# --------------------------------------------------------------------------------------------
# 2. The editor: hostile posts to criterion edit and new
# --------------------------------------------------------------------------------------------


@pytest.fixture
def draft(framework: Framework, users: dict[str, Any]) -> Framework:
    return framework_copy(framework=framework, actor=Actor.for_user(users["admin"]))


@pytest.fixture
def admin_client(client: Client, users: dict[str, Any]) -> Client:
    client.force_login(users["admin"])
    return client


def _state(framework: Framework) -> tuple[Any, ...]:
    """Every criterion row of ``framework`` and the size of the audit trail."""
    rows = list(framework.criteria.order_by("pk").values_list())
    return rows, AuditEvent.objects.count(), Criterion.objects.count()


HOSTILE_SEVERITIES = ["urgent", "BLOCKING", " blocking", "blocking\x00", "<script>", "' OR 1=1 --", "0", "x" * 5000]


@pytest.mark.parametrize("tier", ["minimal", "limited", "high"])
@pytest.mark.parametrize("value", HOSTILE_SEVERITIES)
def test_a_hostile_severity_is_refused_on_its_field_and_changes_nothing(admin_client, draft, tier, value):
    criterion = draft.criteria.get(code="EV-01")
    before = _state(draft)
    response = admin_client.post(
        reverse("criterion-edit", args=[criterion.pk]), _form(criterion, **{f"severity_{tier}": value})
    )
    assert response.status_code == 422
    assert f"severity_{tier}" in response.context["form"].errors
    assert _state(draft) == before


@pytest.mark.parametrize("value", ["root", "REVIEW_SIGNOFF", "audit_trail ", "<svg onload=alert(1)>", "held"])
def test_a_hostile_preflight_evidence_is_refused_on_its_field_and_changes_nothing(admin_client, draft, value):
    criterion = draft.criteria.get(code="EV-01")
    before = _state(draft)
    response = admin_client.post(
        reverse("criterion-edit", args=[criterion.pk]), _form(criterion, preflight_evidence=value)
    )
    assert response.status_code == 422
    assert "preflight_evidence" in response.context["form"].errors
    assert _state(draft) == before


@pytest.mark.parametrize("value", ["0", "-1", "3651", "1e3", "99999999999999999999", ""])
def test_an_evidence_age_out_of_range_is_refused(admin_client, draft, value):
    criterion = draft.criteria.get(code="EV-01")
    before = _state(draft)
    response = admin_client.post(
        reverse("criterion-edit", args=[criterion.pk]), _form(criterion, max_evidence_age_days=value)
    )
    assert response.status_code == 422
    assert "max_evidence_age_days" in response.context["form"].errors
    assert _state(draft) == before


def test_no_tier_at_all_is_refused_on_edit_and_new(admin_client, draft):
    criterion = draft.criteria.get(code="EV-01")
    blank = {"severity_minimal": "", "severity_limited": "", "severity_high": ""}
    before = _state(draft)
    response = admin_client.post(reverse("criterion-edit", args=[criterion.pk]), _form(criterion, **blank))
    assert response.status_code == 422
    assert response.context["form"].errors["severity_high"] == [
        "Give the criterion a severity for at least one risk tier."
    ]
    response = admin_client.post(
        reverse("criterion-new", args=[criterion.gap_id]), _form(criterion, code="EV-99", **blank)
    )
    assert response.status_code == 422
    assert "severity_high" in response.context["form"].errors
    assert _state(draft) == before


@pytest.mark.parametrize(
    ("minimal", "limited", "high", "field"),
    [
        ("blocking", "major", "minor", "severity_limited"),
        ("major", "", "minor", "severity_high"),
        ("minor", "blocking", "major", "severity_high"),
        ("blocking", "blocking", "major", "severity_high"),
    ],
)
def test_a_severity_that_falls_as_the_tier_rises_is_refused_on_the_field(
    admin_client, draft, minimal, limited, high, field
):
    criterion = draft.criteria.get(code="EV-01")
    chosen = {"severity_minimal": minimal, "severity_limited": limited, "severity_high": high}
    before = _state(draft)
    response = admin_client.post(reverse("criterion-edit", args=[criterion.pk]), _form(criterion, **chosen))
    assert response.status_code == 422
    assert "cannot matter less for a riskier pilot" in " ".join(response.context["form"].errors.get(field, []))
    response = admin_client.post(
        reverse("criterion-new", args=[criterion.gap_id]), _form(criterion, code="EV-99", **chosen)
    )
    assert response.status_code == 422
    assert field in response.context["form"].errors
    assert _state(draft) == before


def test_the_services_refuse_a_falling_severity_too(draft, users):
    criterion = draft.criteria.get(code="EV-01")
    admin = Actor.for_user(users["admin"])
    before = _state(draft)
    with pytest.raises(ValidationError, match="riskier pilot"):
        criterion_update(criterion=criterion, actor=admin, severity_minimal="blocking", severity_high="minor")
    with pytest.raises(ValidationError, match="riskier pilot"):
        criterion_create(
            gap=criterion.gap, actor=admin, **{**_form(criterion, code="EV-99"), "severity_minimal": "blocking",
            "severity_limited": "", "severity_high": "minor", "applies_to_limited": False},
        )  # fmt: skip
    assert _state(draft) == before


def test_a_rising_severity_with_a_skipped_tier_is_saved(admin_client, draft):
    criterion = draft.criteria.get(code="EV-01")
    chosen = {"severity_minimal": "minor", "severity_limited": "", "severity_high": "blocking"}
    response = admin_client.post(reverse("criterion-edit", args=[criterion.pk]), _form(criterion, **chosen))
    assert response.status_code == 302
    criterion.refresh_from_db()
    assert criterion.severity_by_tier == {"minimal": "minor", "high": "blocking"}
    assert (criterion.applies_to_minimal, criterion.applies_to_limited, criterion.applies_to_high) == (
        True,
        False,
        True,
    )


def test_posted_applies_to_fields_are_ignored_the_severities_decide(admin_client, draft):
    criterion = draft.criteria.get(code="EV-01")
    data = _form(criterion, severity_minimal="", applies_to_minimal="on", framework=0, gap=0)
    response = admin_client.post(reverse("criterion-edit", args=[criterion.pk]), data)
    assert response.status_code == 302
    criterion.refresh_from_db()
    assert (criterion.applies_to_minimal, criterion.severity_minimal) == (False, "")
    assert (criterion.framework_id, criterion.gap.framework_id) == (draft.pk, draft.pk)


def test_the_same_preflight_evidence_on_a_second_criterion_is_refused_as_the_loader_refuses_it(admin_client, draft):
    first, second = draft.criteria.get(code="EV-01"), draft.criteria.get(code="EV-02")
    response = admin_client.post(
        reverse("criterion-edit", args=[first.pk]), _form(first, preflight_evidence="audit_trail")
    )
    assert response.status_code == 302
    before = _state(draft)
    response = admin_client.post(
        reverse("criterion-edit", args=[second.pk]), _form(second, preflight_evidence="audit_trail")
    )
    assert response.status_code == 422
    assert "EV-01" in " ".join(response.context["form"].errors["preflight_evidence"])
    response = admin_client.post(
        reverse("criterion-new", args=[first.gap_id]), _form(second, code="EV-99", preflight_evidence="audit_trail")
    )
    assert response.status_code == 422
    assert "preflight_evidence" in response.context["form"].errors
    assert _state(draft) == before


def _editor_urls(draft: Framework) -> list[str]:
    criterion = draft.criteria.get(code="EV-01")
    return [reverse("criterion-edit", args=[criterion.pk]), reverse("criterion-new", args=[criterion.gap_id])]


@pytest.mark.parametrize("role", NON_ADMIN_ROLES)
def test_other_roles_get_403_and_change_nothing(client, draft, users, role):
    client.force_login(users[role])
    criterion = draft.criteria.get(code="EV-01")
    before = _state(draft)
    for url in _editor_urls(draft):
        assert client.get(url).status_code == 403, url
        posted = _form(criterion, code="EV-99", severity_minimal="blocking", preflight_evidence="audit_trail")
        assert client.post(url, posted).status_code == 403, url
    assert _state(draft) == before


def test_an_administrator_of_another_organisation_gets_404_and_changes_nothing(client, draft, other_org):
    stranger = user_create(
        organisation=other_org, username="mallory", email="m@globex.test", password="pw-for-tests-only", actor=SYSTEM
    )
    membership_grant(organisation=other_org, user=stranger, role=Role.ADMIN, actor=SYSTEM)
    client.force_login(stranger)
    criterion = draft.criteria.get(code="EV-01")
    before = _state(draft)
    for url in _editor_urls(draft):
        assert client.get(url).status_code == 404, url
        assert client.post(url, _form(criterion, code="EV-99", severity_high="minor")).status_code == 404, url
    assert _state(draft) == before


def test_a_published_version_refuses_the_post_with_409_and_changes_nothing(admin_client, framework):
    criterion = framework.criteria.get(code="EV-01")
    before = _state(framework)
    response = admin_client.post(
        reverse("criterion-edit", args=[criterion.pk]), _form(criterion, severity_high="minor")
    )
    assert response.status_code == 409
    assert _state(framework) == before


# --------------------------------------------------------------------------------------------
# 3. Raw SQL: the database refuses what the forms refuse
# --------------------------------------------------------------------------------------------


def _raw_update(model: type[Criterion] | type[RegulatoryMapping], pk: int, **values: Any) -> None:
    qn = connection.ops.quote_name
    assignments = ", ".join(f"{qn(column)} = %s" for column in values)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {qn(model._meta.db_table)} SET {assignments} WHERE id = %s",
            [*values.values(), pk],
        )


@pytest.mark.parametrize(
    "values",
    [
        {"applies_to_minimal": False, "severity_minimal": "major"},
        {"applies_to_high": True, "severity_high": ""},
        {"severity_limited": "Blocking"},
        {"severity_limited": "urgent"},
        {"applies_to_minimal": False, "applies_to_limited": False, "applies_to_high": False,
         "severity_minimal": "", "severity_limited": "", "severity_high": ""},
        {"preflight_evidence": "forged"},
        {"preflight_evidence": "AUDIT_TRAIL"},
        {"check_kind": "rm -rf"},
        {"max_evidence_age_days": 0},
    ],
)  # fmt: skip
def test_the_database_refuses_a_tampered_criterion(framework, values):
    criterion = framework.criteria.get(code="EV-01")
    before = list(Criterion.objects.filter(pk=criterion.pk).values_list())
    with pytest.raises(IntegrityError):
        _raw_update(Criterion, criterion.pk, **values)
    assert list(Criterion.objects.filter(pk=criterion.pk).values_list()) == before


@pytest.mark.parametrize(
    "values",
    [{"obligation_from": "extreme"}, {"obligation_from": "High"}, {"scheme": "sox"}, {"reference": ""}],
)
def test_the_database_refuses_a_tampered_mapping(framework, values):
    mapping = RegulatoryMapping.objects.filter(criterion__framework=framework).first()
    assert mapping is not None
    with pytest.raises(IntegrityError):
        _raw_update(RegulatoryMapping, mapping.pk, **values)


# --------------------------------------------------------------------------------------------
# 4. Evidence Preflight holds cannot be faked
# --------------------------------------------------------------------------------------------


def _pilot(organisation: Organisation, owner: Any, name: str = "Claims triage") -> Pilot:
    return pilot_create(
        organisation=organisation,
        actor=Actor.for_user(owner),
        name=name,
        risk_tier="limited",
        technical_owner=owner,
    )


def _open(pilot: Pilot) -> Assessment:
    found = assessment_open(pilot=pilot)
    assert found is not None
    return found


def _name(framework: Framework, code: str, kind: str) -> None:
    """Test setup: make ``code`` (blocking at every tier in v1) the criterion that ``kind`` evidences."""
    Criterion.objects.filter(framework=framework, code=code).update(preflight_evidence=kind)


def _held(pilot: Pilot, code: str) -> str:
    rows = checklist(assessment=_open(pilot), today=timezone.localdate()).rows
    return next(r.criterion_row.held for r in rows if r.criterion_row.code == code)


def _blocked(pilot: Pilot, code: str) -> bool:
    card = scorecard(assessment=_open(pilot), today=timezone.localdate())
    return code in {b.code for b in card.blockers}


def _meeting(pilot: Pilot, users: dict[str, Any]) -> Any:
    return meeting_schedule(
        pilot=pilot,
        actor=Actor.for_user(users["owner"]),
        scheduled_at=timezone.now() + dt.timedelta(days=1),
        participants=[(users[role], role) for role in SIGNING_ROLES] + [(users["owner"], "owner")],
        location="Room 4.12",
    )


def _sign_all(meeting: Any, users: dict[str, Any]) -> None:
    for role in SIGNING_ROLES:
        decision_record(meeting=meeting, actor=Actor.for_user(users[role]), role=role, decision="approve")


def _done_sow(pilot: Pilot, organisation: Organisation, user: Any) -> Report:
    now = timezone.now()
    return Report.objects.create(
        organisation=organisation, pilot=pilot, kind=ReportKind.SOW_PDF, status=ReportStatus.DONE,
        requested_at=now, started_at=now, finished_at=now, requested_by=user,
        file="reports/sow.pdf", sha256="0" * 64, size=1,
    )  # fmt: skip


def _stranger_pilot(other_org: Organisation) -> tuple[Pilot, Any]:
    owner = user_create(
        organisation=other_org, username="globex-owner", email="o@globex.test", password="pw-for-tests", actor=SYSTEM
    )
    membership_grant(organisation=other_org, user=owner, role=Role.OWNER, actor=SYSTEM)
    framework_load(organisation=other_org, spec=framework_parse(FRAMEWORK_V1_PATH.read_bytes()), actor=SYSTEM)
    return _pilot(other_org, owner, name="Globex pilot"), owner


def test_decisions_in_a_cancelled_meeting_do_not_count(framework, users):
    _name(framework, "GV-06", "review_signoff")
    pilot = _pilot(framework.organisation, users["owner"])
    meeting = _meeting(pilot, users)
    _sign_all(meeting, users)
    assert _held(pilot, "GV-06") and not _blocked(pilot, "GV-06")
    meeting_cancel(meeting=meeting, actor=Actor.for_user(users["owner"]))
    assert _held(pilot, "GV-06") == ""
    assert _blocked(pilot, "GV-06")


def test_the_stored_score_forgets_a_cancelled_sign_off_at_once(framework, users):
    _name(framework, "GV-06", "review_signoff")
    pilot = _pilot(framework.organisation, users["owner"])
    meeting = _meeting(pilot, users)
    _sign_all(meeting, users)
    meeting_cancel(meeting=meeting, actor=Actor.for_user(users["owner"]))
    live = scorecard(assessment=_open(pilot), today=timezone.localdate())
    stored = AssessmentScore.objects.get(assessment=_open(pilot))
    assert stored.blockers == len(live.blockers)


def test_a_rejection_in_a_cancelled_meeting_does_not_undo_a_held_review(framework, users):
    _name(framework, "GV-06", "review_signoff")
    pilot = _pilot(framework.organisation, users["owner"])
    signed = _meeting(pilot, users)
    _sign_all(signed, users)
    later = _meeting(pilot, users)
    decision_record(
        meeting=later, actor=Actor.for_user(users["risk"]), role="risk", decision="reject", must_change="All of it."
    )
    assert _held(pilot, "GV-06") == ""
    meeting_cancel(meeting=later, actor=Actor.for_user(users["owner"]))
    assert _held(pilot, "GV-06").startswith("joint review approved")


def test_a_role_signed_only_by_the_pilots_own_owners_does_not_count(framework, users):
    """Hand the pilot to the risk signer after they signed: the gate refuses a role signed only
    by the pilot's own owners (no one approves their own work alone), and so must held evidence."""
    _name(framework, "GV-06", "review_signoff")
    pilot = _pilot(framework.organisation, users["owner"])
    _sign_all(_meeting(pilot, users), users)
    assert _held(pilot, "GV-06")
    pilot = pilot_update(pilot=pilot, actor=Actor.for_user(users["owner"]), business_owner=users["risk"])
    gate = readiness_gate(assessment=_open(pilot), card=scorecard(assessment=_open(pilot), today=timezone.localdate()))
    assert any(r.only_owners for r in gate.roles if r.role == "risk")
    assert _held(pilot, "GV-06") == ""


def test_decisions_on_a_superseded_assessment_do_not_count_for_its_successor(framework, users):
    _name(framework, "GV-06", "review_signoff")
    pilot = _pilot(framework.organisation, users["owner"])
    _sign_all(_meeting(pilot, users), users)
    assert _held(pilot, "GV-06")
    admin = Actor.for_user(users["admin"])
    successor = framework_publish(framework=framework_copy(framework=framework, actor=admin), actor=admin)
    assert successor.criteria.get(code="GV-06").preflight_evidence == "review_signoff"
    assessment_move(assessment=_open(pilot), framework=successor, actor=Actor.for_user(users["owner"]))
    assert _open(pilot).framework_id == successor.pk
    assert _held(pilot, "GV-06") == ""
    assert _blocked(pilot, "GV-06")


def test_a_failed_or_unfinished_sow_report_does_not_count(framework, users):
    _name(framework, "GV-02", "sow_definition")
    pilot = _pilot(framework.organisation, users["owner"])
    now = timezone.now()
    Report.objects.create(
        organisation=pilot.organisation, pilot=pilot, kind=ReportKind.SOW_PDF, status=ReportStatus.FAILED,
        requested_at=now, started_at=now, finished_at=now, requested_by=users["owner"], error="renderer crashed",
    )  # fmt: skip
    Report.objects.create(
        organisation=pilot.organisation, pilot=pilot, kind=ReportKind.SOW_MD, status=ReportStatus.RUNNING,
        requested_at=now, started_at=now, finished_at=now, requested_by=users["owner"],
    )  # fmt: skip
    Report.objects.create(
        organisation=pilot.organisation, pilot=pilot, kind=ReportKind.PILOT, status=ReportStatus.DONE,
        requested_at=now, started_at=now, finished_at=now, requested_by=users["owner"],
        file="reports/pilot.pdf", sha256="0" * 64, size=1,
    )  # fmt: skip
    assert _held(pilot, "GV-02") == ""
    assert _blocked(pilot, "GV-02")


def test_another_organisations_sow_report_does_not_count(framework, users, other_org):
    _name(framework, "GV-02", "sow_definition")
    pilot = _pilot(framework.organisation, users["owner"])
    stranger, stranger_owner = _stranger_pilot(other_org)
    _done_sow(stranger, other_org, stranger_owner)
    assert _held(pilot, "GV-02") == ""
    # A row that claims our pilot but belongs to another organisation (no service makes one).
    _done_sow(pilot, other_org, stranger_owner)
    assert _held(pilot, "GV-02") == ""
    _done_sow(pilot, pilot.organisation, users["owner"])
    assert _held(pilot, "GV-02").startswith("statement-of-work readiness definition generated")


def test_another_organisations_checkpoint_does_not_count(framework, users, other_org):
    _name(framework, "GV-01", "audit_trail")
    pilot = _pilot(framework.organisation, users["owner"])
    signing_key_ensure()
    checkpoint_create(organisation=other_org)
    assert _held(pilot, "GV-01") == ""
    assert _blocked(pilot, "GV-01")
    checkpoint_create(organisation=pilot.organisation)
    assert _held(pilot, "GV-01").startswith("hash-chained audit trail")


# --------------------------------------------------------------------------------------------
# 5. Hostile criterion text on every page that shows it
# --------------------------------------------------------------------------------------------

HOSTILE_TITLE = '<script>alert("t")</script>"><img src=x onerror=alert(1)>{{ 7|add:7 }}{% csrf_token %}'
HOSTILE_PROSE = "</details></td><script>alert('g')</script>\n<iframe src=javascript:alert(2)>&amp;"


@pytest.fixture
def hostile(framework: Framework, users: dict[str, Any]) -> tuple[Framework, Framework, Criterion]:
    """A published successor of ``framework`` with a hostile new criterion and EV-01 retitled."""
    admin = Actor.for_user(users["admin"])
    draft = framework_copy(framework=framework, actor=admin)
    gap = Gap.objects.get(framework=draft, key="evals")
    new = criterion_create(
        gap=gap, actor=admin, code="EV-99", title=HOSTILE_TITLE, guidance=HOSTILE_PROSE,
        cost_if_missing=HOSTILE_PROSE, evidence_expected=HOSTILE_PROSE, severity_minimal="minor",
        severity_limited="major", severity_high="blocking", max_evidence_age_days=30,
        applies_to_minimal=True, applies_to_limited=True, applies_to_high=True,
    )  # fmt: skip
    RegulatoryMapping.objects.create(
        criterion=new, scheme="iso_42001", reference="A.6.2.4", title=HOSTILE_TITLE, obligation_from=""
    )
    changed = draft.criteria.get(code="EV-01")
    criterion_update(
        criterion=changed, actor=admin, title=HOSTILE_TITLE, guidance=HOSTILE_PROSE, severity_minimal="major"
    )
    return framework, draft, new


def _assert_escaped(body: str) -> None:
    assert "<script>alert" not in body
    assert "<img src=x" not in body
    assert "<iframe" not in body
    assert escape('<script>alert("t")</script>') in body
    assert "{{ 7|add:7 }}" in body  # shown as typed, never evaluated


def test_hostile_text_renders_escaped_on_the_draft_pages(admin_client, hostile):
    _published, draft, new = hostile
    for url in (
        reverse("framework-detail", args=[draft.pk]),
        reverse("criterion-detail", args=[new.pk]),
        reverse("criterion-edit", args=[new.pk]),
        reverse("framework-publish", args=[draft.pk]),
    ):
        response = admin_client.get(url)
        assert response.status_code == 200, url
        _assert_escaped(response.content.decode())


def test_hostile_text_renders_escaped_on_the_published_and_move_pages(admin_client, hostile, users):
    published, draft, new = hostile
    owner = Client()
    owner.force_login(users["owner"])
    pilot = _pilot(published.organisation, users["owner"])
    framework_publish(framework=draft, actor=Actor.for_user(users["admin"]))
    for page, url in (
        (admin_client, reverse("framework-detail", args=[draft.pk])),
        (admin_client, reverse("criterion-detail", args=[new.pk])),
        (owner, reverse("assessment-migrate", args=[pilot.pk])),
    ):
        response = page.get(url)
        assert response.status_code == 200, url
        _assert_escaped(response.content.decode())


def test_the_database_refuses_two_criteria_counting_the_same_held_evidence(framework):
    from django.db import IntegrityError, transaction

    first, second = Criterion.objects.filter(framework=framework).order_by("pk")[:2]
    Criterion.objects.filter(pk=first.pk).update(preflight_evidence="audit_trail")
    with pytest.raises(IntegrityError), transaction.atomic():
        Criterion.objects.filter(pk=second.pk).update(preflight_evidence="audit_trail")
    assert Criterion.objects.filter(framework=framework, preflight_evidence="audit_trail").count() == 1
