"""Writes to frameworks. A published framework is immutable: every edit goes through
``_ensure_draft`` and an attempt on a published or retired version raises."""

from __future__ import annotations

from typing import TypedDict, Unpack

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from assessments.audit.context import Actor
from assessments.audit.services import audit_record, diff_fields, snapshot
from assessments.frameworks.loader import FrameworkSpec
from assessments.frameworks.models import (
    Criterion,
    Framework,
    FrameworkStatus,
    Gap,
    RegulatoryMapping,
    RiskTier,
)
from assessments.model_update import model_update
from assessments.organisations.models import Organisation
from assessments.organisations.permissions import can_administer, require, require_member


class FrameworkImmutableError(ValidationError):
    """Raised on any attempt to change a framework that is no longer a draft."""


class FrameworkDraftExistsError(ValidationError):
    """A draft of this framework is already open; a second one would compete with it."""

    def __init__(self, draft: Framework) -> None:
        self.draft = draft
        super().__init__(
            f"{draft.name} v{draft.version} is already a draft. Edit or publish it instead of starting another copy.",
            code="draft_exists",
        )


class GapFields(TypedDict, total=False):
    """What an editor may change on a gap (its key and position are fixed)."""

    name: str
    weight: int
    description: str


class CriterionFields(TypedDict, total=False):
    """What an editor may set on a criterion; the model's validation says which are required."""

    code: str
    title: str
    guidance: str
    cost_if_missing: str
    severity_minimal: str
    severity_limited: str
    severity_high: str
    evidence_expected: str
    check_kind: str
    preflight_evidence: str
    max_evidence_age_days: int
    applies_to_minimal: bool
    applies_to_limited: bool
    applies_to_high: bool
    order: int


# The same names as plain tuples, in the order declared, for snapshots, copies and diffs.
GAP_FIELDS: tuple[str, ...] = tuple(GapFields.__annotations__)
CRITERION_FIELDS: tuple[str, ...] = tuple(CriterionFields.__annotations__)


def _require_admin(actor: Actor, organisation_id: int) -> None:
    roles = require_member(actor=actor, organisation=organisation_id)
    require(can_administer(roles), "Only administrators manage frameworks.")


def _ensure_draft(framework: Framework) -> None:
    framework.refresh_from_db(fields=["status"])
    if framework.status != FrameworkStatus.DRAFT:
        raise FrameworkImmutableError(
            f"{framework} is {framework.get_status_display().lower()}; copy it to a new draft to change it."
        )


def _spec_create(
    *, organisation: Organisation, spec: FrameworkSpec, version: int, based_on: Framework | None
) -> Framework:
    framework = Framework.objects.create(
        organisation=organisation, name=spec.name, version=version, description=spec.description, based_on=based_on
    )
    mappings: list[RegulatoryMapping] = []
    for gap_spec in spec.gaps:
        gap = Gap.objects.create(
            framework=framework,
            key=gap_spec.key,
            name=gap_spec.name,
            order=gap_spec.order,
            weight=gap_spec.weight,
            description=gap_spec.description,
        )
        for position, c in enumerate(gap_spec.criteria, start=1):
            criterion = Criterion.objects.create(
                framework=framework,
                gap=gap,
                code=c.code,
                order=position,
                title=c.title,
                guidance=c.guidance,
                cost_if_missing=c.cost_if_missing,
                evidence_expected=c.evidence_expected,
                check_kind=c.check_kind,
                preflight_evidence=c.preflight_evidence,
                max_evidence_age_days=c.max_evidence_age_days,
                **{f"severity_{tier}": c.severity_by_tier.get(tier, "") for tier in RiskTier.values},
                **{f"applies_to_{tier}": tier in c.severity_by_tier for tier in RiskTier.values},
            )
            mappings.extend(
                RegulatoryMapping(
                    criterion=criterion,
                    scheme=m.scheme,
                    reference=m.reference,
                    title=m.title,
                    obligation_from=m.obligation_from,
                )
                for m in c.mappings
            )
    RegulatoryMapping.objects.bulk_create(mappings)
    return framework


def _signature(framework: Framework) -> set[tuple[str, str, tuple[tuple[str, str], ...]]]:
    """What makes two loads of one version the same: each criterion's code, title and severities."""
    return {
        (c.code, c.title, tuple(sorted(c.severity_by_tier.items())))
        for c in framework.criteria.only(
            "code", "title", *(f"severity_{t}" for t in RiskTier.values), *(f"applies_to_{t}" for t in RiskTier.values)
        )
    }


