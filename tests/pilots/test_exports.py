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
