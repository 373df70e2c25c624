"""Error pages are in the app's layout and say what to do; htmx gets the message in place, not a page."""

from __future__ import annotations

import copy
import re

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import OperationalError, connection
from django.test import Client
from django.urls import reverse

from assessments.audit.context import Actor
from assessments.organisations.services import membership_grant, user_create
from assessments.organisations.throttle import MAX_PER_USERNAME
from assessments.pilots.models import Pilot, Response
from assessments.pilots.services import pilot_create

HTMX = {"HTTP_HX_REQUEST": "true"}
# Values that differ on every response (CSRF token masks, CSP nonces).
PER_RESPONSE = re.compile(r'(name="csrfmiddlewaretoken" value=|"X-CSRFToken": |nonce=)"[^"]+"')


@pytest.fixture
def error_urls(settings) -> None:
    settings.ROOT_URLCONF = "tests.error_urls"


@pytest.fixture
def pilot(framework, users, owner_actor) -> Pilot:
    return pilot_create(
        organisation=framework.organisation, actor=owner_actor, name="Claims triage", technical_owner=users["owner"]
    )


@pytest.fixture
def outsider(other_org) -> User:
    """An administrator of another organisation."""
    system = Actor.system("tests")
    person = user_create(organisation=other_org, username="mallory", email="m@globex.test", password="pw", actor=system)
    membership_grant(organisation=other_org, user=person, role="admin", actor=system)
    return person


def _text(answer) -> str:
    return answer.content.decode()


def _assert_layout_page(answer, *, status: int, heading: str, says: str) -> None:
    body = _text(answer)
    assert answer.status_code == status
    assert answer["Content-Type"].startswith("text/html")
    assert body.lstrip().lower().startswith("<!doctype html>")
    assert '<header class="topbar">' in body and "/static/css/preflight.css" in body
    assert f'<p class="error-code">Error {status}</p>' in body
    assert re.search(rf"<h1[^>]*>{re.escape(heading)}</h1>", body), body
    assert says in body
    assert "Back to the portfolio</a>" in body
    assert "HX-Retarget" not in answer


def _assert_fragment(answer, *, status: int, says: str) -> None:
    body = _text(answer)
    assert answer.status_code == status
    assert body.startswith('<div class="error-message inline-error" role="alert">'), body
    assert "<html" not in body and "<h1" not in body and "topbar" not in body
    assert says in body
    # Shown after the element that sent the request; the row it aimed at stays, the address bar too.
    assert (answer["HX-Retarget"], answer["HX-Reswap"], answer["HX-Push-Url"]) == ("this", "afterend", "false")


# --- Each status in the layout --------------------------------------------------------


def test_a_malformed_request_gets_the_400_page(client, users, error_urls):
    client.force_login(users["owner"])
    answer = client.get("/test-errors/400/")
    _assert_layout_page(
        answer, status=400, heading="The request could not be read", says="names are limited to 255 characters"
    )
    assert '<span class="whoami">owner</span>' in _text(answer)  # the signed-in layout, not a bare page


def test_a_request_for_a_host_the_site_does_not_serve_gets_the_400_page(client, users):
    answer = client.get(reverse("home"), HTTP_HOST="attacker.example")
    _assert_layout_page(answer, status=400, heading="The request could not be read", says="nothing was saved")


def test_a_refused_action_gets_the_403_page_with_the_reason(client, users, pilot):
    client.force_login(users["viewer"])
    answer = client.get(reverse("pilot-edit", args=[pilot.pk]))
    _assert_layout_page(
        answer,
        status=403,
        heading="You cannot do that here",
        says="Only the owners of Claims triage and administrators change it.",
    )
    assert "Ask an administrator of your organisation" in _text(answer)


def test_a_form_sent_without_its_csrf_token_gets_the_expired_form_page(users, pilot):
    client = Client(enforce_csrf_checks=True)
    client.force_login(users["owner"])
    answer = client.post(reverse("pilot-stage", args=[pilot.pk]), {"stage": "paused"})
    _assert_layout_page(answer, status=403, heading="This form has expired", says="reload the page, and send the form")
    pilot.refresh_from_db()
    assert pilot.stage != "paused"


def test_an_htmx_save_without_its_csrf_token_gets_the_message_beside_the_form(users, pilot):
    from assessments.pilots.models import Response

    client = Client(enforce_csrf_checks=True)
    client.force_login(users["owner"])
    row = Response.objects.filter(assessment__pilot=pilot).first()
    answer = client.post(
        reverse("response-save", args=[row.pk]),
        {f"r{row.pk}-status": "met", f"r{row.pk}-version": row.version, f"r{row.pk}-mode": "line"},
        HTTP_HX_REQUEST="true",
    )
    assert answer.status_code == 403
    body = answer.content.decode()
    assert "This form has expired" in body and "<html" not in body
    assert answer["HX-Retarget"] == "this"
    row.refresh_from_db()
    assert row.status == "not_started"


