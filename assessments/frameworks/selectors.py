"""Reads about frameworks."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Count, Field
from django.utils.text import capfirst

from assessments.frameworks.models import Criterion, Framework, FrameworkStatus, RiskTier, Severity
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


# Fields the diff reports as one: a tier's severity and whether the criterion applies there.
TIER_FIELDS = frozenset({*(f"severity_{t}" for t in RiskTier.values), *(f"applies_to_{t}" for t in RiskTier.values)})
PSEUDO_LABELS = {"severity_by_tier": "Severity by risk tier", "mappings": "Regulatory mappings", "gap": "Gap"}


def criterion_field_label(name: str) -> str:
    """A criterion field as people read it ("Maximum evidence age (days)"), from the model's verbose name."""
    if name in PSEUDO_LABELS:
        return PSEUDO_LABELS[name]
    field = Criterion._meta.get_field(name)
    return str(capfirst(field.verbose_name if isinstance(field, Field) else name))


@dataclass(frozen=True)
class CriterionChange:
    code: str
    title: str
    fields: list[str]  # the changed fields' names ("severity_by_tier" and "mappings" stand for groups)
    details: tuple[str, ...] = ()  # what changed in the groups, in words

    @property
    def labels(self) -> list[str]:
        return [criterion_field_label(name) for name in self.fields]


def _severity_words(criterion: Criterion, tier: str) -> str:
    value = criterion.severity_for(tier)
    return Severity(value).label.lower() if value else "does not apply"


def _tier_details(old: Criterion, new: Criterion) -> str:
    moves = [
        f"{RiskTier(t).label.lower()} {_severity_words(old, t)} → {_severity_words(new, t)}"
        for t in RiskTier.values
        if old.severity_for(t) != new.severity_for(t)
    ]
    return "Severity by risk tier: " + ", ".join(moves)


def _mapping_keys(criterion: Criterion) -> dict[tuple[str, str], str]:
    return {(m.scheme, m.reference): f"{m.get_scheme_display()} {m.reference}" for m in criterion.mappings.all()}


def _mapping_details(old: dict[tuple[str, str], str], new: dict[tuple[str, str], str]) -> str:
    parts = []
    if added := [new[k] for k in sorted(new.keys() - old.keys())]:
        parts.append("added " + ", ".join(added))
    if removed := [old[k] for k in sorted(old.keys() - new.keys())]:
        parts.append("removed " + ", ".join(removed))
    return "Regulatory mappings: " + "; ".join(parts)


@dataclass(frozen=True)
class FrameworkDiff:
    added: list[tuple[str, str]]
    removed: list[tuple[str, str]]
    changed: list[CriterionChange]

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


# Everything an editor can change, except the code that matches criteria, their order and the
# per-tier fields (compared as one group).
COMPARED_FIELDS = tuple(f for f in CRITERION_FIELDS if f not in {"code", "order"} and f not in TIER_FIELDS)


def framework_diff(*, old: Framework, new: Framework) -> FrameworkDiff:
    """Criteria added, removed and changed between two versions, matched by code: the fields
    that changed, and in words how each tier's severity and the regulatory mappings moved."""
    before = {c.code: c for c in old.criteria.select_related("gap").prefetch_related("mappings")}
    after = {c.code: c for c in new.criteria.select_related("gap").prefetch_related("mappings")}
    changed = []
    for code in sorted(before.keys() & after.keys()):
        a, b = before[code], after[code]
        fields = [f for f in COMPARED_FIELDS if getattr(a, f) != getattr(b, f)]
        details: list[str] = []
        if a.severity_by_tier != b.severity_by_tier:
            fields.append("severity_by_tier")
            details.append(_tier_details(a, b))
        if a.gap.key != b.gap.key:
            fields.append("gap")
        old_maps, new_maps = _mapping_keys(a), _mapping_keys(b)
        if old_maps.keys() != new_maps.keys():
            fields.append("mappings")
            details.append(_mapping_details(old_maps, new_maps))
        if fields:
            changed.append(CriterionChange(code=code, title=b.title, fields=fields, details=tuple(details)))
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
