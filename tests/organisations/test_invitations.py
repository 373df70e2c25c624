"""Invitations to existing accounts need the person's consent; people in several organisations choose one."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from assessments.audit.context import Actor
from assessments.audit.models import AuditEvent
from assessments.organisations.models import Invitation, Membership, Role
from assessments.organisations.services import membership_grant, user_create

SYSTEM = Actor.system("tests")


@pytest.fixture(autouse=True)
def _mail(settings):
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}


@pytest.fixture
def globex_admin(other_org):
    admin = user_create(organisation=other_org, username="gadmin", email="g@globex.test", password="pw", actor=SYSTEM)
    membership_grant(organisation=other_org, user=admin, role=Role.ADMIN, actor=SYSTEM)
    return admin


def _invite(client: Client, email: str, roles=("risk",), username="ignored"):
    return client.post(reverse("member-invite"), {"email": email, "username": username, "roles": list(roles)})


def test_inviting_a_member_of_another_organisation_adds_nobody_and_reveals_nothing(
    client, users, org, other_org, globex_admin, django_capture_on_commit_callbacks
):
    rita = users["risk"]
    client.force_login(globex_admin)
    with django_capture_on_commit_callbacks(execute=True):
        answer = _invite(client, rita.email.upper())
    assert answer.status_code == 302
    assert not Membership.objects.filter(organisation=other_org, user=rita).exists()
    page = client.get(reverse("members")).content.decode()
    assert rita.email.upper() in page  # the address they typed
    assert f"<bdi>{rita.username}</bdi>" not in page
    assert rita.email not in page  # the account's own address is not shown either
    event = AuditEvent.objects.filter(organisation=other_org, action="invitation.created").get()
    assert event.changes == {"email": [None, rita.email.upper()], "roles": [None, ["risk"]]}
    assert [m.to for m in mail.outbox] == [[rita.email]]
    assert "Nothing changes until you accept" in mail.outbox[0].body
    # Rita's portfolio is still Acme's, with no question asked.
    client.force_login(rita)
    home = client.get(reverse("home"))
    assert home.status_code == 200
    assert "Acme Bank" in home.content.decode()
    assert "1 invitation" in home.content.decode()


def test_the_admin_sees_the_same_message_for_a_new_and_an_existing_address(client, users, globex_admin):
    client.force_login(globex_admin)
    existing = client.post(
        reverse("member-invite"), {"email": users["risk"].email, "username": "x1", "roles": ["risk"]}, follow=True
    )
    new = client.post(
        reverse("member-invite"), {"email": "new@globex.test", "username": "newbie", "roles": ["risk"]}, follow=True
    )
    assert f"Invitation sent to {users['risk'].email}." in existing.content.decode()
    assert "Invitation sent to new@globex.test." in new.content.decode()


def test_accepting_joins_with_the_roles_and_opens_that_organisation(client, users, other_org, globex_admin):
    client.force_login(globex_admin)
    _invite(client, users["risk"].email, roles=("risk", "viewer"))
    invitation = Invitation.objects.get()
    client.force_login(users["risk"])
    listing = client.get(reverse("invitations")).content.decode()
    assert "Globex" in listing and "Risk &amp; compliance, Viewer" in listing
    answer = client.post(reverse("invitation-accept", args=[invitation.pk]), follow=True)
    assert answer.status_code == 200
    body = answer.content.decode()
    assert "Working in <strong><bdi>Globex</bdi></strong>" in body
    assert set(
        Membership.objects.filter(organisation=other_org, user=users["risk"]).values_list("role", flat=True)
    ) == {
        "risk",
        "viewer",
    }
    assert AuditEvent.objects.filter(organisation=other_org, action="invitation.accepted").count() == 1
    assert client.post(reverse("invitation-accept", args=[invitation.pk])).status_code == 404


def test_declining_or_a_withdrawn_invitation_changes_nothing(client, users, other_org, globex_admin):
    client.force_login(globex_admin)
    _invite(client, users["risk"].email)
    _invite(client, users["product"].email)
    to_rita, to_priya = Invitation.objects.order_by("pk")
    assert client.post(reverse("invitation-revoke", args=[to_priya.pk])).status_code == 302
    client.force_login(users["risk"])
    client.post(reverse("invitation-decline", args=[to_rita.pk]))
    client.force_login(users["product"])
    assert client.post(reverse("invitation-accept", args=[to_priya.pk])).status_code == 404
    assert not Membership.objects.filter(organisation=other_org, user__in=[users["risk"], users["product"]]).exists()
    assert set(Invitation.objects.values_list("status", flat=True)) == {"declined", "revoked"}


def test_nobody_answers_someone_elses_invitation(client, users, globex_admin):
    client.force_login(globex_admin)
    _invite(client, users["risk"].email)
    invitation = Invitation.objects.get()
    for person in (users["admin"], users["product"], globex_admin):
        client.force_login(person)
        assert client.post(reverse("invitation-accept", args=[invitation.pk])).status_code == 404
    assert Invitation.objects.get().status == "pending"


def test_a_role_cannot_be_granted_directly_to_someone_who_belongs_elsewhere(client, users, globex_admin):
    client.force_login(globex_admin)
    answer = client.post(reverse("member-role-grant", args=[users["risk"].pk]), {"role": "admin"})
    assert answer.status_code == 404
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="invite them instead"):
        membership_grant(
            organisation=globex_admin.memberships.get().organisation,
            user=users["risk"],
            role="admin",
            actor=Actor.for_user(globex_admin),
        )


def test_people_in_several_organisations_choose_which_one_they_look_at(client, users, other_org):
    membership_grant(organisation=other_org, user=users["risk"], role=Role.VIEWER, actor=SYSTEM)
    client.force_login(users["risk"])
    first = client.get(reverse("home"))
    assert first.status_code == 302
    assert first["Location"] == reverse("organisation-choose") + "?next=%2F"
    chooser = client.get(first["Location"]).content.decode()
    assert "Open <bdi>Acme Bank</bdi>" in chooser and "Open <bdi>Globex</bdi>" in chooser
    chosen = client.post(reverse("organisation-switch", args=["globex"]), {"next": "/"}, follow=True)
    assert "Working in <strong><bdi>Globex</bdi></strong>" in chosen.content.decode()
    assert "You are now looking at Globex." in chosen.content.decode()
    # An htmx request asks the browser to go to the chooser instead of swapping a page in.
    client.logout()
    client.force_login(users["risk"])
    partial = client.get(reverse("home"), HTTP_HX_REQUEST="true")
    assert partial.status_code == 204 and partial["HX-Redirect"].startswith(reverse("organisation-choose"))


def test_the_chooser_never_redirects_off_site(client, users, other_org):
    membership_grant(organisation=other_org, user=users["risk"], role=Role.VIEWER, actor=SYSTEM)
    client.force_login(users["risk"])
    page = client.get(reverse("organisation-choose") + "?next=https://evil.example/").content.decode()
    assert "evil.example" not in page
    answer = client.post(reverse("organisation-switch", args=["globex"]), {"next": "https://evil.example/"})
    assert answer["Location"] == reverse("home")
