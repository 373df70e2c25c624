"""Error pages: the full page in the layout for a browser, just the message for an htmx swap.

A failed htmx request leaves the element it was aimed at alone (a checklist row, the
results table) and shows the message right after the element that sent it, the way
the 413 check shows its message inside the form: ``HX-Retarget: this``, with
``afterend`` because the sender may be a link or a grid form that a message inside
it would break. The address bar is not changed.

The 500 page is rendered without the request's context processors: they query the
database, and the database may be what failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url
from django.template import loader
from django.utils.http import url_has_allowed_host_and_scheme

logger = logging.getLogger(__name__)

# Bodiless responses that get a page: Django's @require_POST and friends answer 405
# with nothing but an Allow header, which a browser shows as a blank page.
BODILESS_PAGES = {405: "405.html", 409: "409.html"}


def wants_fragment(request: HttpRequest) -> bool:
    """An htmx request that swaps part of a page; boosted links and history restores expect a whole page."""
    headers = request.headers
    return (
        headers.get("HX-Request") == "true"
        and headers.get("HX-Boosted") != "true"
        and headers.get("HX-History-Restore-Request") != "true"
    )


def _in_place(response: HttpResponse) -> HttpResponse:
    response["HX-Retarget"] = "this"
    response["HX-Reswap"] = "afterend"
    response["HX-Push-Url"] = "false"
    return response


def error_render(
    request: HttpRequest, template: str, *, status: int, context: dict[str, Any] | None = None
) -> HttpResponse:
    """``template`` in the layout, or its ``message`` partial placed in the page for htmx."""
    fragment = wants_fragment(request)
    name = f"{template}#message" if fragment else template
    context = {**(context or {}), "inline": fragment}
    try:
        body = loader.render_to_string(name, context, request)
    except Exception:
        # The layout's context processors need the session, the user and the database. An
        # error raised before those exist (a Host header the site does not serve fails in
        # CommonMiddleware) or one they fail on still gets its page, without the header menu.
        logger.warning("Rendering %s without the request context", name, exc_info=True)
        body = loader.render_to_string(name, context)
    response = HttpResponse(body, status=status)
    return _in_place(response) if fragment else response


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return error_render(request, "400.html", status=400)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    message = str(exception) if exception.args else ""
    return error_render(request, "403.html", status=403, context={"exception": message})


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """An expired or missing CSRF token: the layout page, or the message beside an htmx form."""
    return error_render(request, "403_csrf.html", status=403)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    # The reason is never shown: a pilot that does not exist and one of another
    # organisation must give the same page.
    return error_render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    fragment = wants_fragment(request)
    try:
        # No request: no context processors, no session or user lookups, no queries.
        body = loader.render_to_string("500.html#message" if fragment else "500.html", {"inline": fragment})
        response = HttpResponse(body, status=500)
    except Exception:
        logger.exception("The 500 page could not be rendered")
        response = HttpResponse(
            "Something went wrong on our side. Try again in a minute.",
            status=500,
            content_type="text/plain; charset=utf-8",
        )
    return _in_place(response) if fragment else response


def _login_for_htmx(request: HttpRequest, response: HttpResponse) -> HttpResponse | None:
    """An htmx request whose session has expired is sent to the sign-in page as a whole page.

    Without this the XHR follows the redirect and swaps the sign-in form into a checklist
    row or a polling status line. ``next`` is the page the person was on, not the fragment.
    """
    if response.status_code != 302 or not wants_fragment(request):
        return None
    login = resolve_url(settings.LOGIN_URL)
    location = response.get("Location", "")
    if urlsplit(location).path != login:
        return None
    current = urlsplit(request.headers.get("HX-Current-URL", ""))
    page = current.path if current.path and url_has_allowed_host_and_scheme(current.path, allowed_hosts=None) else "/"
    if current.query:
        page = f"{page}?{current.query}"
    answer = HttpResponse(status=200)
    answer["HX-Redirect"] = f"{login}?{urlencode({'next': page})}"
    return answer


class ErrorPageMiddleware:
    """Gives a bodiless 405 or 409 the layout page (for htmx, the message in place), keeping its
    headers; sends an htmx request that met the sign-in redirect to the sign-in page whole."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (login := _login_for_htmx(request, response)) is not None:
            return login
        template = BODILESS_PAGES.get(response.status_code)
        if template is None or response.streaming or response.content:
            return response
        allowed = [method.strip() for method in response.get("Allow", "").split(",") if method.strip()]
        page = error_render(
            request, template, status=response.status_code, context={"method": request.method, "allowed": allowed}
        )
        response.content = page.content
        for header, value in page.items():
            response[header] = value
        return response
