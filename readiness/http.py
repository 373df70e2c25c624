"""Typing helpers shared by the views."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    """A request that has passed HtmxMiddleware and authentication."""

    htmx: HtmxDetails
    user: User | AnonymousUser


def form_attach_errors(form: Any, exc: ValidationError) -> None:
    """Show a service's ValidationError on the form: beside the field it names, else on top."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)
