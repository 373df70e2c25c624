"""The few responses that belong to the site rather than to one domain app."""

from __future__ import annotations

from django.conf import settings
from django.http import FileResponse, HttpRequest
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

FAVICON = settings.BASE_DIR / "static" / "img" / "favicon.ico"


@require_GET
@cache_control(public=True, max_age=7 * 24 * 3600)
def favicon(request: HttpRequest) -> FileResponse:
    """/favicon.ico, which browsers ask for on any page that names no icon (a PDF, an image, a plain-text answer).

    Pages in the layout name static/img/favicon.svg; this is the same mark as an .ico
    (16, 32 and 48 px) for the requests that bypass that link.
    """
    return FileResponse(FAVICON.open("rb"), content_type="image/x-icon")
