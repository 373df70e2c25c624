"""Every error page in real Chromium: in the layout, readable, no console errors, the favicon found."""

from __future__ import annotations

import re

import pytest
from django.core.cache import cache
from django.urls import reverse
from playwright.sync_api import expect

from assessments.audit.context import Actor
from assessments.organisations.throttle import MAX_PER_USERNAME
from assessments.pilots.services import pilot_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-tests-only"
# Submits a plain (not htmx) form, with or without the CSRF token the page carries.
POST_FORM = """({action, token}) => {
  const form = document.createElement('form');
  form.method = 'post';
  form.action = action;
  if (token) {
    const input = document.createElement('input');
    input.type = 'hidden';
    input.name = 'csrfmiddlewaretoken';
    input.value = JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRFToken'];
    form.append(input);
  }
  document.body.append(form);
  form.submit();
}"""


def _sign_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator(".whoami")).to_have_text(username)


def _expect_server_error_logged(page, url: str) -> None:
    """A 500 is logged by Chromium itself; that line, and only that one, is expected."""
    expected = "Failed to load resource: the server responded with a status of 500 (Internal Server Error)"
    assert page.console_errors.count(expected) == 1, page.console_errors
    page.console_errors.remove(expected)


def test_each_error_page_is_in_the_layout_with_no_console_errors(
    page, live_server, users, framework, settings, shot
) -> None:
    settings.ROOT_URLCONF = "tests.error_urls"
    pilot = pilot_create(
        organisation=framework.organisation,
        actor=Actor.for_user(users["owner"]),
        name="Claims triage",
        technical_owner=users["owner"],
    )
    icons: list[tuple[int, str]] = []
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.on(
        "Network.responseReceived",
        lambda event: (
            icons.append((event["response"]["status"], event["response"]["url"]))
            if "icon" in event["response"]["url"]
            else None
        ),
    )
    sources: list[str] = []
    page.on(
        "console", lambda message: sources.append(message.location.get("url", "")) if message.type == "error" else None
    )

    _sign_in(page, live_server, "viewer")
    pages = [
        ("400", "/test-errors/400/", 400, "The request could not be read"),
        ("403", reverse("pilot-edit", args=[pilot.pk]), 403, "You cannot do that here"),
        ("404", reverse("pilot", args=[pilot.pk + 1000]), 404, "Page not found"),
        ("405", reverse("pilot-stage", args=[pilot.pk]), 405, "This address does not accept GET"),
        ("500", "/test-errors/500/", 500, "Something went wrong on our side"),
    ]
    for name, path, status, heading in pages:
        answer = page.goto(live_server.url + path)
        assert answer is not None and answer.status == status, name
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        expect(page.locator(".topbar .brand")).to_have_text("Preflight")
        expect(page.get_by_role("link", name="Back to the portfolio")).to_be_visible()
        # The stylesheet applied: the card is white on the grey page, not unstyled text.
        assert page.locator(".error-page").evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(255, 255, 255)"
        shot(name)
        if status == 500:
            _expect_server_error_logged(page, path)

    # 409 answers a POST: a plain form sends one, first with its CSRF token, then without.
    for name, token, heading in [
        ("409", True, "This changed while you were working on it"),
        ("403-csrf", False, "This form has expired"),
    ]:
        page.goto(f"{live_server.url}/test-errors/htmx/")
        page.evaluate(POST_FORM, {"action": "/test-errors/409/", "token": token})
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        expect(page.get_by_role("link", name="Back to the portfolio")).to_be_visible()
        shot(name)

    # A page that names no icon makes the browser fetch /favicon.ico; it is there.
    page.goto(f"{live_server.url}/test-errors/plain/")
    page.wait_for_timeout(500)
    assert (200, f"{live_server.url}/favicon.ico") in icons, icons
    assert not [status for status, url in icons if status >= 400], icons
    assert not [url for url in sources if url.endswith("favicon.ico")], sources


def test_failed_htmx_saves_show_their_message_beside_the_form_and_keep_the_row(
    page, live_server, users, settings, shot
):
    settings.ROOT_URLCONF = "tests.error_urls"
    _sign_in(page, live_server, "owner")
    page.goto(f"{live_server.url}/test-errors/htmx/")
    row = page.locator("#row")
    for status, says in [
        ("404", "Not found. What this refers to no longer exists"),
        ("405", "Not sent. This address does not accept POST, only GET."),
        ("500", "Something went wrong on our side."),
    ]:
        page.get_by_role("button", name=f"Save ({status})").click()
        # Right after the form that sent it, inside the row the form aimed at.
        expect(row.locator(f"form:has-text('Save ({status})') + .inline-error")).to_contain_text(says)
        if status == "500":
            _expect_server_error_logged(page, "/test-errors/500/")
    page.get_by_role("button", name="Save (404)").click()
    expect(row.locator(".inline-error")).to_have_count(4)
    # The row is still there with its forms; one message per form, the newest.
    expect(row.get_by_role("heading", name="A checklist row")).to_be_visible()
    expect(row.locator("form")).to_have_count(3)
    expect(row.get_by_role("alert")).to_have_count(3)
    assert page.url == f"{live_server.url}/test-errors/htmx/"
    shot("htmx-in-place")


def test_the_sign_in_lockout_page_reads_well(page, live_server, users, shot):
    cache.clear()
    try:
        page.goto(f"{live_server.url}/accounts/login/")
        for _ in range(MAX_PER_USERNAME + 1):
            page.get_by_label("Username").fill("owner")
            page.get_by_label("Password").fill("not the password")
            with page.expect_navigation() as navigation:
                page.get_by_role("button", name="Sign in").click()
        answer = navigation.value
        assert answer is not None and answer.status == 429
        expect(page.get_by_role("alert")).to_have_text(
            re.compile(r"Too many failed sign-in attempts for this account; try again in 1[45] minutes\.")
        )
        expect(page.get_by_role("link", name="Forgot your password?")).to_be_visible()
        shot("429")
    finally:
        cache.clear()