def _spec_signature(spec: FrameworkSpec) -> set[tuple[str, str, tuple[tuple[str, str], ...]]]:
    return {(c.code, c.title, tuple(sorted(c.severity_by_tier.items()))) for g in spec.gaps for c in g.criteria}


@transaction.atomic
def framework_load(*, organisation: Organisation, spec: FrameworkSpec, actor: Actor, publish: bool = True) -> Framework:
    """Load a validated framework file into ``organisation``.

    Idempotent: loading the same name and version again returns the existing
    framework and writes nothing; a file that claims a loaded version but whose criteria
    differ from it is refused (a version never changes once loaded). The version number in the file is kept. A file that
    continues a framework the organisation already has (same name, a higher version)
    becomes its next version, exactly as a published draft would: it is based on the
    newest earlier version, and publishing it retires the version it replaces, which
    stays on record unchanged with every assessment made against it.
    """
    _require_admin(actor, organisation.pk)
    # Serialise loads and copies per organisation (they pick version numbers and retire versions).
    Organisation.objects.select_for_update().filter(pk=organisation.pk).first()
    same_name = Framework.objects.filter(organisation=organisation, name=spec.name)
    existing = same_name.filter(version=spec.version).first()
    if existing is not None:
        if _signature(existing) != _spec_signature(spec):
            raise ValidationError(
                f"{existing} is already loaded and its criteria differ from this file's; a version never "
                "changes once loaded, so give the file the next version number.",
                code="version_taken",
            )
        return existing
    based_on = same_name.filter(version__lt=spec.version).order_by("-version").first()
    framework = _spec_create(organisation=organisation, spec=spec, version=spec.version, based_on=based_on)
    if publish:
        newer = same_name.filter(version__gt=spec.version, status=FrameworkStatus.PUBLISHED).exists()
        if not newer:
            same_name.filter(status=FrameworkStatus.PUBLISHED, version__lt=spec.version).update(
                status=FrameworkStatus.RETIRED
            )
        framework.status = FrameworkStatus.RETIRED if newer else FrameworkStatus.PUBLISHED
        framework.published_at = timezone.now()
        framework.save(update_fields=["status", "published_at"])
    audit_record(
        organisation=organisation,
        actor=actor,
        action="framework.loaded",
        object_type="framework",
        object_id=framework.pk,
        changes={
            "name": [None, framework.name],
            "version": [None, framework.version],
            "status": [None, framework.status],
            "criteria": [None, spec.criteria_count],
            **({"based_on": [None, f"{based_on.name} v{based_on.version}"]} if based_on else {}),
        },
    )
    return framework


@transaction.atomic
def framework_copy(*, framework: Framework, actor: Actor) -> Framework:
    """Copy a framework (usually a published one) into a new draft with the next version number."""
    _require_admin(actor, framework.organisation_id)
    # Serialise copies per organisation: two people pressing "Copy to new draft" at once
    # would otherwise both take the same next version number.
    Organisation.objects.select_for_update().filter(pk=framework.organisation_id).first()
    existing = (
        Framework.objects.filter(
            organisation_id=framework.organisation_id, name=framework.name, status=FrameworkStatus.DRAFT
        )
        .order_by("-version")
        .first()
    )
    if existing is not None:
        raise FrameworkDraftExistsError(existing)
    latest = Framework.objects.filter(organisation=framework.organisation, name=framework.name).aggregate(
        v=Max("version")
    )["v"]
    draft = Framework.objects.create(
        organisation=framework.organisation,
        name=framework.name,
        version=(latest or 0) + 1,
        description=framework.description,
        based_on=framework,
    )
    gap_map: dict[int, Gap] = {}
    for gap in framework.gaps.all():
        gap_map[gap.pk] = Gap.objects.create(
            framework=draft,
            key=gap.key,
            name=gap.name,
            order=gap.order,
            weight=gap.weight,
            description=gap.description,
        )
    mappings: list[RegulatoryMapping] = []
    for criterion in framework.criteria.prefetch_related("mappings"):
        copy = Criterion.objects.create(
            framework=draft,
            gap=gap_map[criterion.gap_id],
            **{name: getattr(criterion, name) for name in CRITERION_FIELDS},
        )
        mappings.extend(
            RegulatoryMapping(
                criterion=copy,
                scheme=m.scheme,
                reference=m.reference,
                title=m.title,
                obligation_from=m.obligation_from,
            )
            for m in criterion.mappings.all()
        )
    RegulatoryMapping.objects.bulk_create(mappings)
    audit_record(
        organisation=framework.organisation,
        actor=actor,
        action="framework.copied",
        object_type="framework",
        object_id=draft.pk,
        changes={"based_on": [None, framework.pk], "version": [None, draft.version]},
    )
    return draft


