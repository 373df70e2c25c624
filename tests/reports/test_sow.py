"""The statement-of-work readiness definition and its Markdown, Word and PDF exports."""

from __future__ import annotations

import html
import io
import re
import shutil
import subprocess

import markdown
import pytest
from docx import Document

from assessments.evidence.services import check_create, linked_system_create
from assessments.frameworks.models import Criterion
from assessments.pilots.models import Pilot
from assessments.pilots.services import pilot_create
from assessments.reports.sow import (
    DEFAULT_PREAMBLE,
    SowDefinition,
    md_escape,
    md_prose,
    sow_definition,
    sow_docx,
    sow_html,
    sow_markdown,
    sow_pdf,
)
from assessments.reports.sow_services import sow_text_update

HOSTILE = [
    "<script>alert(1)</script>",
    "{{ settings.SECRET_KEY }} {% debug %}",
    "# heading",
    "| a | b |",
    "[x](javascript:alert(1))",
    "<img src=file:///etc/passwd>",
]
PREAMBLE = "\n".join(HOSTILE) + "\n\n1. not a list\n---\n    not code"
SCOPE = "=====\n> not a quote\n- not a bullet\n&amp; stays &amp;"
TITLE = "<script>x</script> # h | c | [y](javascript:z) {{ t }}"


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
def checked(pilot, owner_actor) -> Pilot:
    """The pilot with a pass-rate rule on EV-03."""
    system = linked_system_create(
        pilot=pilot,
        actor=owner_actor,
        kind="eval_results",
        name="Golden set",
        configuration={"fixture": "junit-goldenset-pass.xml"},
    )
    criterion = Criterion.objects.get(framework=pilot.assessments.get().framework, code="EV-03")
    check_create(
        system=system,
        criterion=criterion,
        actor=owner_actor,
        name="Pass rate",
        metric="pass_rate",
        comparator="gte",
        threshold=0.97,
    )
    return pilot


@pytest.fixture
def hostile(checked, owner_actor) -> SowDefinition:
    Criterion.objects.filter(framework=checked.assessments.get().framework, code="GR-01").update(title=TITLE)
    sow_text_update(pilot=checked, actor=owner_actor, preamble=PREAMBLE, scope=SCOPE, expected_version=0)
    return sow_definition(pilot=checked)


def _applicable(pilot: Pilot) -> list[Criterion]:
    framework = pilot.assessments.get().framework
    return [c for c in framework.criteria.order_by("gap__order", "order") if c.applies_to(pilot.risk_tier)]


def test_it_lists_every_criterion_of_the_tier_numbered_in_framework_order(checked):
    d = sow_definition(pilot=checked)
    expected = _applicable(checked)
    assert [item.code for item in d.items] == [c.code for c in expected]
    assert [item.number for item in d.items] == list(range(1, len(expected) + 1))
    assert d.risk_tier == "High"
    assert d.text_version == 0
    assert d.preamble == DEFAULT_PREAMBLE.format(pilot="Claims triage", tier="high", framework=d.framework)


def test_it_leaves_out_criteria_that_do_not_apply_to_the_tier(checked):
    framework = checked.assessments.get().framework
    Criterion.objects.filter(framework=framework, code="EV-08").update(
        applies_to_high=False, severity_high="", applies_to_minimal=True, severity_minimal="major"
    )
    codes = [item.code for item in sow_definition(pilot=checked).items]
    assert "EV-08" not in codes
    assert "EV-07" in codes


def test_each_item_says_what_done_means_who_verifies_and_how_severe(checked):
    items = {item.code: item for item in sow_definition(pilot=checked).items}
    assert items["EV-03"].automated
    assert items["EV-03"].threshold == (
        "Automated check “Pass rate”: pass_rate ≥ 0.97, on its latest run, measured by Preflight."
    )
    assert not items["EV-01"].automated and items["EV-01"].threshold
    assert {items[code].verifier for code in ("EV-01", "OB-01", "OW-01")} == {"Delivery"}
    assert (items["GR-01"].verifier, items["GV-01"].verifier, items["CO-01"].verifier) == (
        "Security",
        "Risk & compliance",
        "Product",
    )
    assert items["EV-01"].severity == "Blocking"
    criterion = Criterion.objects.get(framework=checked.assessments.get().framework, code="EV-01")
    assert items["EV-01"].evidence == criterion.evidence_expected.strip()


