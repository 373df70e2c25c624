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


# The four roles whose sign-off makes a pilot ready.
REVIEW_ROLES: tuple[Role, ...] = (Role.DELIVERY, Role.SECURITY, Role.RISK, Role.PRODUCT)


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
