"""Refuse an oversized request body before a byte of it is read.

Django's own limits (DATA_UPLOAD_MAX_MEMORY_SIZE, FILE_UPLOAD_MAX_MEMORY_SIZE)
apply while the body is parsed, which means a 60 MB upload is received and
spooled to disk before the evidence form says it is too large. This middleware
looks at Content-Length first and answers 413 with the same message the upload
check gives. The reverse proxy should enforce the same cap (README, "Production").
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.defaultfilters import filesizeformat


def request_too_large_message(size: int) -> str:
    """Worded like the upload check's own message, so the person sees one rule, not two."""
    limit = int(settings.FILE_UPLOAD_MAX_BYTES)
    return f"The upload is {size:,} bytes; the limit is {limit:,} bytes ({filesizeformat(limit)}). Nothing was saved."


class RequestSizeLimitMiddleware:
    """413 for any request whose declared body exceeds REQUEST_MAX_BYTES (upload limit plus form margin)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return HttpResponse("The Content-Length header is not a number.", status=400, content_type="text/plain")
        limit = int(settings.REQUEST_MAX_BYTES)
        if declared <= limit:
            return self.get_response(request)
        message = request_too_large_message(declared)
        if request.headers.get("HX-Request") == "true":
            # Shown inside the form that sent it, instead of replacing the row.
            response = HttpResponse(
                f'<p class="error" role="alert">{message}</p>', status=413, content_type="text/html; charset=utf-8"
            )
            response["HX-Retarget"] = "this"
            response["HX-Reswap"] = "beforeend"
        else:
            response = render(request, "413.html", {"message": message}, status=413)
        # WSGI forbids setting Connection here; the server closes a connection whose body
        # was left unread rather than parse it as the next request.
        return response
