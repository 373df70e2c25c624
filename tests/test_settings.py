"""Production settings: no built-in secret key, and `check --deploy` clean with the documented values."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[1]
ENV_EXAMPLE = ROOT / "docker" / ".env.example"


def _example_env() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def _manage(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # Only what a deployment would have: no test-run leftovers (the browser tests' async switch).
    dropped = ("SECRET_KEY", "DEBUG", "DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    local = {
        "PREFLIGHT_VAR_DIR": str(tmp_path / "var"),
        "MEDIA_ROOT": str(tmp_path / "media"),
        "STATIC_ROOT": str(tmp_path / "static"),
        "AUDIT_SIGNING_KEY_PATH": str(tmp_path / "key.pem"),
        "AUDIT_CHECKPOINT_DIR": str(tmp_path / "checkpoints"),
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env, **local},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_documented_production_values_pass_check_deploy_at_warning_level(tmp_path):
    env = _example_env()
    assert env["SECRET_KEY"] == "replace-me", "the example must not ship a usable key"
    env["SECRET_KEY"] = secrets.token_urlsafe(50)
    result = _manage(["check", "--deploy", "--fail-level", "WARNING"], env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_setting_the_app_reads_is_in_the_example(tmp_path):
    documented = set(_example_env())
    for name in ("SSL_REDIRECT", "HSTS_SECONDS", "SECURE_PROXY_SSL_HEADER", "SECURE_COOKIES", "REQUEST_MAX_BYTES"):
        assert name in documented


def test_without_a_secret_key_outside_debug_the_app_refuses_to_start(tmp_path):
    result = _manage(["check"], {}, tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_the_example_placeholder_or_any_short_key_is_refused(tmp_path):
    for weak in ("replace-me", "change-me", "a" * 60):
        result = _manage(["check"], {"SECRET_KEY": weak}, tmp_path)
        assert result.returncode != 0, weak
        assert "SECRET_KEY is too weak" in result.stderr


def test_debug_mode_runs_without_a_key(tmp_path):
    assert _manage(["check"], {"DEBUG": "1"}, tmp_path).returncode == 0


def test_passwords_are_hashed_with_argon2_outside_the_test_suite():
    # The suite swaps in a fast hasher (tests/conftest.py); the real setting must not.
    from importlib import import_module

    real = import_module("readiness.settings")
    assert real.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    assert settings.PASSWORD_HASHERS != real.PASSWORD_HASHERS
