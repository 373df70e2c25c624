"""Limits on sign-in attempts, per username and per client address.

Counts live in Django's cache (Redis in production), so every web worker shares
them. An attempt is counted *before* its password is checked, with the cache's
atomic increment, and refused once over the limit: a burst of parallel requests
therefore gets exactly the allowed number of password checks, never more. A
successful sign-in clears its username's count and gives its address slot back,
so an office behind one address is not locked out by people signing in.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
import unicodedata
from dataclasses import dataclass
from typing import Literal

from django.core.cache import cache

MAX_PER_USERNAME = 5
MAX_PER_ADDRESS = 20
WINDOW_SECONDS = 15 * 60

Scope = Literal["account", "address"]


@dataclass(frozen=True)
class SigninAttempt:
    """One counted attempt; ``refused_for`` is set when it must not reach the password check."""

    username_key: str | None
    address_key: str
    refused_for: Scope | None = None
    retry_after: int = 0

    @property
    def retry_after_minutes(self) -> int:
        return max(1, math.ceil(self.retry_after / 60))


def username_canonical(value: str) -> str:
    """The form in which two spellings of one username share one budget.

    Django's sign-in form strips the username and applies NFKC before looking the
    account up, so a full-width spelling (U+FF4F for "o") signs in as the plain one; the throttle must key on
    the same normal form or each spelling would get its own five guesses. Case-folded
    on top, so "Olivia" and "olivia" share a budget too.
    """
    return unicodedata.normalize("NFKC", value.strip()).casefold().strip()


def _key(kind: str, value: str) -> str:
    # Hashed so any username (spaces, Unicode, 150 characters) makes a valid key.
    digest = hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]
    return f"signin:{kind}:{digest}"


def _since_key(key: str) -> str:
    return f"{key}:since"


def _hit(key: str, now: float) -> int:
    """Count one attempt against ``key``; the first attempt of a window starts its clock."""
    cache.add(key, 0, timeout=WINDOW_SECONDS)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=WINDOW_SECONDS)
        count = 1
    if count == 1:
        # Re-arm the expiry too: Redis recreates a key that expired between its existence
        # check and INCR without one, which would otherwise lock the name out for good.
        cache.touch(key, timeout=WINDOW_SECONDS)
        cache.set(_since_key(key), now, timeout=WINDOW_SECONDS)
    return count


def _undo(key: str) -> None:
    # A ValueError means the window ended meanwhile: there is nothing to give back.
    with contextlib.suppress(ValueError):
        cache.decr(key)


def _retry_after(key: str, now: float) -> int:
    since = cache.get(_since_key(key))
    if since is None:
        return WINDOW_SECONDS
    return max(1, math.ceil(float(since) + WINDOW_SECONDS - now))


def signin_attempt_start(*, username: str, address: str) -> SigninAttempt:
    """Count an attempt for ``username`` from ``address``, or refuse it when either is over its limit.

    A refused attempt is not counted (it never reaches the password check), so a
    locked-out person retrying does not extend or deepen their lockout.
    """
    now = time.time()
    canonical = username_canonical(username)
    username_key = _key("user", canonical) if canonical else None
    address_key = _key("addr", address)
    if username_key is not None and _hit(username_key, now) > MAX_PER_USERNAME:
        _undo(username_key)
        return SigninAttempt(
            username_key=username_key,
            address_key=address_key,
            refused_for="account",
            retry_after=_retry_after(username_key, now),
        )
    if _hit(address_key, now) > MAX_PER_ADDRESS:
        _undo(address_key)
        if username_key is not None:
            _undo(username_key)
        return SigninAttempt(
            username_key=username_key,
            address_key=address_key,
            refused_for="address",
            retry_after=_retry_after(address_key, now),
        )
    return SigninAttempt(username_key=username_key, address_key=address_key)


def signin_attempt_succeed(*, attempt: SigninAttempt) -> None:
    """The attempt signed in: clear its username's count and give its address slot back."""
    if attempt.username_key is not None:
        cache.delete_many([attempt.username_key, _since_key(attempt.username_key)])
    _undo(attempt.address_key)
