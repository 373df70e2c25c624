"""The compact checklist in real Chromium: filter to "mine", walk the open items by keyboard, scores move."""

from __future__ import annotations

import re

import pytest
from django.db.models import Q
from playwright.sync_api import expect

from assessments.pilots.models import Response
from assessments.pilots.services import pilot_create, response_update
from tests.browser.test_checklist_journeys import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def pilot(framework, users, owner_actor):
    pilot = pilot_create(
        organisation=framework.organisation,
        actor=owner_actor,
        name="Claims triage assistant",
        technical_owner=users["owner"],
        risk_tier="limited",
    )
    # Everything is handed to reviewers except four criteria the owner keeps.
    responses = list(
        Response.objects.filter(assessment__pilot=pilot).order_by("criterion__gap__order", "criterion__order")
    )
    for response in responses[4:]:
        response_update(response=response, actor=owner_actor, expected_version=1, owner=users["security"])
    response_update(response=responses[1], actor=owner_actor, expected_version=1, owner=users["owner"])
    return pilot


def test_an_owner_walks_their_open_items_by_keyboard_and_the_scores_update(page, live_server, users, pilot, shot):
    page.set_viewport_size({"width": 1400, "height": 900})
    sign_in(page, live_server, "owner")
    page.goto(f"{live_server.url}/pilots/{pilot.pk}/")
    lines = page.locator("#checklist article.line")
    expect(lines).to_have_count(Response.objects.filter(assessment__pilot=pilot).count())
    shot("compact-1400")

    # Filter to "mine": the URL keeps the filter and only the owner's four criteria remain.
    page.get_by_label("Mine").check()
    expect(page).to_have_url(re.compile(r"[?&]mine=1"))
    expect(lines).to_have_count(4)
    mine = list(
        Response.objects.filter(assessment__pilot=pilot)
        .filter(Q(owner__isnull=True) | Q(owner=users["owner"]))
        .values_list("pk", flat=True)
    )
    assert len(mine) == 4
    overall = page.get_by_test_id("overall-score")
    expect(overall).to_have_text("0")

    # Keyboard only: n opens the next open item with the cursor on its status, m picks "Met",
    # the change saves, Escape closes the editor, and n moves on.
    page.locator("body").press("Escape")
    saved = []
    for _ in range(3):
        page.keyboard.press("n")
        editor = page.locator("#checklist article.crit.is-expanded")
        expect(editor).to_have_count(1)
        row_id = editor.get_attribute("id")
        focused = page.evaluate("() => document.activeElement.name")
        assert focused.endswith("-status"), focused
        page.keyboard.type("m")  # selects "Met"; the change event saves
        expect(page.locator(f"#{row_id} .saved")).to_be_visible()
        page.keyboard.press("Escape")
        expect(page.locator(f"#{row_id}.line")).to_be_visible()
        expect(page.locator(f"#{row_id} select")).to_have_value("met")
        saved.append(int(row_id.removeprefix("row-")))
    assert len(set(saved)) == 3 and set(saved) <= set(mine)
    assert set(Response.objects.filter(pk__in=saved).values_list("status", flat=True)) == {"met"}
    expect(overall).not_to_have_text("0")
    expect(page.locator("#gap-head-evals .gap-heading-score")).not_to_have_text("0")  # the gap's own heading too
    shot("walked")

    # The full cards stay available for printing, with the filter kept.
    page.get_by_role("link", name="Full cards (print)").click()
    expect(page).to_have_url(re.compile(r"view=full"))
    expect(page.locator("#checklist article.crit")).to_have_count(4)


def test_the_compact_view_at_360px_does_not_scroll_sideways(page, live_server, users, pilot, shot):
    page.set_viewport_size({"width": 360, "height": 800})
    sign_in(page, live_server, "owner")
    page.goto(f"{live_server.url}/pilots/{pilot.pk}/")
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 360, f"page scrolls sideways at 360px ({width}px wide)"
    shot("compact-360")


def test_another_reviewer_reads_lines_without_status_controls(page, live_server, users, pilot):
    sign_in(page, live_server, "risk")
    page.goto(f"{live_server.url}/pilots/{pilot.pk}/")
    expect(page.locator("#checklist article.line").first).to_be_visible()
    expect(page.locator(".line-status")).to_have_count(0)
