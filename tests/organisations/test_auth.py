"""Sign-in attempts limited per username and per address; password reset by email."""

from __future__ import annotations

import re
import time
from unittest import mock

import pytest
from django.contrib.auth import forms as auth_forms
from django.core.cache import cache
from django.urls import reverse

from assessments.organisations.throttle import (
    MAX_PER_ADDRESS,
    MAX_PER_USERNAME,
    WINDOW_SECONDS,
    signin_attempt_start,
)

PASSWORD = "pw-for-tests-only"


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def _login(client, username, password, address="10.0.0.1", url="login"):
    return client.post(reverse(url), {"username": username, "password": password}, REMOTE_ADDR=address)


def _lock(client, username="owner", address="10.0.0.1"):
    for _ in range(MAX_PER_USERNAME):
        assert _login(client, username, "wrong", address=address).status_code == 200


def test_a_good_password_signs_in(client, users):
    assert _login(client, "owner", PASSWORD).status_code == 302
    assert client.session["_auth_user_id"] == str(users["owner"].pk)


def test_failures_for_one_username_lock_it_with_429_and_a_clear_message(client, users):
    _lock(client)
    locked = _login(client, "owner", PASSWORD, address="10.0.0.2")
    assert locked.status_code == 429
    assert "Too many failed sign-in attempts for this account; try again in 15 minutes." in locked.content.decode()
    assert 0 < int(locked["Retry-After"]) <= WINDOW_SECONDS
    assert "_auth_user_id" not in client.session


def test_a_locked_account_is_refused_without_checking_the_password(client, users):
    _lock(client)
    with mock.patch.object(auth_forms, "authenticate", wraps=auth_forms.authenticate) as checked:
        right = _login(client, "owner", PASSWORD)
        wrong = _login(client, "owner", "another-guess")
    assert checked.call_count == 0
    assert (right.status_code, wrong.status_code) == (429, 429)
    # The page must not tell a right guess from a wrong one while the account is locked.
    per_request = re.compile(rb'(name="csrfmiddlewaretoken" value=|"X-CSRFToken": |nonce=)"[^"]+"')
    assert per_request.sub(b"", right.content) == per_request.sub(b"", wrong.content)


def test_other_accounts_and_the_same_name_in_other_case_are_judged_separately(client, users):
    _lock(client)
    assert _login(client, "OWNER", PASSWORD, address="10.0.0.3").status_code == 429
    assert _login(client, "viewer", PASSWORD, address="10.0.0.3").status_code == 302


def test_one_address_guessing_many_usernames_is_limited(client, users):
    for n in range(MAX_PER_ADDRESS):
        assert _login(client, f"nobody{n}", "guess", address="10.9.9.9").status_code == 200
    refused = _login(client, "owner", PASSWORD, address="10.9.9.9")
    assert refused.status_code == 429
    assert "Too many failed sign-in attempts from this address; try again in 15 minutes." in refused.content.decode()
    assert _login(client, "owner", PASSWORD, address="10.1.1.1").status_code == 302


def test_success_clears_the_username_counter(client, users):
    for _ in range(MAX_PER_USERNAME - 1):
        _login(client, "owner", "wrong")
    assert _login(client, "owner", PASSWORD).status_code == 302
    client.logout()
    _lock(client)
    assert _login(client, "owner", "wrong").status_code == 429


def test_people_signing_in_from_one_address_do_not_use_up_its_budget(client, users):
    for _ in range(MAX_PER_ADDRESS + 5):
        assert _login(client, "viewer", PASSWORD, address="10.5.5.5").status_code == 302
        client.logout()


def test_the_admin_sign_in_shares_the_same_limits(client, users):
    _lock(client)
    assert _login(client, "owner", PASSWORD, url="admin-login").status_code == 429


def test_attempts_are_counted_before_the_password_check_so_a_burst_gets_only_the_limit():
    # Attempts started in parallel, none finished yet: only the first five may check a password.
    attempts = [signin_attempt_start(username="ada", address=f"10.2.0.{n}") for n in range(50)]
    assert sum(a.refused_for is None for a in attempts) == MAX_PER_USERNAME
    assert {a.refused_for for a in attempts[MAX_PER_USERNAME:]} == {"account"}


