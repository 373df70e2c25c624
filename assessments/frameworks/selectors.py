"""Reads about frameworks."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Count, Field
from django.utils.text import capfirst

from assessments.frameworks.models import Criterion, Framework, FrameworkStatus
from assessments.frameworks.services import CRITERION_FIELDS
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


def criterion_field_label(name: str) -> str:
    """A criterion field as people read it ("Maximum evidence age (days)"), from the model's verbose name."""
    field = Criterion._meta.get_field(name)
    return str(capfirst(field.verbose_name if isinstance(field, Field) else name))


@dataclass(frozen=True)
class CriterionChange:
    code: str
    title: str
    fields: list[str]  # the changed fields' names

    @property
    def labels(self) -> list[str]:
        return [criterion_field_label(name) for name in self.fields]


@dataclass(frozen=True)
class FrameworkDiff:
    added: list[tuple[str, str]]
    removed: list[tuple[str, str]]
    changed: list[CriterionChange]

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


# Everything an editor can change, except the code that matches criteria and their order.
COMPARED_FIELDS = tuple(f for f in CRITERION_FIELDS if f not in {"code", "order"})


def framework_diff(*, old: Framework, new: Framework) -> FrameworkDiff:
    """Criteria added, removed and changed between two versions, matched by code."""
    before = {c.code: c for c in old.criteria.select_related("gap")}
    after = {c.code: c for c in new.criteria.select_related("gap")}
    changed = []
    for code in sorted(before.keys() & after.keys()):
        fields = [f for f in COMPARED_FIELDS if getattr(before[code], f) != getattr(after[code], f)]
        if before[code].gap.key != after[code].gap.key:
            fields.append("gap")
        if fields:
            changed.append(CriterionChange(code=code, title=after[code].title, fields=fields))
    return FrameworkDiff(
        added=[(code, after[code].title) for code in sorted(after.keys() - before.keys())],
        removed=[(code, before[code].title) for code in sorted(before.keys() - after.keys())],
        changed=changed,
    )


def frameworks_for_organisation(*, organisation: Organisation) -> list[Framework]:
    return list(
        Framework.objects.filter(organisation=organisation)
        .annotate(criteria_count=Count("criteria"))
        .order_by("name", "-version")
    )
