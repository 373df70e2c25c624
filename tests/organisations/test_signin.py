"""Sign-in limits per account and per address; password reset by email."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.core.cache import cache
from django.urls import reverse

from assessments.organisations.signin import MAX_PER_ADDRESS, MAX_PER_USER


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def _login(client, username, password, address="10.0.0.1"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


def test_a_good_password_signs_in(client, users):
    response = _login(client, "owner", "pw-for-tests-only")
    assert response.status_code == 302


def test_repeated_failures_lock_the_account_even_with_the_right_password(client, users):
    for _ in range(MAX_PER_USER):
        assert _login(client, "owner", "wrong").status_code == 200
    locked = _login(client, "owner", "pw-for-tests-only", address="10.0.0.2")
    assert locked.status_code == 429
    assert "Too many failed sign-in attempts" in locked.content.decode()
    assert int(locked["Retry-After"]) > 0
    assert "_auth_user_id" not in client.session
    # Another account from another address is unaffected.
    assert _login(client, "viewer", "pw-for-tests-only", address="10.0.0.3").status_code == 302


def test_one_address_guessing_many_accounts_is_limited(client, users):
    for n in range(MAX_PER_ADDRESS):
        _login(client, f"nobody{n}", "guess", address="10.9.9.9")
    assert _login(client, "owner", "pw-for-tests-only", address="10.9.9.9").status_code == 429
    assert _login(client, "owner", "pw-for-tests-only", address="10.1.1.1").status_code == 302


def test_success_clears_the_account_counter(client, users):
    for _ in range(MAX_PER_USER - 1):
        _login(client, "owner", "wrong")
    assert _login(client, "owner", "pw-for-tests-only").status_code == 302
    client.logout()
    for _ in range(MAX_PER_USER - 1):
        assert _login(client, "owner", "wrong").status_code == 200


def test_password_reset_sends_a_working_link(client, users, settings):
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    response = client.post(reverse("password_reset"), {"email": "owner@acme.test"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(r"https?://[^/]+(/accounts/reset/\S+)", mail.outbox[0].body).group(1)
    form = client.get(link, follow=True)
    assert "Choose a new password" in form.content.decode()
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "a-much-longer-passphrase-2026", "new_password2": "a-much-longer-passphrase-2026"},
    )
    assert done.status_code == 302
    client.logout()
    assert _login(client, "owner", "a-much-longer-passphrase-2026").status_code == 302


def test_reset_for_an_unknown_address_says_the_same_and_sends_nothing(client, users, settings):
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    response = client.post(reverse("password_reset"), {"email": "stranger@evil.test"}, follow=True)
    assert "Check your email" in response.content.decode()
    assert len(mail.outbox) == 0