def test_refused_attempts_do_not_extend_the_lockout(monkeypatch):
    start = time.time()
    for _ in range(MAX_PER_USERNAME):
        assert signin_attempt_start(username="ada", address="10.3.0.1").refused_for is None
    monkeypatch.setattr(time, "time", lambda: start + WINDOW_SECONDS - 60)
    later = signin_attempt_start(username="ada", address="10.3.0.1")
    assert later.refused_for == "account"
    assert later.retry_after <= 61


def test_the_lockout_ends_with_its_window(monkeypatch, settings):
    # The in-memory cache, whose expiry follows the patched clock (Redis keeps real time).
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    start = time.time()
    for _ in range(MAX_PER_USERNAME):
        signin_attempt_start(username="ada", address="10.3.0.1")
    assert signin_attempt_start(username="ada", address="10.3.0.1").refused_for == "account"
    monkeypatch.setattr(time, "time", lambda: start + WINDOW_SECONDS + 1)
    assert signin_attempt_start(username="ada", address="10.3.0.1").refused_for is None


def test_the_sign_in_page_offers_a_password_reset(client, db):
    page = client.get(reverse("login")).content.decode()
    assert f'href="{reverse("password_reset")}"' in page
    assert "Forgot your password?" in page


def test_password_reset_mails_a_link_that_sets_a_new_password(client, users, mailoutbox):
    response = client.post(reverse("password_reset"), {"email": "owner@acme.test"})
    assert response.status_code == 302
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["owner@acme.test"]
    link = re.search(r"https?://[^/\s]+(/accounts/reset/\S+)", mailoutbox[0].body)
    assert link is not None
    form = client.get(link.group(1), follow=True)
    assert "Choose a new password" in form.content.decode()
    new_password = "a-much-longer-passphrase-2026"
    done = client.post(form.redirect_chain[-1][0], {"new_password1": new_password, "new_password2": new_password})
    assert done.status_code == 302
    assert "Password set" in client.get(done["Location"]).content.decode()
    assert _login(client, "owner", PASSWORD).status_code == 200
    assert _login(client, "owner", new_password).status_code == 302
    # The link works once.
    assert "This link no longer works" in client.get(link.group(1), follow=True).content.decode()


def test_reset_for_an_unknown_address_shows_the_same_page_and_sends_nothing(client, users, mailoutbox):
    response = client.post(reverse("password_reset"), {"email": "stranger@evil.test"}, follow=True)
    assert "Check your email" in response.content.decode()
    assert mailoutbox == []


@pytest.mark.parametrize(
    "spelling",
    [
        "\uff4fwner",  # full-width o
        "\uff4f\uff57\uff4e\uff45\uff52",  # all full-width
        "OWNER",
        " owner ",
        "\u2134wner",  # script small o, NFKC -> o
        "\U0001d428wner",  # mathematical bold small o
    ],
)
def test_another_unicode_spelling_of_a_locked_username_is_locked_too(client, users, spelling):
    _lock(client, "owner")
    with mock.patch.object(auth_forms, "authenticate", wraps=auth_forms.authenticate) as checked:
        attempt = _login(client, spelling, PASSWORD, address="10.0.0.9")
    assert attempt.status_code == 429
    assert checked.call_count == 0
    assert "_auth_user_id" not in client.session


def test_failures_spread_over_spellings_share_one_budget(client, users):
    for spelling in ["owner", "\uff4fwner", "Owner", "\u2134wner", "OWNER"]:
        assert _login(client, spelling, "wrong").status_code == 200
    assert _login(client, "owner", PASSWORD).status_code == 429


def test_a_full_width_spelling_signs_in_when_not_locked(client, users):
    # Django's form applies NFKC, so this is the same account: the budget must be shared (above).
    assert _login(client, "\uff4fwner", PASSWORD).status_code == 302