def test_markdown_numbers_every_item_with_its_threshold_evidence_and_verifier(checked):
    d = sow_definition(pilot=checked)
    text = sow_markdown(d)
    for item in d.items:
        assert re.search(rf"^{item.number}\. \*\*{re.escape(item.code)} — ", text, re.M), item
    rendered = markdown.markdown(text)
    ordered = re.findall(r"<ol(?: start=\"(\d+)\")?>", rendered)
    assert ordered, "the items form an ordered list"
    assert "Automated check “Pass rate”: pass_rate ≥ 0.97, on its latest run" in text
    assert html.unescape(re.sub(r"<[^>]+>", "", rendered)).count("Done when:") == len(d.items)


def test_docx_has_real_headings_and_a_numbered_row_per_criterion(checked):
    d = sow_definition(pilot=checked)
    document = Document(io.BytesIO(sow_docx(d)))
    styles = [(p.style.name, p.text) for p in document.paragraphs if p.style.name.startswith(("Heading", "Title"))]
    assert styles[0] == ("Title", "Production-readiness definition: Claims triage")
    assert [text for style, text in styles if style == "Heading 1"] == [
        "Preamble",
        "Scope",
        "What the system must demonstrate",
    ]
    (table,) = document.tables
    rows = [[cell.text for cell in row.cells] for row in table.rows]
    assert rows[0] == ["No.", "Criterion", "Severity", "Done when", "Evidence to deliver", "Verified by"]
    body = rows[1:]
    assert [row[0] for row in body] == [str(n) for n in range(1, len(d.items) + 1)]
    assert [row[1].split(" — ")[0] for row in body] == [c.code for c in _applicable(checked)]
    ev03 = next(row for row in body if row[1].startswith("EV-03"))
    assert "pass_rate ≥ 0.97" in ev03[3]


def _md_text(text: str) -> tuple[str, str]:
    rendered = markdown.markdown(text, extensions=["tables"])
    return rendered, html.unescape(re.sub(r"<[^>]+>", "", rendered))


def test_hostile_text_comes_out_literally_in_markdown(hostile):
    text = sow_markdown(hostile)
    rendered, visible = _md_text(text)
    assert "<script" not in rendered and "<img" not in rendered and "<table" not in rendered
    assert "<a " not in rendered and "<blockquote" not in rendered and "<pre" not in rendered
    assert rendered.count("<h1>") == 1 and rendered.count("<h2>") == 3  # only ours
    assert "<ul>" not in rendered.split("<h2>What the system")[0]  # the preamble's "- " is no list
    for line in [*HOSTILE, TITLE, "1. not a list", "&amp; stays &amp;", "> not a quote", "- not a bullet", "====="]:
        assert line in visible, line
    # The raw file cannot be re-read as structure by other renderers either.
    for prose in (md_prose(PREAMBLE), md_prose(SCOPE)):
        assert not re.search(r"^\s*(#|\||>|-|=|\d+\.)", prose, re.M), prose


def test_hostile_text_comes_out_literally_in_docx(hostile):
    document = Document(io.BytesIO(sow_docx(hostile)))
    paragraphs = "\n".join(p.text for p in document.paragraphs)
    for line in HOSTILE:
        assert line in paragraphs
    cells = [cell.text for row in document.tables[0].rows for cell in row.cells]
    assert any(TITLE in cell for cell in cells)
    headings = [p.text for p in document.paragraphs if p.style.name.startswith("Heading")]
    assert headings == ["Preamble", "Scope", "What the system must demonstrate"]


def test_hostile_text_is_escaped_in_the_print_html(hostile):
    page = sow_html(hostile)
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "{{ settings.SECRET_KEY }}" in page


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="needs pdftotext (poppler-utils)")
def test_pdf_holds_every_item_and_hostile_text_literally(hostile, settings):
    pdf = sow_pdf(hostile)
    assert pdf.startswith(b"%PDF")
    for marker in (b"/JavaScript", b"/Launch", b"/EmbeddedFile"):
        assert marker not in pdf
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout
    # pdftotext guesses spaces from glyph gaps (it reads "| a |" as "|a|"), so compare without them.
    flat = "".join(text.decode().split())
    for line in [*HOSTILE, TITLE]:
        assert "".join(line.split()) in flat, line
    assert settings.SECRET_KEY not in flat
    for item in hostile.items:
        assert item.code in flat
    assert "pass_rate≥0.97" in flat


