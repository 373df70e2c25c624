"""Rendered page parts kept in the cache under a key that names everything they show.

Pages are read far more often than anything on them changes. A part is rendered once,
without the request, and later requests serve the stored HTML. Two things differ per
request and are never stored:

- the form token: parts render ``{% csrf_token %}`` with a stand-in (derived from the
  secret key, so nobody can type it into a field to have it replaced) and each request
  puts its own token in its place;
- the layout around the parts (messages, the header, the CSP nonce), which the view
  renders as usual.

Keys are the caller's business; they must change whenever anything shown changes.
Every audited write moves the organisation's audit-chain head, so the head's sequence
is a version for all the organisation's data (see ``page_key``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable
from functools import cache as memoise
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

# Stored parts are bounded by this even when no key change removes them (a person
# renaming themselves is not an audited write of the organisation's).
PART_SECONDS = 300


@memoise
def _token_stand_in() -> str:
    digest = hmac.new(settings.SECRET_KEY.encode(), b"preflight-page-part-form-token", hashlib.sha256)
    return "csrf" + digest.hexdigest()[:40]


def page_key(name: str, parts: Iterable[object]) -> str:
    """A cache key from the values a page's parts depend on (hashed: keys stay short)."""
    joined = "\x1f".join(map(str, parts))
    return f"page:{name}:" + hashlib.sha256(joined.encode()).hexdigest()


def part_render(template_name: str, context: dict[str, Any]) -> str:
    """A template rendered for storage: no request, the form token as its stand-in."""
    return render_to_string(template_name, {**context, "csrf_token": _token_stand_in()})


def parts_cached(
    request: HttpRequest, key: str | None, render: Callable[[], tuple[str, ...]]
) -> tuple[SafeString, ...]:
    """The stored parts under ``key`` (rendered by ``render`` when missing, or always
    when ``key`` is None), each with this request's form token in place."""
    parts: tuple[str, ...] | None = cache.get(key) if key else None
    if parts is None:
        parts = render()
        if key:
            cache.set(key, parts, PART_SECONDS)
    stand_in = _token_stand_in()
    token = get_token(request) if any(stand_in in part for part in parts) else ""
    # Each part was rendered (and escaped) by our own templates; only the stand-in is replaced.
    return tuple(mark_safe(part.replace(stand_in, token)) for part in parts)
