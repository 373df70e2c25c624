"""Hostile text and file names over HTTP: refused at input, isolated on the page, harmless in exports."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from openpyxl import load_workbook

from assessments.audit.context import Actor
from assessments.frameworks.models import Criterion, Framework, FrameworkStatus, Gap
from assessments.frameworks.services import framework_load
from assessments.organisations.services import membership_grant, user_create
from assessments.pilots.models import Evidence, Pilot, Response, StopCondition
from assessments.pilots.services import evidence_add, pilot_create, stop_condition_add

HTMX = {"HTTP_HX_REQUEST": "true"}
SYSTEM = Actor.system("tests")
PDF = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n"

# One of each kind the rules refuse in names, with the words the message must use.
HOSTILE = [
    ("\x01", "contains the control character U+0001"),
    ("\x1b", "contains the control character U+001B"),
    ("\x85", "contains the control character U+0085"),
    ("\u202e", "contains U+202E RIGHT-TO-LEFT OVERRIDE, which can make text display reversed"),
    ("\u2067", "contains U+2067 RIGHT-TO-LEFT ISOLATE, which can make text display reversed"),
    ("\u200f", "contains U+200F RIGHT-TO-LEFT MARK, which can make text display reversed"),
    ("\u061c", "contains U+061C ARABIC LETTER MARK, which can make text display reversed"),
    ("\u200b", "contains U+200B ZERO WIDTH SPACE, an invisible character"),
    ("\u200d", "contains U+200D ZERO WIDTH JOINER, an invisible character"),
    ("\u2060", "contains U+2060 WORD JOINER, an invisible character"),
    ("\ufeff", "contains U+FEFF ZERO WIDTH NO-BREAK SPACE, an invisible character"),
    ("\u00ad", "contains U+00AD SOFT HYPHEN, an invisible character"),
    ("\u2028", "contains U+2028 LINE SEPARATOR, a line break"),
]


@pytest.fixture
def pilot(framework, users, owner_actor) -> Pilot:
    return pilot_create(
        organisation=framework.organisation,
        actor=owner_actor,
        name="Claims triage",
        technical_owner=users["owner"],
        risk_tier="high",
    )


@pytest.fixture
def draft(client, users, framework) -> Framework:
    client.force_login(users["admin"])
    assert client.post(reverse("framework-copy", args=[framework.pk])).status_code == 302
    return Framework.objects.get(status=FrameworkStatus.DRAFT)


def _row(pilot: Pilot, code: str = "EV-01") -> Response:
    return Response.objects.select_related("criterion").get(assessment__pilot=pilot, criterion__code=code)


def _pilot_form(pilot: Pilot | None = None, **changes: str) -> dict[str, object]:
    data: dict[str, object] = {"name": "A new pilot", "risk_tier": "limited", "data_sensitivity": "internal"}
    if pilot is not None:
        data.update(name=pilot.name, risk_tier=pilot.risk_tier, data_sensitivity=pilot.data_sensitivity)
    return {**data, **changes}


# --- Exports ---------------------------------------------------------------------------------------------------


def test_an_xlsx_export_with_control_characters_answers_200_and_reads_back(client, users, pilot, owner_actor):
    # Stored straight through the ORM: data from before the input rules, or written by another path.
    Pilot.objects.filter(pk=pilot.pk).update(name="Claims\x01triage")
    Criterion.objects.filter(pk=_row(pilot).criterion_id).update(title="Golden\x02set", guidance="Read\x03me")
    Response.objects.filter(pk=_row(pilot).pk).update(status="met", justification="Checked\x1b[31m red\ttab")
    client.force_login(users["viewer"])

    response = client.get(reverse("pilot-export", args=[pilot.pk, "xlsx"]))

    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.content)).active
    block = {row[0].value: row[1].value for row in sheet.iter_rows(max_row=5)}
    assert block["Pilot"] == "Claims\ufffdtriage"
    ev01 = next(row for row in sheet.iter_rows() if row[1].value == "EV-01")
    assert ev01[2].value == "Golden\ufffdset"
    assert ev01[6].value == "Checked\ufffd[31m red\ttab"


def test_a_csv_export_carries_the_same_replacement_characters(client, users, pilot):
    Pilot.objects.filter(pk=pilot.pk).update(name="Claims\x01triage")
    Criterion.objects.filter(pk=_row(pilot).criterion_id).update(title="\x08=1+1")
    client.force_login(users["viewer"])

    response = client.get(reverse("pilot-export", args=[pilot.pk, "csv"]))

    assert response.status_code == 200
    text = response.content.decode("utf-8-sig")
    assert "\x01" not in text and "\x08" not in text
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["Pilot", "Claims\ufffdtriage"]
    assert next(r for r in rows if len(r) > 2 and r[1] == "EV-01")[2] == "\ufffd=1+1"


# --- Names refused at input ----------------------------------------------------------------------------------


def _assert_refused(response, message: str, status: int = 422) -> None:
    assert response.status_code == status, response.content[:500]
    assert message in response.content.decode()


def test_a_new_pilot_named_with_any_hostile_character_is_refused_and_not_created(client, users, pilot):
    client.force_login(users["owner"])
    for char, message in HOSTILE:
        response = client.post(reverse("pilot-new"), _pilot_form(name=f"Fraud{char}screening"))
        _assert_refused(response, message)
    assert list(Pilot.objects.values_list("name", flat=True)) == ["Claims triage"]


@pytest.mark.parametrize("field", ["name", "value_metric_name", "value_metric_unit", "oncall_contact"])
def test_renaming_a_pilot_or_its_labels_with_hostile_characters_is_refused(client, users, pilot, field):
    client.force_login(users["owner"])
    for char, message in HOSTILE:
        response = client.post(reverse("pilot-edit", args=[pilot.pk]), _pilot_form(pilot, **{field: f"x{char}y"}))
        _assert_refused(response, message)
    pilot.refresh_from_db()
    assert pilot.name == "Claims triage"
    assert getattr(pilot, field) in {"Claims triage", ""}


def test_a_description_keeps_newlines_and_tabs_but_not_other_controls(client, users, pilot):
    client.force_login(users["owner"])
    url = reverse("pilot-edit", args=[pilot.pk])
    _assert_refused(client.post(url, _pilot_form(pilot, description="one\x07two")), "control character U+0007")
    described = "Line one\r\n\tindented, with an RTL mark \u200f kept"
    assert client.post(url, _pilot_form(pilot, description=described)).status_code == 302
    pilot.refresh_from_db()
    assert pilot.description == described


def test_a_stop_condition_metric_with_hostile_characters_is_not_added(client, users, pilot):
    client.force_login(users["owner"])
    url = reverse("stop-condition-new", args=[pilot.pk])
    for char, message in HOSTILE:
        data = {"condition": "Pause on complaints", "metric": f"compl{char}aints", "comparator": "gt", "threshold": "3"}
        # This form posts from the pilot page and answers with the page again, the form open
        # with what was typed and the message beside the field.
        response = client.post(url, data)
        assert response.status_code == 422
        body = response.content.decode()
        assert message in body
        assert "<details open><summary>Add a stop condition" in body
    assert not StopCondition.objects.exists()


def test_an_evidence_title_with_hostile_characters_is_refused(client, users, pilot):
    client.force_login(users["owner"])
    url = reverse("evidence-new", args=[_row(pilot).pk])
    for char, message in HOSTILE:
        data = {"kind": "link", "title": f"Run{char}log", "url": "https://x.test/", "effective_date": "2026-11-01"}
        _assert_refused(client.post(url, data, **HTMX), message)
    assert not Evidence.objects.exists()


def test_a_gap_name_with_hostile_characters_is_refused(client, draft):
    gap = draft.gaps.get(key="evals")
    for char, message in HOSTILE:
        data = {"name": f"Ev{char}als", "weight": gap.weight, "description": gap.description}
        _assert_refused(client.post(reverse("gap-edit", args=[gap.pk]), data), message)
    assert Gap.objects.get(pk=gap.pk).name == gap.name


def test_criterion_titles_and_codes_with_hostile_characters_are_refused(client, draft):
    criterion = draft.criteria.get(code="EV-01")
    base = {
        "code": criterion.code, "title": criterion.title, "severity_high": criterion.severity_high,
        "guidance": criterion.guidance, "cost_if_missing": criterion.cost_if_missing,
        "evidence_expected": criterion.evidence_expected, "max_evidence_age_days": 30,
    }  # fmt: skip
    for field in ("title", "code"):
        for char, message in HOSTILE:
            data = {**base, field: f"EV{char}01"}
            _assert_refused(client.post(reverse("criterion-edit", args=[criterion.pk]), data), message)
            _assert_refused(client.post(reverse("criterion-new", args=[criterion.gap_id]), data), message)
    _assert_refused(
        client.post(reverse("criterion-edit", args=[criterion.pk]), {**base, "guidance": "a\nb\x01"}),
        "control character U+0001",
    )
    assert Criterion.objects.get(pk=criterion.pk).title == criterion.title
    assert draft.criteria.count() == Framework.objects.get(status=FrameworkStatus.PUBLISHED).criteria.count()


@pytest.mark.parametrize("field", ["first_name", "last_name", "username"])
def test_an_invite_with_a_hostile_name_or_username_is_refused(client, users, field):
    client.force_login(users["admin"])
    for char, message in HOSTILE:
        data = {"email": "nina@acme.test", "username": "nina", "first_name": "Nina", "roles": ["viewer"]}
        data[field] = f"{data.get(field, 'x')}{char}x"
        _assert_refused(client.post(reverse("member-invite"), data), message)
    assert not User.objects.filter(email="nina@acme.test").exists()


# --- Lookalike names -------------------------------------------------------------------------------------------

LOOKALIKES = [
    "CLAIMS TRIAGE",
    "claims   triage",
    "Claims\u00a0triage",
    " Claims triage ",
    "\uff23laims triage",  # a full-width C
    "\uff23\uff4c\uff41\uff49\uff4d\uff53\u3000\uff34\uff32\uff29\uff21\uff27\uff25",  # all full-width
]


@pytest.mark.parametrize("name", LOOKALIKES)
def test_a_second_pilot_whose_name_normalises_to_an_existing_one_is_refused(client, users, pilot, name):
    client.force_login(users["owner"])
    response = client.post(reverse("pilot-new"), _pilot_form(name=name))
    _assert_refused(response, "Acme Bank already has a pilot named “Claims triage”.")
    assert Pilot.objects.count() == 1


def test_renaming_a_pilot_to_a_lookalike_of_another_is_refused(client, users, pilot, owner_actor):
    other = pilot_create(
        organisation=pilot.organisation, actor=owner_actor, name="Fraud screening", technical_owner=users["owner"]
    )
    client.force_login(users["owner"])
    url = reverse("pilot-edit", args=[other.pk])
    _assert_refused(client.post(url, _pilot_form(other, name="claims TRIAGE")), "already has a pilot named")
    other.refresh_from_db()
    assert other.name == "Fraud screening"
    # Its own name in another case is not a clash with itself.
    assert client.post(url, _pilot_form(other, name="Fraud Screening")).status_code == 302


def test_a_pilot_already_sharing_a_name_stays_editable_if_its_name_is_unchanged(client, users, pilot, owner_actor):
    other = pilot_create(
        organisation=pilot.organisation, actor=owner_actor, name="Fraud screening", technical_owner=users["owner"]
    )
    Pilot.objects.filter(pk=other.pk).update(name="claims TRIAGE")  # from before the rule
    other.refresh_from_db()
    client.force_login(users["owner"])
    url = reverse("pilot-edit", args=[other.pk])
    assert client.post(url, _pilot_form(other, description="Still editable")).status_code == 302


def test_the_same_name_in_another_organisation_is_allowed(pilot, other_org, default_spec):
    framework_load(organisation=other_org, spec=default_spec, actor=SYSTEM)
    owner = user_create(organisation=other_org, username="g-owner", email="o@globex.test", password="pw", actor=SYSTEM)
    membership_grant(organisation=other_org, user=owner, role="owner", actor=SYSTEM)
    twin = pilot_create(organisation=other_org, actor=Actor.for_user(owner), name="CLAIMS TRIAGE")
    assert twin.pk != pilot.pk


# --- Upload names ----------------------------------------------------------------------------------------------


def _upload(client, pilot: Pilot, name: str, content: bytes = PDF):
    upload = SimpleUploadedFile(name, content, content_type="application/pdf")
    data = {"kind": "file", "title": "Eval report", "file": upload, "effective_date": "2026-11-01"}
    return client.post(reverse("evidence-new", args=[_row(pilot).pk]), data, **HTMX)


@pytest.mark.parametrize(
    "name",
    [
        "..%2F..%2F..%2Ftmp%2Fx.pdf",
        "..%252F..%252F..%252Ftmp%252Fx.pdf",
        "..\uff0f..\uff0fx.pdf",
        "..\uff3c..\uff3cx.pdf",
        "..\\..\\x.pdf",
        "\u202e..\u2215x.pdf",
    ],
)
def test_traversal_looking_upload_names_are_shown_and_downloaded_as_a_base_name(client, users, pilot, name):
    client.force_login(users["owner"])
    response = _upload(client, pilot, name)
    assert response.status_code == 200
    evidence = Evidence.objects.get()
    assert evidence.original_filename == "x.pdf"
    assert "<bdi>x.pdf</bdi>," in response.content.decode()
    for leftover in ("%2F", "%252F", "..", "\uff0f", "\uff3c", "\u202e"):
        assert leftover not in evidence.original_filename
    download = client.get(reverse("evidence-download", args=[evidence.pk]))
    assert download["Content-Disposition"] == 'attachment; filename="x.pdf"'
    assert b"".join(download.streaming_content) == PDF


def test_a_stored_name_from_before_the_rule_is_cleaned_on_download(client, users, pilot, owner_actor):
    from assessments.pilots.services import UploadedEvidenceFile

    evidence = evidence_add(
        response=_row(pilot),
        actor=owner_actor,
        kind="file",
        title="Old upload",
        effective_date=pilot.created_at.date(),
        upload=UploadedEvidenceFile(name="report.pdf", content=PDF, content_type="application/pdf"),
    )
    Evidence.objects.filter(pk=evidence.pk).update(original_filename="..\\..\\%2e%2e%2fboot\u202e.ini.pdf")
    client.force_login(users["viewer"])
    download = client.get(reverse("evidence-download", args=[evidence.pk]))
    assert download["Content-Disposition"] == 'attachment; filename="boot.ini.pdf"'


def test_a_bidi_override_cannot_disguise_an_upload_extension(client, users, pilot):
    client.force_login(users["owner"])
    # Displayed with the override this reads "invoice_exe.pdf"; its real extension is .exe.
    response = _upload(client, pilot, "invoice_\u202efdp.exe")
    _assert_refused(response, "invoice_fdp.exe is named like a .exe but its content is a PDF")
    assert not Evidence.objects.exists()


def test_a_name_over_255_characters_keeps_its_extension(client, users, pilot):
    client.force_login(users["owner"])
    assert _upload(client, pilot, "a" * 300 + ".pdf").status_code == 200
    name = Evidence.objects.get().original_filename
    assert (len(name), name[-5:]) == (255, "a.pdf")


def test_a_10000_character_name_is_refused_with_a_message_not_an_empty_page(client, users, pilot):
    # Built by hand: the test client would shorten the name before sending it, a browser does not.
    client.force_login(users["owner"])
    boundary = "b0undary"
    body = (
        (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{"a" * 9996}.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n"
        ).encode()
        + PDF
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = client.generic(
        "POST",
        reverse("evidence-new", args=[_row(pilot).pk]),
        body,
        content_type=f"multipart/form-data; boundary={boundary}",
        **HTMX,
    )
    assert response.status_code == 400
    assert "names are limited to 255 characters" in response.content.decode()
    assert not Evidence.objects.exists()


# --- Isolation on the page -------------------------------------------------------------------------------------


def test_user_text_is_isolated_wherever_it_sits_next_to_other_text(client, users, pilot, owner_actor):
    # Stored through the ORM: the page must stay readable even for data that predates the input rules.
    hostile = "\u202eevil"
    Pilot.objects.filter(pk=pilot.pk).update(name=f"Claims {hostile}", value_metric_name="Minutes saved")
    stop_condition_add(
        pilot=pilot, actor=owner_actor, condition="Pause", metric="complaints", comparator="gt", threshold=Decimal(3)
    )
    StopCondition.objects.update(condition=f"Pause {hostile}", metric=f"m {hostile}")
    evidence = evidence_add(
        response=_row(pilot),
        actor=owner_actor,
        kind="note",
        title="Notes",
        note="n",
        effective_date=pilot.created_at.date(),
    )
    Evidence.objects.filter(pk=evidence.pk).update(title=f"Notes {hostile}")
    User.objects.filter(pk=users["owner"].pk).update(first_name="\u05d3\u05e0\u05d4", last_name=hostile)
    client.force_login(users["owner"])

    page = client.get(reverse("pilot", args=[pilot.pk])).content.decode()
    assert f"<h1><bdi>Claims {hostile}</bdi></h1>" in page
    assert f"\u203a <bdi>Claims {hostile}</bdi></nav>" in page
    assert f"<bdi>Pause {hostile}</bdi>" in page
    assert f"(<bdi>m {hostile}</bdi>" in page
    assert "<bdi>owner</bdi> created the pilot" in page
    # Evidence titles show in the full cards and in a line's open editor.
    full = client.get(reverse("pilot", args=[pilot.pk]), {"view": "full"}).content.decode()
    assert f"<strong><bdi>Notes {hostile}</bdi></strong>" in full
    editor = client.get(reverse("response-row", args=[_row(pilot).pk]), {"expanded": "1"}, HTTP_HX_REQUEST="true")
    assert f"<strong><bdi>Notes {hostile}</bdi></strong>" in editor.content.decode()
    assert f"<dd><bdi>\u05d3\u05e0\u05d4 {hostile}</bdi></dd>" in page

    dashboard = client.get(reverse("home"), {"q": f"Claims {hostile}"}).content.decode()
    assert f"<bdi>Claims {hostile}</bdi></a>" in dashboard
    assert f"<bdi>\u05d3\u05e0\u05d4 {hostile}</bdi>" in dashboard
    search_box = next(tag for tag in dashboard.split("<input")[1:] if 'name="q"' in tag)
    assert 'dir="auto"' in search_box and hostile in search_box

    client.force_login(users["admin"])
    members = client.get(reverse("members")).content.decode()
    assert f"<bdi>\u05d3\u05e0\u05d4 {hostile}</bdi>" in members
