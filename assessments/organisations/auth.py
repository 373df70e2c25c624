"""Sign-in with failed attempts limited per username and per client address (HTTP 429).

The counting rules are in ``throttle``. A refused attempt gets a fresh, unbound
form: validating the posted one would run the password check, which would spend
Argon2 time for the attacker and, worse, show a different page for a right and a
wrong password while the account is locked.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse

from assessments.organisations.throttle import SigninAttempt, signin_attempt_start, signin_attempt_succeed

LOCKOUT_MESSAGES = {
    "account": "Too many failed sign-in attempts for this account; try again in {minutes}.",
    "address": "Too many failed sign-in attempts from this address; try again in {minutes}.",
}


def client_address(request: HttpRequest) -> str:
    # Behind a proxy, have it set REMOTE_ADDR (e.g. gunicorn --forwarded-allow-ips); a client's
    # own X-Forwarded-For is not trusted, or every guess could claim a new address.
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def lockout_message(attempt: SigninAttempt) -> str:
    minutes = attempt.retry_after_minutes
    return LOCKOUT_MESSAGES[attempt.refused_for or "account"].format(
        minutes=f"{minutes} minute{'' if minutes == 1 else 's'}"
    )


class ThrottledLoginView(LoginView):
    """Django's login view behind per-username and per-address attempt limits."""

    attempt: SigninAttempt | None = None

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        attempt = signin_attempt_start(username=request.POST.get("username", ""), address=client_address(request))
        if attempt.refused_for is not None:
            return self.refuse(attempt)
        self.attempt = attempt
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_valid(form)
        if self.attempt is not None:
            signin_attempt_succeed(attempt=self.attempt)
        return response

    def refuse(self, attempt: SigninAttempt) -> HttpResponse:
        form = self.get_form_class()(self.request, initial={"username": self.request.POST.get("username", "")})
        response = self.render_to_response(self.get_context_data(form=form, lockout=lockout_message(attempt)))
        response.status_code = 429
        response["Retry-After"] = str(attempt.retry_after)
        return response
