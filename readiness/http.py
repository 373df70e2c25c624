"""Typing helpers shared by the views."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    """A request that has passed HtmxMiddleware and authentication."""

    htmx: HtmxDetails
    user: User | AnonymousUser
