"""Error pages: the full page for a browser, just the message for an htmx swap."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    message = str(exception) if exception.args else ""
    template = "403.html#message" if request.headers.get("HX-Request") == "true" else "403.html"
    return render(request, template, {"exception": message}, status=403)
