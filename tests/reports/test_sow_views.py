"""The definition's pages, downloads and the sow_render command."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from docx import Document

from assessments.audit.models import AuditEvent
from assessments.pilots.services import pilot_create
from assessments.reports.models import Report, ReportKind, ReportStatus, SowText
from assessments.reports.services import report_render_execute, report_request
from assessments.reports.sow_services import sow_text_update

pytestmark = pytest.mark.django_db

HOSTILE = "<script>alert(1)</script> {{ x }} # h | a | [x](javascript:y)"


@pytest.fixture
def pilot(framework, users, owner_actor):
    return pilot_create(
        organisation=framework.organisation, actor=owner_actor, name="Claims triage", technical_owner=users["owner"]
    )


def _post(client, pilot, **data):
    body = {"preamble": "", "scope": "", "version": 0} | data
    return client.post(reverse("sow-edit", args=[pilot.pk]), body)


def test_every_member_reads_the_page_and_only_editors_see_the_edit_link(client, users, pilot):
    client.force_login(users["viewer"])
    page = client.get(reverse("sow", args=[pilot.pk]))
    assert page.status_code == 200
    assert b"EV-01" in page.content and b"Download Word" in page.content
    assert reverse("sow-edit", args=[pilot.pk]).encode() not in page.content
    client.force_login(users["owner"])
    assert reverse("sow-edit", args=[pilot.pk]).encode() in client.get(reverse("sow", args=[pilot.pk])).content


def test_a_viewer_cannot_edit_and_nothing_changes(client, users, pilot):
    client.force_login(users["viewer"])
    assert client.get(reverse("sow-edit", args=[pilot.pk])).status_code == 403
    events = AuditEvent.objects.count()
    assert _post(client, pilot, preamble="Mine now").status_code == 403
    assert not SowText.objects.filter(pilot=pilot).exists()
    assert AuditEvent.objects.count() == events


def test_a_reviewer_who_does_not_own_the_pilot_cannot_edit(client, users, pilot):
    client.force_login(users["security"])
    assert _post(client, pilot, preamble="Mine now").status_code == 403
    assert not SowText.objects.filter(pilot=pilot).exists()


def test_another_organisation_gets_404(client, other_org, pilot):
    from assessments.audit.context import Actor
    from assessments.organisations.services import membership_grant, user_create

    stranger = user_create(
        organisation=other_org,
        username="stranger",
        email="s@globex.test",
        password="x-pw-1234567",
        actor=Actor.system("t"),
    )
    membership_grant(organisation=other_org, user=stranger, role="admin", actor=Actor.system("t"))
    client.force_login(stranger)
    assert client.get(reverse("sow", args=[pilot.pk])).status_code == 404
    assert client.get(reverse("sow-download", args=[pilot.pk, "md"])).status_code == 404
    assert _post(client, pilot, preamble="x").status_code == 404


def test_the_owner_saves_and_hostile_text_is_shown_literally(client, users, pilot):
    client.force_login(users["owner"])
    answer = _post(client, pilot, preamble=HOSTILE, scope="Line one\nLine two")
    assert answer.status_code == 302
    saved = SowText.objects.get(pilot=pilot)
    assert (saved.preamble, saved.version, saved.updated_by) == (HOSTILE, 1, users["owner"])
    page = client.get(reverse("sow", args=[pilot.pk])).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert "{{ x }}" in page


def test_a_stale_version_is_a_409_and_keeps_the_newer_text(client, users, pilot, owner_actor):
    sow_text_update(pilot=pilot, actor=owner_actor, preamble="First", scope="", expected_version=0)
    client.force_login(users["admin"])
    answer = _post(client, pilot, preamble="Based on nothing", version=0)
    assert answer.status_code == 409
    assert "Based on nothing" in answer.content.decode()  # what was typed is not lost
    assert SowText.objects.get(pilot=pilot).preamble == "First"
    assert _post(client, pilot, preamble="Second", version=1).status_code == 302
    assert SowText.objects.get(pilot=pilot).preamble == "Second"


def test_an_empty_post_is_a_422_that_says_what_is_missing(client, users, pilot):
    client.force_login(users["owner"])
    answer = client.post(reverse("sow-edit", args=[pilot.pk]), {})
    assert answer.status_code == 422
    assert "Version: This field is required." in answer.content.decode()
    assert not SowText.objects.filter(pilot=pilot).exists()


def test_bad_input_is_a_422_beside_the_field(client, users, pilot):
    client.force_login(users["owner"])
    answer = _post(client, pilot, preamble="bell \x07 here")
    assert answer.status_code == 422
    assert "U+0007" in answer.content.decode()
    assert _post(client, pilot, scope="x" * 20_001).status_code == 422
    assert _post(client, pilot, version="abc").status_code == 422
    assert not SowText.objects.filter(pilot=pilot).exists()


@pytest.mark.parametrize(
    ("fmt", "content_type", "magic"),
    [
        ("md", "text/markdown; charset=utf-8", b"# Production-readiness definition"),
        ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", b"PK"),
    ],
)
def test_members_download_markdown_and_word(client, users, pilot, fmt, content_type, magic):
    client.force_login(users["viewer"])
    answer = client.get(reverse("sow-download", args=[pilot.pk, fmt]))
    assert answer.status_code == 200
    assert answer["Content-Type"] == content_type
    assert answer["Content-Disposition"].startswith('attachment; filename="claims-triage-readiness-definition-')
    assert answer.content.startswith(magic)
    assert answer["Cache-Control"] == "private, no-store"


@pytest.mark.parametrize("fmt", ["pdf", "html"])
def test_other_formats_are_not_made_in_the_request(client, users, pilot, fmt):
    client.force_login(users["viewer"])
    assert client.get(reverse("sow-download", args=[pilot.pk, fmt])).status_code == 404


def test_make_pdf_queues_a_recorded_report_that_renders_the_definition(client, users, pilot):
    client.force_login(users["viewer"])
    page = client.get(reverse("sow", args=[pilot.pk])).content.decode()
    assert f'action="{reverse("pilot-report-new", args=[pilot.pk])}"' in page
    assert 'name="kind" value="sow_pdf"' in page
    assert client.post(reverse("pilot-report-new", args=[pilot.pk]), {"kind": "sow_pdf"}).status_code == 302
    report = Report.objects.get(pilot=pilot, kind=ReportKind.SOW_PDF)
    done = report_render_execute(report_id=report.pk)
    assert done is not None and done.status == ReportStatus.DONE, done and done.error
    assert done.file.read().startswith(b"%PDF")


@pytest.mark.parametrize("kind", [ReportKind.SOW_MD, ReportKind.SOW_DOCX])
def test_the_report_jobs_render_markdown_and_word_too(pilot, owner_actor, kind):
    report = report_request(kind=kind, pilot=pilot, actor=owner_actor)
    done = report_render_execute(report_id=report.pk)
    assert done is not None and done.status == ReportStatus.DONE, done and done.error
    assert done.file.name.endswith(".md" if kind == ReportKind.SOW_MD else ".docx")


def test_the_command_writes_each_format_by_id_or_slug(pilot, tmp_path):
    out = tmp_path / "sow.docx"
    call_command("sow_render", "--pilot", str(pilot.pk), "--format", "docx", "--out", str(out), stderr=io.StringIO())
    rows = Document(io.BytesIO(out.read_bytes())).tables[0].rows
    assert len(rows) - 1 == pilot.assessments.get().framework.criteria.count()
    md = tmp_path / "sow.md"
    call_command("sow_render", "--pilot", pilot.slug, "--format", "md", "--out", str(md), stderr=io.StringIO())
    assert md.read_text().startswith("# Production-readiness definition: Claims triage")
    with pytest.raises(CommandError, match="No pilot"):
        call_command("sow_render", "--pilot", "nope", "--format", "md", "--out", str(md))


def test_the_editor_opens_with_the_saved_text_and_its_version(client, users, pilot, owner_actor):
    client.force_login(users["owner"])
    blank = client.get(reverse("sow-edit", args=[pilot.pk]))
    assert blank.status_code == 200
    assert 'name="version" value="0"' in blank.content.decode()
    sow_text_update(pilot=pilot, actor=owner_actor, preamble="<b>Saved</b>", scope="", expected_version=0)
    page = client.get(reverse("sow-edit", args=[pilot.pk])).content.decode()
    assert 'name="version" value="1"' in page
    assert "&lt;b&gt;Saved&lt;/b&gt;</textarea>" in page


def test_the_command_makes_a_pdf_and_asks_which_organisation_when_a_slug_is_shared(
    pilot, other_org, framework, default_spec, tmp_path
):
    from assessments.audit.context import Actor
    from assessments.frameworks.services import framework_load

    out = tmp_path / "sow.pdf"
    call_command("sow_render", "--pilot", pilot.slug, "--format", "pdf", "--out", str(out), stderr=io.StringIO())
    assert out.read_bytes().startswith(b"%PDF")
    system = Actor.system("test")
    framework_load(organisation=other_org, spec=default_spec, actor=system)
    pilot_create(organisation=other_org, actor=system, name="Claims triage")
    with pytest.raises(CommandError, match="--org"):
        call_command("sow_render", "--pilot", pilot.slug, "--format", "md", "--out", str(out))
    args = ["--pilot", pilot.slug, "--org", "globex", "--format", "md", "--out", str(out)]
    call_command("sow_render", *args, stderr=io.StringIO())
    assert out.read_text().startswith("# Production-readiness definition: Claims triage")
