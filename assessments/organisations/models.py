"""Organisations and the roles people hold in them."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Organisation(models.Model):
    """A tenant: pilots, frameworks and the audit chain all belong to one."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", "Pilot owner"
    DELIVERY = "delivery", "Delivery"
    SECURITY = "security", "Security"
    RISK = "risk", "Risk & compliance"
    PRODUCT = "product", "Product"
    VIEWER = "viewer", "Viewer"
    ADMIN = "admin", "Administrator"


# The reviewers of a pilot: they edit the responses they are named owner of.
REVIEWER_ROLES: frozenset[str] = frozenset({Role.DELIVERY, Role.SECURITY, Role.RISK, Role.PRODUCT})


class Membership(models.Model):
    """One role one person holds in one organisation; several roles mean several rows."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "user", "role"], name="membership_unique_role"),
            models.CheckConstraint(condition=models.Q(role__in=Role.values), name="membership_role_valid"),
        ]
        ordering = ["organisation", "user", "role"]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()} @ {self.organisation}"


class InvitationStatus(models.TextChoices):
    PENDING = "pending", "Waiting for an answer"
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"
    REVOKED = "revoked", "Withdrawn"


class Invitation(models.Model):
    """An invitation for an existing account to join an organisation with some roles.

    A person who already has an account (perhaps in another organisation) joins only
    by accepting: until then the inviting organisation sees the address it typed and
    nothing about the account.
    """

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="invitations")
    invitee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(max_length=254, help_text="The address the administrator typed.")
    roles = models.JSONField(help_text="Role values granted on acceptance.")
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=InvitationStatus.choices, default=InvitationStatus.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "invitee"],
                condition=models.Q(status="pending"),
                name="invitation_one_pending_per_person",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=InvitationStatus.values), name="invitation_status_valid"
            ),
            models.CheckConstraint(
                condition=(models.Q(status="pending") & models.Q(answered_at__isnull=True))
                | (~models.Q(status="pending") & models.Q(answered_at__isnull=False)),
                name="invitation_answered_iff_not_pending",
            ),
        ]
        ordering = ["organisation", "-created_at"]

    def __str__(self) -> str:
        return f"{self.email} → {self.organisation} ({self.get_status_display()})"

    @property
    def role_labels(self) -> list[str]:
        return [Role(value).label for value in self.roles if value in Role.values]
