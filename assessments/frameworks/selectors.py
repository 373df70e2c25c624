"""Reads about frameworks."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from assessments.frameworks.models import Framework, FrameworkStatus
from assessments.organisations.models import Organisation


def framework_current(*, organisation: Organisation) -> Framework:
    """The organisation's newest published framework: what new assessments use."""
    framework = (
        Framework.objects.filter(organisation=organisation, status=FrameworkStatus.PUBLISHED)
        .order_by("-published_at", "-version")
        .first()
    )
    if framework is None:
        raise ValidationError("This organisation has no published readiness framework yet.")
    return framework
