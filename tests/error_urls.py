"""A URLconf for the error-page tests: the project's routes plus views that fail on purpose."""

from __future__ import annotations

from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.urls import path
from django.views.decorators.http import require_GET

from readiness.urls import handler400, handler403, handler404, handler500
from readiness.urls import urlpatterns as project_urls


def suspicious(request: HttpRequest) -> HttpResponse:
    raise SuspiciousOperation("a malformed request")


def bodiless_conflict(request: HttpRequest) -> HttpResponse:
    return HttpResponse(status=409)


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug in a view")


def broken_context(request: HttpRequest) -> dict[str, object]:
    """A context processor that fails, as one does when the database is down."""
    raise RuntimeError("context processor failed")


def plain(request: HttpRequest) -> HttpResponse:
    """A page that names no icon, so the browser asks for /favicon.ico."""
    return HttpResponse("plain text", content_type="text/plain; charset=utf-8")


HTMX_PAGE = """{% extends "base.html" %}{% block content %}
<article id="row" class="card">
  <h2>A checklist row</h2>
  <p>Each form below replaces this row when its request succeeds.</p>
  {% for status, url in targets %}
  <form class="crit-form" method="post" action="{{ url }}" hx-post="{{ url }}" hx-target="#row" hx-swap="outerHTML">
    <button type="submit" class="button">Save ({{ status }})</button>
  </form>
  {% endfor %}
</article>
{% endblock %}"""


@require_GET
def htmx_page(request: HttpRequest) -> HttpResponse:
    """A row with htmx forms aimed at it, each sent to an address that fails in its own way."""
    targets = [("404", "/test-errors/missing/"), ("405", "/favicon.ico"), ("500", "/test-errors/500/")]
    return HttpResponse(engines["django"].from_string(HTMX_PAGE).render({"targets": targets}, request))


urlpatterns = [
    path("test-errors/400/", suspicious),
    path("test-errors/409/", bodiless_conflict),
    path("test-errors/500/", boom),
    path("test-errors/plain/", plain),
    path("test-errors/htmx/", htmx_page),
    *project_urls,
]

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
