"""Creating and steering a pilot from the browser, keyboard only where it matters."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from assessments.pilots.models import Pilot, Response

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pw-for-tests-only")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text("AI pilots")


def test_an_owner_creates_a_pilot_fills_a_row_by_keyboard_and_pauses_it(page, live_server, users, framework, shot):
    sign_in(page, live_server, "owner")
    page.get_by_role("link", name="New pilot").click()
    page.get_by_label("Description").fill("Suggests GL codes for supplier invoices.")
    page.get_by_label("Risk tier").select_option("limited")
    page.get_by_label("Cost envelope per task (USD)").fill("-1")
    page.get_by_role("button", name="Create pilot").click()
    expect(page.locator(".has-error").first).to_contain_text("required")
    assert not Pilot.objects.exists()
    assert page.get_by_label("Description").input_value() == "Suggests GL codes for supplier invoices."  # nothing lost
    page.get_by_label("Name").fill("Invoice coding assistant")
    page.get_by_role("button", name="Create pilot").click()
    expect(page.locator(".has-error")).to_contain_text("greater than or equal to 0")
    page.get_by_label("Cost envelope per task (USD)").fill("0.015")
    page.get_by_role("button", name="Create pilot").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Invoice coding assistant")
    pilot = Pilot.objects.get()
    shot("created")

    response = Response.objects.select_related("criterion").filter(assessment__pilot=pilot).first()
    status = page.locator(f"#line-{response.pk}-status")  # the status chip on the compact line
    status.focus()
    page.keyboard.press("ArrowDown")  # Not started -> Met, saved on change
    expect(page.locator(f"#row-{response.pk} .saved")).to_be_visible()
    response.refresh_from_db()
    assert response.status == "met"
    focused = page.evaluate("() => document.activeElement && document.activeElement.id")
    assert focused == f"line-{response.pk}-status"  # keyboard users keep their place after the swap

    page.get_by_label("Stage").select_option("paused")
    page.get_by_role("button", name="Change stage").click()
    expect(page.locator(".message")).to_contain_text("paused")
    pilot.refresh_from_db()
    assert pilot.stage == "paused"


def test_a_viewer_cannot_reach_the_create_form(page, live_server, users, framework):
    sign_in(page, live_server, "viewer")
    expect(page.get_by_role("link", name="New pilot")).to_have_count(0)
    response = page.goto(f"{live_server.url}/pilots/new/")
    assert response is not None and response.status == 403