def test_a_missing_pilot_gets_the_404_page(client, users, pilot):
    client.force_login(users["owner"])
    answer = client.get(reverse("pilot", args=[pilot.pk + 1000]))
    _assert_layout_page(answer, status=404, heading="Page not found", says="Check the address")


def test_an_unknown_address_gets_the_404_page(client, users):
    client.force_login(users["owner"])
    answer = client.get("/no-such-page/")
    _assert_layout_page(answer, status=404, heading="Page not found", says="Check the address")


def test_a_missing_pilot_and_another_organisations_pilot_get_the_same_404(client, pilot, outsider):
    client.force_login(outsider)
    foreign = client.get(reverse("pilot", args=[pilot.pk]))
    missing = client.get(reverse("pilot", args=[pilot.pk + 1000]))
    assert foreign.status_code == missing.status_code == 404
    assert PER_RESPONSE.sub("", _text(foreign)) == PER_RESPONSE.sub("", _text(missing))
    assert "Claims triage" not in _text(foreign)
    row = Response.objects.filter(assessment__pilot=pilot).first()
    foreign_row = client.post(reverse("response-save", args=[row.pk]), **HTMX)
    missing_row = client.post(reverse("response-save", args=[10**9]), **HTMX)
    assert (foreign_row.status_code, foreign_row.content) == (missing_row.status_code, missing_row.content)


def test_get_on_a_post_only_address_gets_the_405_page_and_keeps_the_allow_header(client, users, pilot):
    client.force_login(users["owner"])
    answer = client.get(reverse("pilot-stage", args=[pilot.pk]))
    _assert_layout_page(
        answer, status=405, heading="This address does not accept GET", says="cannot be opened on its own"
    )
    assert answer["Allow"] == "POST"
    assert "<title>Address does not accept GET · Preflight</title>" in _text(answer)


def test_post_on_a_page_gets_the_405_page_naming_what_it_accepts(client, users):
    client.force_login(users["owner"])
    answer = client.post(reverse("home"))
    _assert_layout_page(answer, status=405, heading="This address does not accept POST", says="(it accepts GET)")
    assert answer["Allow"] == "GET"


def test_a_405_that_already_has_a_body_is_left_alone(client, users):
    client.force_login(users["owner"])
    answer = client.post(reverse("api-schema"))
    assert answer.status_code == 405
    assert not answer["Content-Type"].startswith("text/html")
    assert 'Method "POST" not allowed.' in _text(answer)


def test_a_409_without_a_body_gets_the_409_page(client, users, error_urls):
    client.force_login(users["owner"])
    answer = client.post("/test-errors/409/")
    _assert_layout_page(
        answer,
        status=409,
        heading="This changed while you were working on it",
        says="Reload the page to see the current version",
    )


def test_the_sign_in_lockout_is_a_429_in_the_layout_that_says_when_to_try_again(client, users):
    cache.clear()
    try:
        for _ in range(MAX_PER_USERNAME):
            client.post(reverse("login"), {"username": "owner", "password": "wrong"})
        answer = client.post(reverse("login"), {"username": "owner", "password": "wrong"})
    finally:
        cache.clear()
    body = _text(answer)
    assert answer.status_code == 429
    assert "<title>Sign in · Preflight</title>" in body and '<header class="topbar">' in body
    assert '<div class="error" role="alert">Too many failed sign-in attempts for this account; try again in 15' in body
    assert "Forgot your password?" in body


def test_a_bug_gets_the_500_page(client, users, error_urls):
    client.raise_request_exception = False
    client.force_login(users["owner"])
    answer = client.get("/test-errors/500/")
    _assert_layout_page(answer, status=500, heading="Something went wrong on our side", says="tell your administrator")
    assert 'rel="stylesheet" href="/static/css/preflight.css"' in _text(answer)


def test_the_500_page_renders_with_the_database_unreachable(client, users) -> None:
    client.raise_request_exception = False
    client.force_login(users["owner"])
    attempted: list[str] = []

    def unreachable(execute, sql, params, many, context):
        attempted.append(sql)
        raise OperationalError("could not connect to server: Connection refused")

    with connection.execute_wrapper(unreachable):
        answer = client.get(reverse("home"))
    _assert_layout_page(answer, status=500, heading="Something went wrong on our side", says="tell your administrator")
    # The view's first query (loading the session) failed; the error page asked for nothing more.
    assert len(attempted) == 1, attempted