@transaction.atomic
def framework_publish(*, framework: Framework, actor: Actor) -> Framework:
    """Publish a draft. From here on it cannot change; the previous published version is retired."""
    _require_admin(actor, framework.organisation_id)
    _ensure_draft(framework)
    if not framework.criteria.exists():
        raise ValidationError("A framework without criteria cannot be published.")
    now = timezone.now()
    Framework.objects.filter(
        organisation=framework.organisation, name=framework.name, status=FrameworkStatus.PUBLISHED
    ).update(status=FrameworkStatus.RETIRED)
    framework.status = FrameworkStatus.PUBLISHED
    framework.published_at = now
    framework.save(update_fields=["status", "published_at"])
    audit_record(
        organisation=framework.organisation,
        actor=actor,
        action="framework.published",
        object_type="framework",
        object_id=framework.pk,
        changes={"status": [FrameworkStatus.DRAFT, FrameworkStatus.PUBLISHED]},
    )
    return framework


@transaction.atomic
def gap_update(*, gap: Gap, actor: Actor, **changes: Unpack[GapFields]) -> Gap:
    """Change a draft's gap. The event lists what changed; a save that changes nothing records nothing."""
    _require_admin(actor, gap.framework.organisation_id)
    _ensure_draft(gap.framework)
    before = snapshot(gap, GAP_FIELDS)
    gap, changed = model_update(instance=gap, fields=GAP_FIELDS, data=changes)
    if changed:
        audit_record(
            organisation=gap.framework.organisation,
            actor=actor,
            action="gap.updated",
            object_type="gap",
            object_id=gap.pk,
            changes=diff_fields(before=before, after=snapshot(gap, GAP_FIELDS)),
        )
    return gap


@transaction.atomic
def criterion_create(*, gap: Gap, actor: Actor, **fields: Unpack[CriterionFields]) -> Criterion:
    """Add a criterion to a draft's gap."""
    _require_admin(actor, gap.framework.organisation_id)
    _ensure_draft(gap.framework)
    criterion = Criterion(framework=gap.framework, gap=gap, **fields)
    criterion.full_clean()
    criterion.save()
    audit_record(
        organisation=gap.framework.organisation,
        actor=actor,
        action="criterion.created",
        object_type="criterion",
        object_id=criterion.pk,
        changes=diff_fields(before={}, after=snapshot(criterion, CRITERION_FIELDS)),
    )
    return criterion


@transaction.atomic
def criterion_update(*, criterion: Criterion, actor: Actor, **changes: Unpack[CriterionFields]) -> Criterion:
    """Change a draft's criterion. The event lists what changed; a save that changes nothing records nothing."""
    _require_admin(actor, criterion.framework.organisation_id)
    _ensure_draft(criterion.framework)
    before = snapshot(criterion, CRITERION_FIELDS)
    criterion, changed = model_update(instance=criterion, fields=CRITERION_FIELDS, data=changes)
    if changed:
        audit_record(
            organisation=criterion.framework.organisation,
            actor=actor,
            action="criterion.updated",
            object_type="criterion",
            object_id=criterion.pk,
            changes=diff_fields(before=before, after=snapshot(criterion, CRITERION_FIELDS)),
        )
    return criterion


@transaction.atomic
def criterion_delete(*, criterion: Criterion, actor: Actor) -> None:
    _require_admin(actor, criterion.framework.organisation_id)
    _ensure_draft(criterion.framework)
    organisation = criterion.framework.organisation
    before = snapshot(criterion, CRITERION_FIELDS)
    criterion_id = criterion.pk
    criterion.delete()
    audit_record(
        organisation=organisation,
        actor=actor,
        action="criterion.deleted",
        object_type="criterion",
        object_id=criterion_id,
        changes=diff_fields(before=before, after={}),
    )
