"""Checklist exports read back with the csv module and openpyxl."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse
from openpyxl import load_workbook

from assessments.pilots.models import Response
from assessments.pilots.services import pilot_create, response_update


@pytest.fixture
def pilot(framework, users, owner_actor):
    pilot = pilot_create(
        organisation=framework.organisation, actor=owner_actor, name="Export me", technical_owner=users["owner"]
    )
    response = Response.objects.get(assessment__pilot=pilot, criterion__code="EV-01")
    response_update(
        response=response,
        actor=owner_actor,
        expected_version=1,
        status="not_met",
        justification='=HYPERLINK("https://evil.test","x")',
    )
    return pilot


def test_csv_has_a_row_per_criterion_and_neutralises_formulas(client, users, pilot, framework):
    client.force_login(users["viewer"])
    response = client.get(reverse("pilot-export", args=[pilot.pk, "csv"]))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="export-me-checklist-')
    assert response["Cache-Control"] == "private, no-store"
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    header = rows.index(next(r for r in rows if r and r[0] == "Gap"))
    body = rows[header + 1 :]
    assert len(body) == framework.criteria.count()
    ev01 = next(r for r in body if r[1] == "EV-01")
    assert ev01[5] == "Not met"
    assert ev01[6].startswith("'=HYPERLINK")


def test_xlsx_loads_back_with_values_not_formulas(client, users, pilot, framework):
    client.force_login(users["owner"])
    response = client.get(reverse("pilot-export", args=[pilot.pk, "xlsx"]))
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.content)).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    header = next(i for i, r in enumerate(values) if r[0] == "Gap")
    body = values[header + 1 :]
    assert len(body) == framework.criteria.count()
    assert next(r for r in body if r[1] == "EV-01")[5] == "Not met"
    cell = sheet.cell(row=header + 2, column=7)
    assert (cell.value, cell.data_type) == ('=HYPERLINK("https://evil.test","x")', "s")  # text, not a formula


def test_exports_are_for_members_only_and_formats_are_checked(client, users, pilot, other_org):
    client.force_login(users["owner"])
    assert client.get(reverse("pilot-export", args=[pilot.pk, "pdf"])).status_code == 404
    client.logout()
    assert client.get(reverse("pilot-export", args=[pilot.pk, "csv"])).status_code == 302


def test_another_organisations_member_gets_404_for_both_formats(client, pilot, other_org):
    from assessments.audit.context import Actor
    from assessments.organisations.services import membership_grant, user_create

    outsider = user_create(
        organisation=other_org, username="mallory", email="m@x.test", password="pw", actor=Actor.system("t")
    )
    membership_grant(organisation=other_org, user=outsider, role="admin", actor=Actor.system("t"))
    client.force_login(outsider)
    for fmt in ("csv", "xlsx"):
        assert client.get(reverse("pilot-export", args=[pilot.pk, fmt])).status_code == 404


HOSTILE = ["+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1+1)", "=1+1"]


def _hostile_checklist(pilot, owner_actor) -> list[str]:
    codes = []
    responses = Response.objects.filter(assessment__pilot=pilot).exclude(criterion__code="EV-01")
    for response, value in zip(responses.order_by("criterion__gap__order", "criterion__order"), HOSTILE, strict=False):
        response_update(
            response=response, actor=owner_actor, expected_version=response.version, status="met", justification=value
        )
        codes.append(response.criterion.code)
    return codes


def test_every_formula_start_is_neutralised_in_csv(client, users, pilot, owner_actor):
    codes = _hostile_checklist(pilot, owner_actor)
    client.force_login(users["viewer"])
    rows = list(csv.reader(io.StringIO(client.get(reverse("pilot-export", args=[pilot.pk, "csv"])).content.decode())))
    by_code = {r[1]: r for r in rows if len(r) > 6}
    assert [by_code[code][6] for code in codes] == ["'" + value for value in HOSTILE]


def test_the_xlsx_has_the_header_block_a_bold_frozen_header_and_only_values(client, users, pilot, owner_actor):
    codes = _hostile_checklist(pilot, owner_actor)
    client.force_login(users["viewer"])
    sheet = load_workbook(io.BytesIO(client.get(reverse("pilot-export", args=[pilot.pk, "xlsx"])).content)).active
    block = {row[0].value: row[1].value for row in sheet.iter_rows(max_row=5)}
    assert block["Pilot"] == "Export me"
    assert block["Framework"].endswith(" v1")
    assert block["Ready"] == "no"
    header = next(row[0].row for row in sheet.iter_rows() if row[0].value == "Gap")
    assert all(cell.font.bold for cell in sheet[header])
    assert sheet.freeze_panes == f"A{header + 1}"
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)
    by_code = {row[1].value: row for row in sheet.iter_rows(min_row=header + 1)}
    assert [by_code[code][6].value for code in codes] == HOSTILE