def test_the_500_page_renders_when_a_context_processor_fails(client, users, settings):
    client.raise_request_exception = False
    client.force_login(users["owner"])
    templates = copy.deepcopy(settings.TEMPLATES)
    templates[0]["OPTIONS"]["context_processors"].append("tests.error_urls.broken_context")
    settings.TEMPLATES = templates
    answer = client.get(reverse("home"))
    _assert_layout_page(
        answer, status=500, heading="Something went wrong on our side", says="the error has been logged"
    )


# --- htmx: the message in place -------------------------------------------------------


def test_a_refused_htmx_save_gets_the_403_message_not_a_page(client, users, pilot, settings):
    client.force_login(users["viewer"])
    answer = client.get(reverse("pilot-edit", args=[pilot.pk]), **HTMX)
    _assert_fragment(answer, status=403, says="<strong>Not allowed.</strong> Only the owners of Claims triage")


def test_an_htmx_request_for_something_gone_gets_the_404_message(client, users):
    client.force_login(users["owner"])
    answer = client.post(reverse("response-save", args=[10**9]), **HTMX)
    _assert_fragment(answer, status=404, says="Reload the page to see what is there now.")


def test_an_htmx_request_with_the_wrong_method_gets_the_405_message(client, users, pilot):
    client.force_login(users["owner"])
    answer = client.get(reverse("pilot-stage", args=[pilot.pk]), **HTMX)
    _assert_fragment(answer, status=405, says="This address does not accept GET, only POST.")
    assert answer["Allow"] == "POST"


@pytest.mark.parametrize(
    ("url", "status", "says"),
    [
        ("/test-errors/400/", 400, "<strong>Not saved.</strong> The request could not be read."),
        ("/test-errors/409/", 409, "<strong>Not saved.</strong> Your change was not saved"),
        ("/test-errors/500/", 500, "<strong>Something went wrong on our side.</strong>"),
    ],
)
def test_htmx_requests_get_each_message_in_place(client, users, error_urls, url, status, says):
    client.raise_request_exception = False
    client.force_login(users["owner"])
    _assert_fragment(client.post(url, **HTMX), status=status, says=says)


def test_boosted_links_and_history_restores_get_the_whole_page(client, users):
    client.force_login(users["owner"])
    for extra in ({"HTTP_HX_BOOSTED": "true"}, {"HTTP_HX_HISTORY_RESTORE_REQUEST": "true"}):
        answer = client.get("/no-such-page/", **HTMX, **extra)
        _assert_layout_page(answer, status=404, heading="Page not found", says="Check the address")


def test_htmx_swaps_every_status_the_error_pages_answer_with(client, users):
    """The htmx config must swap these, or a failed request shows nothing at all."""
    client.force_login(users["owner"])
    config = re.search(r"<meta name=\"htmx-config\" content='([^']+)'>", _text(client.get(reverse("home"))))
    assert config is not None
    swapped = re.search(r'\{"code": "\(([\d|]+)\)", "swap": true, "error": false\}', config.group(1))
    assert swapped is not None
    assert {"400", "403", "404", "405", "409", "413", "422", "500"} <= set(swapped.group(1).split("|"))


# --- The favicon ----------------------------------------------------------------------


def test_favicon_ico_is_served_at_the_site_root(client, db):
    answer = client.get("/favicon.ico")
    assert answer.status_code == 200
    assert answer["Content-Type"] == "image/x-icon"
    assert "max-age=604800" in answer["Cache-Control"]
    icon = b"".join(answer.streaming_content)
    assert icon[:4] == b"\x00\x00\x01\x00" and int.from_bytes(icon[4:6], "little") == 3  # an ICO of three sizes
    assert client.post("/favicon.ico").status_code == 405


@pytest.mark.parametrize(
    ("current", "next_page"),
    [
        ("http://testserver/pilots/7/?view=full", "/pilots/7/?view=full"),
        ("https://testserver//evil.example/steal", "/"),
        ("", "/"),
    ],
)
def test_an_expired_session_sends_an_htmx_request_to_the_sign_in_page_whole(client, pilot, current, next_page):
    """Not the sign-in form swapped into a checklist row or a polling status line."""
    url = reverse("response-row", args=[Response.objects.filter(assessment__pilot=pilot).first().pk])
    answer = client.get(url, HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL=current)
    assert answer.status_code == 200 and answer.content == b""
    login = reverse("login")
    assert (
        answer["HX-Redirect"] == f"{login}?next={next_page.replace('/', '%2F').replace('?', '%3F').replace('=', '%3D')}"
    )
    # A plain browser request is redirected as before.
    plain = client.get(url)
    assert plain.status_code == 302 and plain["Location"].startswith(login)
