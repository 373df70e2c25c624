"""The statement-of-work readiness definition: what a vendor's system must demonstrate to
count as shipped, generated from the pilot's framework version and risk tier.

``sow_definition`` reads everything once into plain dataclasses; the exports
(``sow_markdown``, ``sow_docx``, ``sow_html``, ``sow_pdf``) are functions of that value
alone. Every piece of text a person typed — the preamble and scope, but also criterion
titles, guidance and check names, which administrators and pilot owners write — is
data in every format: escaped for Markdown, set as plain runs in Word, autoescaped in
HTML. Nothing a user types can add a heading, a table row, a link or a template tag.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Callable
from dataclasses import dataclass

from django.template.loader import render_to_string
from django.utils import timezone

from assessments.evidence.models import Check
from assessments.frameworks.models import CheckKind, Criterion, GapKey, HeldEvidence, RiskTier, Severity
from assessments.organisations.models import Role
from assessments.pilots.models import Pilot
from assessments.pilots.selectors import assessment_open
from assessments.reports.models import Report, ReportKind, SowText
from assessments.reports.renderers import Rendered, ReportUnavailable, register
from assessments.text import cell_text, filename_safe

# Who verifies a criterion: the reviewer whose field its gap is (as in the demo, where
# security answers guardrails, risk governance, product cost and value, delivery the rest).
GAP_VERIFIER: dict[str, str] = {
    GapKey.EVALS: Role.DELIVERY,
    GapKey.OBSERVABILITY: Role.DELIVERY,
    GapKey.GUARDRAILS: Role.SECURITY,
    GapKey.GOVERNANCE: Role.RISK,
    GapKey.COST: Role.PRODUCT,
    GapKey.OWNERSHIP: Role.DELIVERY,
}

DEFAULT_PREAMBLE = (
    "This document defines what {pilot} must demonstrate before it counts as shipped to production. "
    "Each numbered item below is one acceptance criterion. An item is done when its acceptance "
    "threshold is met and the evidence listed for it has been delivered, is current, and has been "
    "accepted by the role named as verifier. The system is accepted only when every item is done."
)
DEFAULT_SCOPE = (
    "The scope is {pilot} as described in its pilot profile, assessed as a {tier}-risk system under "
    "the EU AI Act, against {framework}. Items apply to the production deployment and to everything "
    "it depends on: models, prompts, tools, data flows, hosting and operations."
)

MD_TYPE = "text/markdown; charset=utf-8"
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PDF_TYPE = "application/pdf"


class SowUnavailable(ReportUnavailable):
    """The pilot has no open assessment, so there is nothing to define."""


@dataclass(frozen=True)
class SowItem:
    """One numbered acceptance item: a criterion, what done means and who says so."""

    number: int
    code: str
    title: str
    gap: str
    severity: str  # the label: Blocking, Major, Minor
    threshold: str  # the acceptance threshold, in words
    automated: bool  # the threshold is a configured check rule, measured by Preflight
    evidence: str
    verifier: str  # the role label
    max_evidence_age_days: int


@dataclass(frozen=True)
class SowDefinition:
    """Everything an export shows; built by ``sow_definition``."""

    pilot_id: int
    pilot_name: str
    pilot_slug: str
    organisation: str
    framework: str  # "AI production readiness v1"
    risk_tier: str  # the label
    preamble: str
    scope: str
    text_version: int  # 0 until someone saves the preamble or scope
    items: tuple[SowItem, ...]
    generated_on: dt.date

    @property
    def blocking(self) -> int:
        return sum(1 for item in self.items if item.severity == Severity.BLOCKING.label)


def _check_threshold(criterion: Criterion, checks: list[Check]) -> str:
    rules = [f"“{check.name}”: {check.rule_text()}" for check in checks]
    return "Automated check " + "; ".join(rules) + ", on its latest run, measured by Preflight."


def _words_threshold(criterion: Criterion, pilot: Pilot) -> str:
    """The threshold when no rule is configured: the check it expects, else the guidance."""
    if criterion.check_kind == CheckKind.COST_PER_TASK_WITHIN_ENVELOPE and pilot.cost_envelope_per_task is not None:
        return f"Cost per task at most {pilot.cost_envelope_per_task.normalize():f} USD (the agreed envelope)."
    if criterion.preflight_evidence:
        held = HeldEvidence(criterion.preflight_evidence).label
        return f"{held}, recorded by Preflight itself (no upload needed), and: {criterion.guidance.strip()}"
    if criterion.check_kind:
        kind = CheckKind(criterion.check_kind).label
        return f"{kind} (automated check to be linked), and: {criterion.guidance.strip()}"
    return criterion.guidance.strip()


def sow_definition(*, pilot: Pilot, today: dt.date | None = None) -> SowDefinition:
    """The definition for ``pilot``: the criteria of its open assessment's framework that apply
    to its risk tier, numbered in framework order, with the thresholds its checks set."""
    assessment = assessment_open(pilot=pilot)
    if assessment is None:
        raise SowUnavailable(f"{pilot.name} has no open assessment.")
    framework = assessment.framework
    tier = pilot.risk_tier
    criteria = [
        c
        for c in Criterion.objects.filter(framework=framework)
        .select_related("gap")
        .order_by("gap__order", "order", "code")
        if c.applies_to(tier)
    ]
    # Checks point at a criterion row; after a move to a newer version they are matched by code.
    checks_by_code: dict[str, list[Check]] = {}
    for check in Check.objects.filter(linked_system__pilot=pilot).select_related("criterion").order_by("name"):
        checks_by_code.setdefault(check.criterion.code, []).append(check)
    items = []
    for number, criterion in enumerate(criteria, start=1):
        checks = checks_by_code.get(criterion.code, [])
        items.append(
            SowItem(
                number=number,
                code=criterion.code,
                title=criterion.title,
                gap=criterion.gap.name,
                severity=Severity(criterion.severity_for(tier)).label,
                threshold=_check_threshold(criterion, checks) if checks else _words_threshold(criterion, pilot),
                automated=bool(checks),
                evidence=criterion.evidence_expected.strip(),
                verifier=Role(GAP_VERIFIER.get(criterion.gap.key, Role.DELIVERY)).label,
                max_evidence_age_days=criterion.max_evidence_age_days,
            )
        )
    saved = SowText.objects.filter(pilot=pilot).first()
    names = {"pilot": pilot.name, "tier": RiskTier(tier).label.lower(), "framework": str(framework)}
    return SowDefinition(
        pilot_id=pilot.pk,
        pilot_name=pilot.name,
        pilot_slug=pilot.slug,
        organisation=pilot.organisation.name,
        framework=str(framework),
        risk_tier=RiskTier(tier).label,
        preamble=(saved.preamble.strip() if saved else "") or DEFAULT_PREAMBLE.format(**names),
        scope=(saved.scope.strip() if saved else "") or DEFAULT_SCOPE.format(**names),
        text_version=saved.version if saved else 0,
        items=tuple(items),
        generated_on=today or timezone.localdate(),
    )


# --- Markdown ------------------------------------------------------------------------------

# Characters that make structure anywhere in a line. Backslash escapes are the ones
# CommonMark and Python-Markdown both honour; the rest become numeric references, which
# both decode (and which template engines run over Markdown, such as Liquid, leave alone).
_MD_ALWAYS = {
    "\\": "\\\\",
    "`": "\\`",
    "*": "\\*",
    "[": "\\[",
    "]": "\\]",
    "<": "&lt;",
    "|": "&#124;",
    "~": "&#126;",
    "$": "&#36;",
    "{": "&#123;",
    "}": "&#125;",
}
# What makes structure only at the start of a line: headings, quotes, bullets, rules,
# setext underlines and ordered-list markers ("12." or "12)").
_MD_LINE_START = re.compile(r"^(?:[#>+=-]|\d{1,9}[.)])")
_MD_ENTITY_LIKE = re.compile(r"#?[0-9A-Za-z]+;")
_LINE_BREAKS = re.compile(r"\r\n|\r|\n")
_BLANK_LINES = re.compile(r"\n[ \t]*(?:\n[ \t]*)+")


def md_escape(text: str) -> str:
    """One line of user text as Markdown that renders as exactly that text.

    Anything that could open a link, image, emphasis, code span, HTML tag, entity, table
    cell or math is escaped wherever it stands; what makes a heading, quote, list or rule
    is escaped where it would: at the start of the line (and a heading's closing "#"s at
    its end). Line breaks become spaces,
    leading spaces (an indented code block) are dropped, controls become U+FFFD. Ordinary
    prose (full stops, hyphens, "pass_rate", parentheses) stays readable in the raw file.
    """
    line = _LINE_BREAKS.sub(" ", cell_text(text)).replace("\t", " ").strip()
    out = []
    for position, char in enumerate(line):
        if char == "_":
            # Underscores inside a word never make emphasis; at a word's edge they can.
            inside = 0 < position < len(line) - 1 and line[position - 1].isalnum() and line[position + 1].isalnum()
            out.append("_" if inside else "\\_")
        elif char == "&":
            # Only an ampersand that would read as an entity ("&amp;", "&#60;") needs escaping.
            out.append("&amp;" if _MD_ENTITY_LIKE.match(line, position + 1) else "&")
        else:
            out.append(_MD_ALWAYS.get(char, char))
    marker = _MD_LINE_START.match(line)
    if marker:
        last = marker.end() - 1  # the character that makes the marker: "#", ">", "-", "." ...
        out[last] = "&#61;" if line[last] == "=" else "\\" + line[last]
    # Trailing "#"s would close a heading the line is put in (the pilot's name in the
    # title), and a heading drops them: "Port to C#" would print as "Port to C".
    end = len(line)
    while end and line[end - 1] == "#":
        end -= 1
        out[end] = "\\#"
    return "".join(out)


def md_prose(text: str) -> str:
    """Multi-line user text: paragraphs kept, each line escaped, lines joined by hard breaks."""
    paragraphs = []
    # Line endings first: a browser sends a textarea's as CRLF, whose "\r" and "\n" would
    # otherwise read as two breaks, i.e. a blank line, and part every line into a paragraph.
    for block in _BLANK_LINES.split(_LINE_BREAKS.sub("\n", text).strip()):
        lines = [md_escape(line) for line in block.split("\n") if line.strip()]
        if lines:
            # Two trailing spaces: a hard line break in CommonMark and Python-Markdown alike.
            paragraphs.append("  \n".join(lines))
    return "\n\n".join(paragraphs)


def sow_markdown(d: SowDefinition) -> str:
    """The definition as Markdown: headings, the numbered list of acceptance items."""
    lines = [
        f"# Production-readiness definition: {md_escape(d.pilot_name)}",
        "",
        f"{md_escape(d.organisation)} · framework {md_escape(d.framework)} · "
        f"risk tier {md_escape(d.risk_tier)} · {d.generated_on.isoformat()}",
        "",
        "## Preamble",
        "",
        md_prose(d.preamble),
        "",
        "## Scope",
        "",
        md_prose(d.scope),
        "",
        "## What the system must demonstrate",
        "",
        f"{len(d.items)} items, {d.blocking} of them blocking. An item is done when its acceptance "
        "threshold is met, its evidence is delivered and current, and its verifier has accepted it.",
        "",
    ]
    for item in d.items:
        # Continuation lines are indented to the item's text, so "10." keeps its sub-list.
        pad = " " * len(f"{item.number}. ")
        lines += [
            f"{item.number}. **{md_escape(item.code)} — {md_escape(item.title)}**  ",
            f"{pad}Gap: {md_escape(item.gap)} · severity: {md_escape(item.severity)} · "
            f"verified by: {md_escape(item.verifier)}",
            "",
            f"{pad}- Done when: {md_escape(item.threshold)}",
            f"{pad}- Evidence to deliver: {md_escape(item.evidence)} "
            f"(no older than {item.max_evidence_age_days} days at acceptance)",
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"


# --- Word --------------------------------------------------------------------------------

DOCX_COLUMNS = ("No.", "Criterion", "Severity", "Done when", "Evidence to deliver", "Verified by")


def _plain(text: str) -> str:
    # XML 1.0 cannot hold most control characters; python-docx would refuse them.
    return cell_text(text)


def sow_docx(d: SowDefinition) -> bytes:
    """The definition as a Word document: Title and Heading styles, and one table, numbered
    by its first column. Every piece of text is a plain run, never a field or markup."""
    from docx import Document
    from docx.shared import Pt

    document = Document()
    document.core_properties.title = _plain(f"Production-readiness definition: {d.pilot_name}")
    document.core_properties.author = "Preflight"
    document.add_heading(_plain(f"Production-readiness definition: {d.pilot_name}"), level=0)
    document.add_paragraph(
        _plain(f"{d.organisation} · framework {d.framework} · risk tier {d.risk_tier} · {d.generated_on.isoformat()}")
    )
    for heading, text in (("Preamble", d.preamble), ("Scope", d.scope)):
        document.add_heading(heading, level=1)
        for paragraph in re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n").strip()):
            document.add_paragraph().add_run(_plain(paragraph))
    document.add_heading("What the system must demonstrate", level=1)
    document.add_paragraph(
        f"{len(d.items)} items, {d.blocking} of them blocking. An item is done when its acceptance threshold "
        "is met, its evidence is delivered and current, and its verifier has accepted it."
    )
    table = document.add_table(rows=1, cols=len(DOCX_COLUMNS))
    table.style = "Table Grid"
    for cell, label in zip(table.rows[0].cells, DOCX_COLUMNS, strict=True):
        cell.text = ""
        cell.paragraphs[0].add_run(label).bold = True
    for item in d.items:
        cells = table.add_row().cells
        values = (
            str(item.number),
            f"{item.code} — {item.title} ({item.gap})",
            item.severity,
            item.threshold,
            f"{item.evidence} (no older than {item.max_evidence_age_days} days at acceptance)",
            item.verifier,
        )
        for cell, value in zip(cells, values, strict=True):
            cell.text = ""
            cell.paragraphs[0].add_run(_plain(value))
    for row in table.rows:
        for cell in row.cells:
            for paragraph in cell.paragraphs:
                for run in paragraph.runs:
                    run.font.size = Pt(9)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


# --- HTML and PDF ------------------------------------------------------------------------


def sow_html(d: SowDefinition) -> str:
    """The print layout (autoescaped template) the PDF is made from."""
    return render_to_string("reports/sow.html", {"d": d})


def sow_pdf(d: SowDefinition) -> bytes:
    """The definition as PDF, through the sandboxed renderer (no fetching, time and memory limits)."""
    from assessments.reports.sandbox import pdf_render

    return pdf_render(sow_html(d))


# --- Renderers: (bytes, content type, file name) per format, for the views and the command,
# and the same registered by report kind for the background report jobs.


def sow_filename(d: SowDefinition, ext: str) -> str:
    return filename_safe(f"{d.pilot_slug or 'pilot'}-readiness-definition-{d.generated_on.isoformat()}.{ext}")


def render_sow_md(pilot: Pilot) -> tuple[bytes, str, str]:
    d = sow_definition(pilot=pilot)
    return sow_markdown(d).encode(), MD_TYPE, sow_filename(d, "md")


def render_sow_docx(pilot: Pilot) -> tuple[bytes, str, str]:
    d = sow_definition(pilot=pilot)
    return sow_docx(d), DOCX_TYPE, sow_filename(d, "docx")


def render_sow_pdf(pilot: Pilot) -> tuple[bytes, str, str]:
    d = sow_definition(pilot=pilot)
    return sow_pdf(d), PDF_TYPE, sow_filename(d, "pdf")


RENDERERS: dict[str, Callable[[Pilot], tuple[bytes, str, str]]] = {
    "md": render_sow_md,
    "docx": render_sow_docx,
    "pdf": render_sow_pdf,
}
KINDS = {"md": ReportKind.SOW_MD, "docx": ReportKind.SOW_DOCX, "pdf": ReportKind.SOW_PDF}


def _registered(fmt: str) -> Callable[[Report], Rendered]:
    def render(report: Report) -> Rendered:
        if report.pilot is None:
            raise SowUnavailable("A statement-of-work definition is made for a pilot.")
        content, content_type, filename = RENDERERS[fmt](report.pilot)
        return Rendered(content=content, filename=filename, content_type=content_type)

    render.__name__ = f"report_render_sow_{fmt}"
    return render


for _fmt, _kind in KINDS.items():
    register(_kind)(_registered(_fmt))
