"""Shared fixtures. Real services when the environment names them; in CI they must answer."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.conf import settings as django_settings

from assessments.audit.context import Actor
from assessments.frameworks.loader import FRAMEWORK_V1_PATH, framework_read_file
from assessments.frameworks.models import Framework
from assessments.frameworks.services import framework_load
from assessments.organisations.models import Organisation, Role
from assessments.organisations.services import membership_grant, organisation_create, user_create

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
# Worker and command subprocesses started by tests get their own PREFLIGHT_VAR_DIR; hand them
# the key this run uses, since outside debug mode the app refuses to start without one.
os.environ.setdefault("SECRET_KEY", django_settings.SECRET_KEY)
SYSTEM = Actor.system("tests")


def _reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 0), timeout=3):
            return True
    except OSError:
        return False


def pytest_sessionstart(session: pytest.Session) -> None:
    """In CI the real services are required: fail at once rather than skip."""
    if not IN_CI:
        return
    for name in ("DATABASE_URL", "REDIS_URL"):
        url = os.environ.get(name, "")
        if not url:
            pytest.exit(f"CI=true but {name} is not set", returncode=3)
        if not _reachable(url):
            pytest.exit(f"CI=true but {name} ({urlparse(url).netloc}) is unreachable", returncode=3)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    # Argon2 is deliberately slow and the suite creates hundreds of accounts; the real settings keep
    # Argon2 first (tests/test_settings.py checks that).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    # Cached page fragments and sign-in counts must not leak from one test into the next
    # (on Redis the cache outlives the test database).
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _isolated_storage(settings, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.AUDIT_CHECKPOINT_DIR = tmp_path / "checkpoints"
    settings.AUDIT_SIGNING_KEY_PATH = tmp_path / "audit-signing-key.pem"


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("REDIS_URL", "")
    if not url or not _reachable(url):
        if IN_CI:
            pytest.fail("REDIS_URL must be reachable in CI")
        pytest.skip("no Redis configured (set REDIS_URL)")
    return url


@pytest.fixture
def system_actor() -> Actor:
    return SYSTEM


@pytest.fixture
def org(db) -> Organisation:
    return organisation_create(name="Acme Bank", slug="acme", actor=SYSTEM)


@pytest.fixture
def other_org(db) -> Organisation:
    return organisation_create(name="Globex", slug="globex", actor=SYSTEM)


@pytest.fixture(scope="session")
def default_spec():
    return framework_read_file(FRAMEWORK_V1_PATH)


@pytest.fixture
def framework(org: Organisation, default_spec) -> Framework:
    return framework_load(organisation=org, spec=default_spec, actor=SYSTEM)


@pytest.fixture
def users(org: Organisation) -> dict:
    """One user per role in ``org``, named after the role."""
    people = {}
    for role in Role.values:
        user = user_create(
            organisation=org, username=role, email=f"{role}@acme.test", password="pw-for-tests-only", actor=SYSTEM
        )
        membership_grant(organisation=org, user=user, role=role, actor=SYSTEM)
        people[role] = user
    return people


@pytest.fixture
def owner_actor(users) -> Actor:
    return Actor.for_user(users["owner"])
