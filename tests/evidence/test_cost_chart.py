"""The cost gap on the pilot page: the newest usage export's cost per task by day, drawn
against the pilot's envelope, with the figures in words beside it."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from assessments.evidence.charts import cost_chart_svg
from assessments.evidence.selectors import cost_trend
from assessments.evidence.services import check_create, check_run_execute, check_run_request, linked_system_create
from assessments.pilots.models import Response
from assessments.pilots.services import pilot_create, pilot_update


def test_days_over_the_envelope_are_red_and_the_envelope_is_labelled() -> None:
    svg = str(cost_chart_svg([("2026-11-01", 0.01), ("2026-11-02", 0.03)], envelope=0.02))
    assert svg.count('class="spark-pass"') == 1 and svg.count('class="spark-fail"') == 1
    assert "envelope $0.02" in svg
    assert "2026-11-01" in svg and "2026-11-02" in svg
    assert 'aria-label="Cost per task over 2 days against the $0.02 envelope"' in svg
    no_envelope = str(cost_chart_svg([("2026-11-01", 0.01)], envelope=None))
    assert "cost-envelope" not in no_envelope and "spark-fail" not in no_envelope
    assert str(cost_chart_svg([], envelope=0.02)) == ""


@pytest.fixture
def priced_pilot(framework, users, owner_actor):
    pilot = pilot_create(
        organisation=framework.organisation, actor=owner_actor, name="Claims triage", technical_owner=users["owner"]
    )
    return pilot_update(
        pilot=pilot, actor=owner_actor, expected_monthly_volume=20000, cost_envelope_per_task=Decimal("0.0001")
    )


def test_the_pilot_page_shows_the_measured_cost_against_the_envelope(client, users, owner_actor, priced_pilot) -> None:
    pilot = priced_pilot
    criterion = Response.objects.get(assessment__pilot=pilot, criterion__code="CO-02").criterion
    system = linked_system_create(
        pilot=pilot, actor=owner_actor, kind="usage_cost", name="Request log",
        configuration={"fixture": "usage-requests.csv"},
    )  # fmt: skip
    check = check_create(
        system=system, criterion=criterion, actor=owner_actor, name="Cost per task", metric="cost_per_task",
        comparator="lte", threshold=0.0001,
    )  # fmt: skip
    client.force_login(users["viewer"])
    assert "Measured cost" not in client.get(reverse("pilot", args=[pilot.pk])).content.decode()

    run = check_run_execute(run_id=check_run_request(check=check, actor=owner_actor).pk)

    assert run is not None and run.status == "ok"
    trend = cost_trend(pilot=pilot)
    assert trend is not None and len(trend.series) >= 2
    assert trend.cost_per_task == run.facts["metrics"]["cost_per_task"]
    page = client.get(reverse("pilot", args=[pilot.pk])).content.decode()
    assert "Measured cost" in page
    assert '<svg class="cost-chart"' in page
    assert "Over the envelope" in page
    assert f"over {trend.tasks} tasks" in page
