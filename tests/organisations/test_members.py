"""Admins invite people and manage roles; nobody else can, and the last admin stays."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.urls import reverse

from assessments.audit.models import AuditEvent
from assessments.organisations.models import Membership


@pytest.fixture(autouse=True)
def _mail(settings):
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}


def test_only_admins_see_the_members_page(client, users):
    client.force_login(users["owner"])
    assert client.get(reverse("members")).status_code == 403
    client.force_login(users["admin"])
    page = client.get(reverse("members"))
    assert page.status_code == 200
    assert "viewer@acme.test" in page.content.decode()


def test_an_invite_creates_the_account_grants_roles_and_emails_a_link(client, users, org):
    client.force_login(users["admin"])
    before = AuditEvent.objects.filter(organisation=org).count()
    response = client.post(
        reverse("member-invite"),
        {"email": "nina@acme.test", "username": "nina", "first_name": "Nina", "roles": ["security", "risk"]},
    )
    assert response.status_code == 302
    nina = User.objects.get(username="nina")
    assert set(Membership.objects.filter(user=nina, organisation=org).values_list("role", flat=True)) == {
        "security",
        "risk",
    }
    assert len(mail.outbox) == 1 and "/accounts/reset/" in mail.outbox[0].body
    assert AuditEvent.objects.filter(organisation=org).count() == before + 3  # account + two roles


def test_an_invite_with_a_taken_username_is_refused_clearly(client, users):
    client.force_login(users["admin"])
    response = client.post(
        reverse("member-invite"), {"email": "new@acme.test", "username": "owner", "roles": ["viewer"]}
    )
    assert response.status_code == 422
    assert "is taken" in response.content.decode()
    assert not User.objects.filter(email="new@acme.test").exists()


def test_the_last_admin_cannot_be_removed(client, users, org):
    client.force_login(users["admin"])
    membership = Membership.objects.get(user=users["admin"], organisation=org, role="admin")
    response = client.post(reverse("member-role-revoke", args=[membership.pk]))
    assert response.status_code == 409
    assert "last administrator" in response.content.decode()
    assert Membership.objects.filter(pk=membership.pk).exists()


def test_roles_are_granted_and_revoked(client, users, org):
    client.force_login(users["admin"])
    assert client.post(reverse("member-role-grant", args=[users["viewer"].pk]), {"role": "product"}).status_code == 302
    membership = Membership.objects.get(user=users["viewer"], organisation=org, role="product")
    assert client.post(reverse("member-role-revoke", args=[membership.pk])).status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_another_organisations_membership_is_not_found(client, users, other_org):
    from assessments.audit.context import Actor
    from assessments.organisations.services import membership_grant, user_create

    stranger = user_create(
        organisation=other_org, username="s", email="s@g.test", password="pw", actor=Actor.system("t")
    )
    foreign = membership_grant(organisation=other_org, user=stranger, role="admin", actor=Actor.system("t"))
    client.force_login(users["admin"])
    assert client.post(reverse("member-role-revoke", args=[foreign.pk])).status_code == 404
    assert client.post(reverse("member-role-grant", args=[stranger.pk]), {"role": "viewer"}).status_code == 404
    assert Membership.objects.filter(pk=foreign.pk).exists()
