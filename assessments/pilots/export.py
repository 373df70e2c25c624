"""A pilot's checklist as CSV or XLSX, for people who live in spreadsheets.

Cells that a spreadsheet would run as a formula (starting with = + - @, tab or
carriage return) are neutralised with a leading apostrophe; XLSX cells are
always written as values, never formulas. Control characters other than tab and
newlines become U+FFFD in both formats: XLSX cannot store most of them (openpyxl
refuses the whole workbook), and a CSV should say the same as the workbook.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence

from openpyxl import Workbook
from openpyxl.cell.cell import Cell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from assessments.pilots.models import Pilot
from assessments.pilots.selectors import Checklist
from assessments.text import cell_text

HEADER = [
    "Gap",
    "Code",
    "Criterion",
    "Severity",
    "Applies to this risk tier",
    "Status",
    "Justification",
    "Owner",
    "Due date",
    "Evidence items",
    "Latest evidence counts until",
    "Blocking because",
]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _safe(value: object) -> str:
    text = cell_text("" if value is None else str(value))
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def checklist_rows(data: Checklist) -> list[list[str]]:
    rows = []
    for row in data.rows:
        response, criterion = row.response, row.response.criterion
        latest = max((e.expiry for e in row.evidence), default=None)
        owner = response.owner
        rows.append(
            [
                criterion.gap.name,
                criterion.code,
                criterion.title,
                row.severity_label,
                "yes" if row.criterion_row.applies else "no",
                response.get_status_display(),
                response.justification,
                (owner.get_full_name() or owner.username) if owner else "",
                response.due_date.isoformat() if response.due_date else "",
                str(len(row.evidence)),
                latest.isoformat() if latest else "",
                row.blocker_reason or "",
            ]
        )
    return rows


def _preamble(pilot: Pilot, data: Checklist, now: dt.datetime) -> list[list[str]]:
    card = data.card
    return [
        ["Pilot", pilot.name],
        ["Framework", str(data.assessment.framework)],
        ["Overall score", "" if card.overall is None else str(card.overall)],
        ["Ready", "yes" if card.is_ready else "no"],
        ["Exported at", now.isoformat(timespec="seconds")],
        [],
    ]


def checklist_csv(*, pilot: Pilot, data: Checklist, now: dt.datetime) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    for line in [*_preamble(pilot, data, now), HEADER, *checklist_rows(data)]:
        writer.writerow([_safe(cell) for cell in line])
    # A BOM so spreadsheet programs read the file as UTF-8.
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def checklist_xlsx(*, pilot: Pilot, data: Checklist, now: dt.datetime) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Checklist"
    preamble = _preamble(pilot, data, now)
    for line in preamble:
        sheet.append([cell_text(value) for value in line])
    header_row = len(preamble) + 1
    sheet.append(HEADER)
    for cell in sheet[header_row]:
        cell.font = Font(bold=True)
    for line in checklist_rows(data):
        sheet.append([cell_text(value) for value in line])
    for row in sheet.iter_rows():
        for cell in row:
            if isinstance(cell, Cell) and isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"  # a value, never a formula
    widths: Sequence[int] = (16, 8, 48, 10, 10, 14, 48, 18, 12, 10, 14, 36)
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = f"A{header_row + 1}"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
