"""member_invite: one service for the three cases an invitation by email can be."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError

from assessments.audit.context import Actor
from assessments.audit.models import AuditEvent
from assessments.organisations import services
from assessments.organisations.models import Invitation, Membership
from assessments.organisations.services import member_invite, organisation_create, user_create


@pytest.fixture(autouse=True)
def _mail(settings):
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}


def _invite(org, actor, email, roles, username="nina"):
    return member_invite(
        organisation=org,
        email=email,
        username=username,
        first_name="Nina",
        last_name="",
        roles=roles,
        actor=actor,
        accept_url="http://testserver/invitations/",
    )


def _world() -> tuple[int, int, int, int]:
    return User.objects.count(), Membership.objects.count(), Invitation.objects.count(), AuditEvent.objects.count()


def test_a_new_address_gets_an_account_here_with_the_roles(org, users):
    outcome = _invite(org, Actor.for_user(users["admin"]), "nina@acme.test", ["security", "risk", "security"])
    assert outcome.kind == "account_created"
    assert outcome.user == User.objects.get(username="nina", first_name="Nina")
    assert sorted(m.role for m in outcome.memberships) == ["risk", "security"]
    assert outcome.invitation is None


def test_a_member_here_gets_the_roles_they_lack_and_keeps_their_account(org, users):
    viewer = users["viewer"]
    outcome = _invite(org, Actor.for_user(users["admin"]), viewer.email.upper(), ["viewer", "risk"], username="other")
    assert (outcome.kind, outcome.user) == ("roles_added", viewer)
    assert [m.role for m in outcome.memberships] == ["risk"]
    assert not User.objects.filter(username="other").exists()


def test_an_account_elsewhere_gets_an_invitation_and_nothing_else(
    org, users, other_org, django_capture_on_commit_callbacks
):
    system = Actor.system("tests")
    elsewhere = user_create(
        organisation=other_org, username="gil", email="gil@globex.test", password="pw", actor=system
    )
    services.membership_grant(organisation=other_org, user=elsewhere, role="viewer", actor=system)
    with django_capture_on_commit_callbacks(execute=True):
        outcome = _invite(org, Actor.for_user(users["admin"]), "GIL@globex.test", ["risk"])
    assert outcome.kind == "invitation_sent" and outcome.user is None and outcome.memberships == ()
    assert outcome.invitation == Invitation.objects.get(invitee=elsewhere, organisation=org, roles=["risk"])
    assert not Membership.objects.filter(organisation=org, user=elsewhere).exists()
    assert [m.to for m in mail.outbox] == [["gil@globex.test"]]


def test_it_is_all_or_nothing(org, users, monkeypatch):
    real_grant = services.membership_grant

    def grant_then_fail(**kwargs):
        if kwargs["role"] == "risk":
            raise ValidationError({"role": "The database went away."})
        return real_grant(**kwargs)

    monkeypatch.setattr(services, "membership_grant", grant_then_fail)
    before = _world()
    with pytest.raises(ValidationError):
        _invite(org, Actor.for_user(users["admin"]), "nina@acme.test", ["security", "risk"])
    assert _world() == before


@pytest.mark.parametrize("roles", [[], ["overlord"]])
def test_it_needs_known_roles(org, users, roles):
    before = _world()
    with pytest.raises(ValidationError) as refused:
        _invite(org, Actor.for_user(users["admin"]), "nina@acme.test", roles)
    assert "roles" in refused.value.message_dict
    assert _world() == before


@pytest.mark.parametrize("email", ["nina@acme.test", "viewer@acme.test"])
def test_only_administrators_invite_even_when_nothing_would_change(org, users, email):
    before = _world()
    with pytest.raises(PermissionDenied):
        _invite(org, Actor.for_user(users["owner"]), email, ["viewer"])
    outsider = organisation_create(name="Initech", slug="initech", actor=Actor.system("tests"))
    with pytest.raises(PermissionDenied):
        _invite(outsider, Actor.for_user(users["admin"]), email, ["viewer"])
    assert _world()[:3] == before[:3]
