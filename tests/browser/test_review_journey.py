"""A whole review meeting in real Chromium: scheduled, walked through in meeting mode by keyboard,
a comment and a condition raised inline, four people signing in their own browsers until the
pilot is ready, then a change that makes it need re-review."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from assessments.pilots.models import Pilot
from assessments.reviews.models import Comment, Condition, Decision, ReviewMeeting
from tests.browser.conftest import Shot
from tests.reviews.conftest import blocking_responses, meet_blockers

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "pw-for-tests-only"
SIGNERS = ("delivery", "security", "risk", "product")


@pytest.fixture
def pilot(framework, users, owner_actor):
    from assessments.pilots.services import pilot_create

    pilot = pilot_create(
        organisation=framework.organisation,
        actor=owner_actor,
        name="Claims triage assistant",
        technical_owner=users["owner"],
        risk_tier="limited",
    )
    meet_blockers(pilot, owner_actor)
    return pilot


def sign_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("AI pilots")


def test_four_people_sign_in_turn_the_pilot_becomes_ready_then_a_change_needs_re_review(
    page, browser, live_server, users, pilot, shot, mailoutbox
):
    # The owner schedules the review from the pilot page.
    sign_in(page, live_server, "owner")
    page.get_by_role("link", name="Claims triage assistant").click()
    expect(page.get_by_test_id("gate-verdict")).to_have_text("Not ready for production")
    expect(page.locator("#gate .reasons")).to_contain_text("Delivery has not signed")
    page.locator("#gate").get_by_role("link", name="Reviews & sign-off").click()
    page.get_by_label("Where").fill("Room 4.12")
    page.get_by_role("button", name="Schedule and invite").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Readiness review")
    meeting = ReviewMeeting.objects.get()
    assert len(mailoutbox) == 1 and "invite.ics" in mailoutbox[0].attachments[0][0]
    shot("meeting-scheduled")

    # Meeting mode: the agenda walked by keyboard; the owner starts the meeting.
    page.get_by_role("button", name="Start the meeting").click()
    expect(page.locator(".stage-count")).to_contain_text("Item 1 of")
    page.wait_for_load_state("load")  # the keyboard script is deferred: keys before it runs do nothing
    total = int(page.locator("#stage").get_attribute("data-total") or "0")
    assert total >= 2
    first = page.locator(".stage-title").inner_text()
    page.keyboard.press("ArrowRight")
    expect(page.locator(".stage-count")).to_contain_text("Item 2 of")
    assert re.search(r"item=2$", page.url)
    page.keyboard.press("k")
    expect(page.locator(".stage-title")).to_have_text(first)
    page.keyboard.press("g")
    assert page.evaluate("document.activeElement.id") == "jump"
    shot("meeting-mode")

    # Four reviewers, each in their own browser, with their own session.
    contexts = []
    for role in SIGNERS:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        tab = context.new_page()
        errors: list[str] = []
        tab.on("console", lambda msg, errors=errors: errors.append(msg.text) if msg.type == "error" else None)
        sign_in(tab, live_server, role)
        tab.goto(f"{live_server.url}/meetings/{meeting.pk}/present/")
        if role == "security":
            # Comment and raise a condition inline, without leaving meeting mode.
            side = tab.locator(".stage-side")
            side.get_by_label("New comment").fill("@owner please attach the key-rotation log")
            side.get_by_role("button", name="Comment").click()
            expect(side.locator(".comment")).to_contain_text("key-rotation log")
            side.get_by_text("Raise a condition").click()
            side.get_by_label("Condition").fill("Rotate the provider key before launch")
            side.get_by_role("button", name="Raise").click()
            expect(side.locator(".condition-list")).to_contain_text("Rotate the provider key")
            assert Comment.objects.get().mentioned.get() == users["owner"]
            assert Condition.objects.get().meeting == meeting
            expect(tab.locator(".stage-count")).to_contain_text("Item 1 of")  # still on the same item
            Shot(tab, "review-journey")("security-inline")
        tab.wait_for_load_state("load")  # the keyboard script is deferred
        tab.evaluate("document.activeElement && document.activeElement.blur()")  # keys are ignored while typing
        tab.keyboard.press("s")
        expect(tab.locator("#decisions")).to_be_visible()
        tab.get_by_label("Approve with conditions" if role == "security" else "Approve", exact=True).check()
        tab.get_by_label("Comment", exact=True).fill(f"{role} is satisfied")
        tab.get_by_role("button", name="Sign this decision").click()
        expect(tab.locator(".message")).to_contain_text("Signed for")
        expect(tab.locator(f'.decision-card[data-role="{role}"]')).to_have_class(re.compile("is-signed"))
        assert not [e for e in errors if "Failed to load resource" not in e], errors
    assert Decision.objects.count() == 4
    Shot(contexts[-1].pages[0], "review-journey")("four-signed")

    # The pilot is ready: the owner sees it on the pilot page and moves it to production.
    page.goto(f"{live_server.url}/pilots/{pilot.pk}/")
    expect(page.get_by_test_id("gate-verdict")).to_have_text("Ready for production")
    shot("ready")

    # A change after signing: the gate panel reloads after the inline save and asks for re-review.
    response = blocking_responses(pilot)[0]
    status = page.locator(f"#line-{response.pk}-status")
    status.select_option("partly_met")
    expect(page.get_by_test_id("needs-rereview")).to_be_visible()
    expect(page.get_by_test_id("gate-verdict")).to_have_text("Not ready for production")
    shot("needs-re-review")
    page.locator("#gate").get_by_role("link", name="Reviews & sign-off").click()
    expect(page.locator("#changes")).to_contain_text(f"{response.criterion.code} {response.criterion.title}")
    expect(page.locator("#changes")).to_contain_text("Met → Partly met")
    shot("diff")
    assert Pilot.objects.get(pk=pilot.pk).stage == "pilot"
    for context in contexts:
        context.close()
