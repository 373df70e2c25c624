"""Sign-in with failed attempts limited per username and per client address.

Counts live in Django's cache (Redis in production), so every web worker shares
them. A locked-out attempt is refused before the password is checked, which
keeps guessing from costing Argon2 time or telling the attacker anything.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

MAX_PER_USER = 5
MAX_PER_ADDRESS = 20
WINDOW_SECONDS = 15 * 60


def _key(kind: str, value: str) -> str:
    digest = hashlib.sha256(value.strip().lower().encode("utf-8")).hexdigest()[:32]
    return f"signin:{kind}:{digest}"


def client_address(request: HttpRequest) -> str:
    # Behind a proxy, configure it to set REMOTE_ADDR (e.g. gunicorn --forwarded-allow-ips);
    # X-Forwarded-For from the client is not trusted here.
    return str(request.META.get("REMOTE_ADDR", "unknown"))


def _count(key: str) -> tuple[int, float]:
    value = cache.get(key)
    if not value:
        return 0, 0.0
    count, first = value
    return int(count), float(first)


def signin_lockout_seconds(*, username: str, address: str) -> int:
    """Seconds until another attempt is allowed; 0 when it is allowed now."""
    now = time.time()
    waits = []
    for key, limit in ((_key("user", username), MAX_PER_USER), (_key("addr", address), MAX_PER_ADDRESS)):
        count, first = _count(key)
        if count >= limit:
            waits.append(max(0.0, first + WINDOW_SECONDS - now))
    return math.ceil(max(waits)) if waits else 0


def signin_failed(*, username: str, address: str) -> None:
    now = time.time()
    for key in (_key("user", username), _key("addr", address)):
        count, first = _count(key)
        if not count or now - first > WINDOW_SECONDS:
            count, first = 0, now
        cache.set(key, (count + 1, first), timeout=WINDOW_SECONDS)


def signin_succeeded(*, username: str) -> None:
    cache.delete(_key("user", username))


class ThrottledLoginView(LoginView):
    """Django's login view with per-user and per-address attempt limits (HTTP 429)."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        username = request.POST.get("username", "")
        address = client_address(request)
        wait = signin_lockout_seconds(username=username, address=address)
        if wait:
            minutes = max(1, math.ceil(wait / 60))
            form = self.get_form()
            form.add_error(
                None,
                f"Too many failed sign-in attempts. Try again in {minutes} minute{'s' if minutes != 1 else ''}, "
                "or reset your password.",
            )
            response = self.render_to_response(self.get_context_data(form=form))
            response.status_code = 429
            response["Retry-After"] = str(wait)
            return response
        response = super().post(request, *args, **kwargs)
        if request.user.is_authenticated:
            signin_succeeded(username=username)
        else:
            signin_failed(username=username, address=address)
        return response