@pytest.mark.parametrize(
    "line",
    [
        *HOSTILE,
        TITLE,
        "# h",
        "### h ###",
        "> quote",
        "- item",
        "+ item",
        "* item",
        "12. item",
        "3) item",
        "---",
        "===",
        "***",
        "_em_ and *em* and __strong__",
        "`code` and ``code``",
        "![img](https://x.test/a.png)",
        "[ref]: https://x.test",
        "<https://x.test>",
        "&amp; &#60; &lt; R&D",
        "a \\* b \\",
        "$x^2$ ~~gone~~",
        "    indented code",
        "Port to C#",
        "ends in hashes ##",
    ],
)
def test_md_escape_renders_exactly_the_text(line):
    rendered = markdown.markdown(md_escape(line))
    assert rendered.startswith("<p>") and rendered.count("<") == 2, rendered  # one paragraph, nothing else
    assert html.unescape(rendered.removeprefix("<p>").removesuffix("</p>")) == line.strip()


def test_a_pilot_name_ending_in_a_hash_keeps_it_in_the_markdown_title(framework, owner_actor):
    pilot = pilot_create(organisation=framework.organisation, actor=owner_actor, name="Port to C#")
    rendered = markdown.markdown(sow_markdown(sow_definition(pilot=pilot)))
    assert "<h1>Production-readiness definition: Port to C#</h1>" in rendered


def test_line_breaks_typed_in_a_browser_stay_line_breaks_not_paragraphs():
    # A browser submits a textarea with CRLF line endings.
    typed = "First line\r\nsecond line\r\n\r\nA new paragraph\r\n \r\n\r\nand another"
    assert md_prose(typed) == "First line  \nsecond line\n\nA new paragraph\n\nand another"
    assert md_prose(typed) == md_prose(typed.replace("\r\n", "\n")) == md_prose(typed.replace("\r\n", "\r"))
    rendered = markdown.markdown(md_prose(typed))
    assert rendered.count("<p>") == 3 and rendered.count("<br />") == 1


def test_md_escape_leaves_ordinary_prose_readable():
    line = "Golden-set pass_rate ≥ 0.97 on the latest run (see the runbook), owner: Dan."
    assert md_escape(line) == line


def test_without_a_rule_the_cost_item_names_the_pilots_envelope(pilot):
    Pilot.objects.filter(pk=pilot.pk).update(cost_envelope_per_task="0.0450")
    pilot.refresh_from_db()
    item = next(i for i in sow_definition(pilot=pilot).items if i.code == "CO-03")
    assert not item.automated
    assert item.threshold == "Cost per task at most 0.045 USD (the agreed envelope)."


def test_a_saved_preamble_and_scope_replace_the_standard_wording(pilot, owner_actor):
    sow_text_update(pilot=pilot, actor=owner_actor, preamble="Ours.", scope="", expected_version=0)
    d = sow_definition(pilot=pilot)
    assert (d.preamble, d.text_version) == ("Ours.", 1)
    assert d.scope.startswith("The scope is Claims triage as described in its pilot profile")


def test_the_definition_costs_a_fixed_number_of_queries(checked, django_assert_max_num_queries):
    with django_assert_max_num_queries(6):
        sow_definition(pilot=Pilot.objects.select_related("organisation").get(pk=checked.pk))


def test_the_docx_holds_no_fields_links_or_macros(hostile):
    import zipfile

    with zipfile.ZipFile(io.BytesIO(sow_docx(hostile))) as archive:
        names = archive.namelist()
        body = archive.read("word/document.xml").decode()
    assert not [name for name in names if name.endswith((".bin", "vbaProject.bin"))]
    for marker in ("<w:hyperlink", "<w:fldSimple", "<w:instrText", "<w:fldChar"):
        assert marker not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
