"""Creating organisations and managing who holds which role."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Literal

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from assessments.audit.context import Actor
from assessments.audit.services import audit_chain_start, audit_record
from assessments.organisations.models import Invitation, InvitationStatus, Membership, Organisation, Role
from assessments.organisations.permissions import can_administer, require, require_member


@transaction.atomic
def organisation_create(*, name: str, slug: str, actor: Actor) -> Organisation:
    """Create an organisation with an empty audit chain; its first event records the creation."""
    organisation = Organisation(name=name, slug=slug)
    organisation.full_clean()
    organisation.save()
    audit_chain_start(organisation=organisation)
    audit_record(
        organisation=organisation,
        actor=actor,
        action="organisation.created",
        object_type="organisation",
        object_id=organisation.pk,
        changes={"name": [None, name], "slug": [None, slug]},
    )
    return organisation


def _require_admin(actor: Actor, organisation: Organisation) -> None:
    roles = require_member(actor=actor, organisation=organisation)
    require(can_administer(roles), "Only administrators manage members.")


@transaction.atomic
def membership_grant(*, organisation: Organisation, user: User, role: str, actor: Actor) -> Membership:
    """Give ``user`` ``role`` in ``organisation``; granting a role already held is an error."""
    _lock_organisation(organisation)
    _require_admin(actor, organisation)
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role '{role}'."})
    if (
        actor.type != "system"
        and not Membership.objects.filter(organisation=organisation, user=user).exists()
        and Membership.objects.filter(user=user).exists()
    ):
        # Someone who belongs elsewhere joins only by accepting an invitation.
        raise ValidationError({"role": "That person belongs to another organisation; invite them instead."})
    if Membership.objects.filter(organisation=organisation, user=user, role=role).exists():
        raise ValidationError({"role": f"{user.get_username()} already holds the role '{role}'."})
    membership = Membership.objects.create(organisation=organisation, user=user, role=role)
    audit_record(
        organisation=organisation,
        actor=actor,
        action="membership.granted",
        object_type="membership",
        object_id=membership.pk,
        changes={"user": [None, user.get_username()], "role": [None, role]},
    )
    return membership


def _lock_organisation(organisation: Organisation) -> None:
    """Serialise membership changes in one organisation (a row lock on PostgreSQL).

    Without it two administrators removing each other at the same moment both see
    two administrators, both succeed, and the organisation is left with none.
    """
    Organisation.objects.select_for_update().filter(pk=organisation.pk).first()


@transaction.atomic
def membership_revoke(*, membership: Membership, actor: Actor) -> None:
    """Take a role away. The last administrator cannot be removed, even by a concurrent request."""
    organisation = membership.organisation
    _lock_organisation(organisation)
    # Checked after the lock: the actor may have lost the admin role a moment ago.
    _require_admin(actor, organisation)
    if not Membership.objects.filter(pk=membership.pk).exists():
        raise ValidationError("That role was already removed.")
    if (
        membership.role == Role.ADMIN
        and Membership.objects.filter(organisation=organisation, role=Role.ADMIN).count() == 1
    ):
        raise ValidationError("The last administrator cannot be removed.")
    username = membership.user.get_username()
    role = membership.role
    membership_id = membership.pk
    membership.delete()
    audit_record(
        organisation=organisation,
        actor=actor,
        action="membership.revoked",
        object_type="membership",
        object_id=membership_id,
        changes={"user": [username, None], "role": [role, None]},
    )


@transaction.atomic
def user_create(
    *,
    organisation: Organisation,
    username: str,
    email: str,
    password: str,
    actor: Actor,
    first_name: str = "",
    last_name: str = "",
) -> User:
    """Create a sign-in account for a person joining ``organisation`` (roles are granted separately)."""
    _require_admin(actor, organisation)
    if User.objects.filter(username=username).exists():
        raise ValidationError({"username": f"The username '{username}' is taken."})
    user = User.objects.create_user(
        username=username, email=email, password=password, first_name=first_name, last_name=last_name
    )
    audit_record(
        organisation=organisation,
        actor=actor,
        action="user.created",
        object_type="user",
        object_id=user.pk,
        changes={"username": [None, username], "email": [None, email]},
    )
    return user


def _invitation_mail(invitation: Invitation, accept_url: str) -> None:
    roles = ", ".join(invitation.role_labels)
    send_mail(
        subject=f"{invitation.organisation.name} invites you to Preflight",
        message=(
            f"{invitation.organisation.name} has invited you to join it on Preflight as: {roles}.\n\n"
            f"Sign in with your existing account and accept or decline here:\n{accept_url}\n\n"
            "Nothing changes until you accept."
        ),
        from_email=None,
        recipient_list=[invitation.invitee.email],
    )


@transaction.atomic
def invitation_create(
    *, organisation: Organisation, invitee: User, email: str, roles: list[str], actor: Actor, accept_url: str
) -> Invitation:
    """Invite an existing account to ``organisation``; it joins only when its owner accepts.

    The audit event names the address that was typed, not the account, so the trail of
    the inviting organisation does not learn who holds that address elsewhere.
    """
    _lock_organisation(organisation)
    _require_admin(actor, organisation)
    unknown = [role for role in roles if role not in Role.values]
    if unknown or not roles:
        raise ValidationError({"roles": "Choose at least one known role."})
    if Invitation.objects.filter(organisation=organisation, invitee=invitee, status=InvitationStatus.PENDING).exists():
        raise ValidationError({"email": f"{email} already has an invitation waiting for an answer."})
    invitation = Invitation.objects.create(
        organisation=organisation,
        invitee=invitee,
        email=email,
        roles=sorted(set(roles)),
        invited_by_id=actor.user_pk or invitee.pk,
    )
    audit_record(
        organisation=organisation,
        actor=actor,
        action="invitation.created",
        object_type="invitation",
        object_id=invitation.pk,
        changes={"email": [None, email], "roles": [None, invitation.roles]},
    )
    transaction.on_commit(lambda: _invitation_mail(invitation, accept_url))
    return invitation


def _close(invitation: Invitation, *, status: str, invitee: User | None = None) -> Invitation:
    """Lock the invitation and close it with ``status``; only a pending one can be closed,
    and when ``invitee`` is given, only by that person."""
    locked = Invitation.objects.select_for_update().select_related("organisation").get(pk=invitation.pk)
    if invitee is not None and locked.invitee_id != invitee.pk:
        raise PermissionDenied("This invitation is for someone else.")
    if locked.status != InvitationStatus.PENDING:
        raise ValidationError(f"This invitation was already {locked.get_status_display().lower()}.")
    locked.status = status
    locked.answered_at = timezone.now()
    locked.save(update_fields=["status", "answered_at"])
    return locked


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: User, actor: Actor) -> list[Membership]:
    """The invitee joins with the invited roles (those already held are skipped)."""
    _lock_organisation(invitation.organisation)
    accepted = _close(invitation, status=InvitationStatus.ACCEPTED, invitee=user)
    held = set(Membership.objects.filter(organisation=accepted.organisation, user=user).values_list("role", flat=True))
    granted = [
        Membership.objects.create(organisation=accepted.organisation, user=user, role=role)
        for role in accepted.roles
        if role not in held
    ]
    audit_record(
        organisation=accepted.organisation,
        actor=actor,
        action="invitation.accepted",
        object_type="invitation",
        object_id=accepted.pk,
        changes={
            "status": [InvitationStatus.PENDING, InvitationStatus.ACCEPTED],
            "user": [None, user.get_username()],
            "roles": [None, [m.role for m in granted]],
        },
    )
    return granted


@transaction.atomic
def invitation_decline(*, invitation: Invitation, user: User, actor: Actor) -> Invitation:
    declined = _close(invitation, status=InvitationStatus.DECLINED, invitee=user)
    audit_record(
        organisation=declined.organisation,
        actor=actor,
        action="invitation.declined",
        object_type="invitation",
        object_id=declined.pk,
        changes={"status": [InvitationStatus.PENDING, InvitationStatus.DECLINED]},
    )
    return declined


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor: Actor) -> Invitation:
    """An administrator withdraws an invitation that has not been answered."""
    _require_admin(actor, invitation.organisation)
    locked = _close(invitation, status=InvitationStatus.REVOKED)
    audit_record(
        organisation=invitation.organisation,
        actor=actor,
        action="invitation.revoked",
        object_type="invitation",
        object_id=locked.pk,
        changes={"status": [InvitationStatus.PENDING, InvitationStatus.REVOKED]},
    )
    return locked


@dataclass(frozen=True)
class InviteOutcome:
    """What inviting an address did.

    ``account_created``: nobody had the address; ``user`` is the new account (its owner
    still needs the email that lets them choose a password). ``roles_added``: a member
    here has it; ``memberships`` are the roles they lacked (perhaps none). ``invitation_sent``:
    an account elsewhere has it; it joins only by accepting ``invitation``, and ``user``
    stays None because who holds the address is not the inviting organisation's business.
    """

    kind: Literal["account_created", "roles_added", "invitation_sent"]
    user: User | None = None
    memberships: tuple[Membership, ...] = ()
    invitation: Invitation | None = None


@transaction.atomic
def member_invite(
    *,
    organisation: Organisation,
    email: str,
    username: str,
    first_name: str,
    last_name: str,
    roles: list[str],
    actor: Actor,
    accept_url: str,
) -> InviteOutcome:
    """Invite ``email`` to ``organisation`` with ``roles``: a new account, more roles, or an invitation.

    Composed of ``user_create``, ``membership_grant`` and ``invitation_create``, so it
    records one audit event per account, role or invitation it makes, and all of them or
    none (one transaction). ``username``, ``first_name`` and ``last_name`` are used only
    for a new account.
    """
    _require_admin(actor, organisation)
    wanted = list(dict.fromkeys(roles))
    if not wanted or any(role not in Role.values for role in wanted):
        raise ValidationError({"roles": "Choose at least one known role."})
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = user_create(
            organisation=organisation,
            username=username,
            email=email,
            # Nobody knows this password; the invitee sets their own from the email.
            password=secrets.token_urlsafe(32),
            first_name=first_name,
            last_name=last_name,
            actor=actor,
        )
        granted = [membership_grant(organisation=organisation, user=user, role=r, actor=actor) for r in wanted]
        return InviteOutcome(kind="account_created", user=user, memberships=tuple(granted))
    held = set(Membership.objects.filter(organisation=organisation, user=user).values_list("role", flat=True))
    if held:
        granted = [
            membership_grant(organisation=organisation, user=user, role=r, actor=actor) for r in wanted if r not in held
        ]
        return InviteOutcome(kind="roles_added", user=user, memberships=tuple(granted))
    invitation = invitation_create(
        organisation=organisation, invitee=user, email=email, roles=wanted, actor=actor, accept_url=accept_url
    )
    return InviteOutcome(kind="invitation_sent", invitation=invitation)
