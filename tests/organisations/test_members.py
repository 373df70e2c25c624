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


def test_a_role_is_granted_to_someone_who_already_holds_two(client, users, org):
    from assessments.audit.context import Actor
    from assessments.organisations.services import membership_grant

    membership_grant(organisation=org, user=users["viewer"], role="risk", actor=Actor.system("t"))
    client.force_login(users["admin"])
    response = client.post(reverse("member-role-grant", args=[users["viewer"].pk]), {"role": "product"})
    assert response.status_code == 302
    assert set(Membership.objects.filter(user=users["viewer"], organisation=org).values_list("role", flat=True)) == {
        "viewer",
        "risk",
        "product",
    }


def test_non_admins_cannot_invite_grant_or_revoke(client, users, org):
    membership = Membership.objects.get(user=users["viewer"], organisation=org)
    before = (User.objects.count(), Membership.objects.count(), AuditEvent.objects.count())
    client.force_login(users["owner"])
    invite = {"email": "eve@acme.test", "username": "eve", "roles": ["admin"]}
    assert client.post(reverse("member-invite"), invite).status_code == 403
    assert client.post(reverse("member-role-grant", args=[users["owner"].pk]), {"role": "admin"}).status_code == 403
    assert client.post(reverse("member-role-revoke", args=[membership.pk])).status_code == 403
    assert (User.objects.count(), Membership.objects.count(), AuditEvent.objects.count()) == before
    assert mail.outbox == []


def test_inviting_an_existing_address_grants_roles_without_a_new_account_or_mail(client, users, org):
    client.force_login(users["admin"])
    accounts = User.objects.count()
    response = client.post(
        reverse("member-invite"), {"email": "VIEWER@acme.test", "username": "someone-else", "roles": ["risk"]}
    )
    assert response.status_code == 302
    assert User.objects.count() == accounts
    assert Membership.objects.filter(user=users["viewer"], organisation=org, role="risk").exists()
    assert mail.outbox == []


def test_an_invitee_sets_their_own_password_from_the_email(client, users):
    import re

    client.force_login(users["admin"])
    client.post(reverse("member-invite"), {"email": "nina@acme.test", "username": "nina", "roles": ["viewer"]})
    client.logout()
    link = re.search(r"https?://[^/\s]+(/accounts/reset/\S+)", mail.outbox[0].body).group(1)
    form = client.get(link, follow=True)
    password = "nina-chooses-her-own-2026"
    done = client.post(form.redirect_chain[-1][0], {"new_password1": password, "new_password2": password})
    assert done.status_code == 302
    assert client.login(username="nina", password=password)


def test_refusing_to_remove_the_last_admin_records_nothing(client, users, org):
    client.force_login(users["admin"])
    membership = Membership.objects.get(user=users["admin"], organisation=org, role="admin")
    events = AuditEvent.objects.filter(organisation=org).count()
    response = client.post(reverse("member-role-revoke", args=[membership.pk]))
    assert response.status_code == 409
    assert "The last administrator cannot be removed." in response.content.decode()
    assert AuditEvent.objects.filter(organisation=org).count() == events
