"""Framework lifecycle: copy to draft, edit, publish, and immutability once published."""

from __future__ import annotations

import pytest

from assessments.frameworks.models import Criterion, Framework, FrameworkStatus, RegulatoryMapping
from assessments.frameworks.services import (
    FrameworkImmutableError,
    criterion_create,
    criterion_delete,
    criterion_update,
    framework_copy,
    framework_publish,
    gap_update,
)


def test_a_published_framework_refuses_every_edit(framework, system_actor):
    criterion = framework.criteria.first()
    gap = framework.gaps.first()
    snapshot = list(Criterion.objects.filter(framework=framework).values_list("code", "title", "severity_high"))
    with pytest.raises(FrameworkImmutableError):
        criterion_update(criterion=criterion, actor=system_actor, title="Changed")
    with pytest.raises(FrameworkImmutableError):
        criterion_delete(criterion=criterion, actor=system_actor)
    with pytest.raises(FrameworkImmutableError):
        gap_update(gap=gap, actor=system_actor, weight=1)
    with pytest.raises(FrameworkImmutableError):
        criterion_create(
            gap=gap,
            actor=system_actor,
            code="EV-99",
            title="New",
            guidance="g",
            cost_if_missing="c",
            severity_minimal="minor",
            severity_limited="minor",
            severity_high="minor",
            evidence_expected="e",
        )
    with pytest.raises(FrameworkImmutableError):
        framework_publish(framework=framework, actor=system_actor)
    assert list(Criterion.objects.filter(framework=framework).values_list("code", "title", "severity_high")) == snapshot


def test_a_copy_is_an_editable_draft_with_the_next_version(framework, system_actor):
    draft = framework_copy(framework=framework, actor=system_actor)
    assert draft.status == FrameworkStatus.DRAFT
    assert draft.version == framework.version + 1
    assert draft.based_on == framework
    assert draft.criteria.count() == framework.criteria.count()
    assert RegulatoryMapping.objects.filter(criterion__framework=draft).count() == (
        RegulatoryMapping.objects.filter(criterion__framework=framework).count()
    )
    criterion = draft.criteria.get(code="EV-01")
    criterion_update(criterion=criterion, actor=system_actor, title="A stricter golden set")
    assert framework.criteria.get(code="EV-01").title != "A stricter golden set"


def test_publishing_a_draft_retires_the_previous_version_and_freezes_the_draft(framework, system_actor):
    draft = framework_copy(framework=framework, actor=system_actor)
    framework_publish(framework=draft, actor=system_actor)
    framework.refresh_from_db()
    draft.refresh_from_db()
    assert framework.status == FrameworkStatus.RETIRED
    assert draft.status == FrameworkStatus.PUBLISHED
    assert draft.published_at is not None
    with pytest.raises(FrameworkImmutableError):
        criterion_update(criterion=draft.criteria.first(), actor=system_actor, title="Too late")


def test_a_stale_in_memory_copy_cannot_sneak_an_edit_past_publication(framework, system_actor):
    draft = framework_copy(framework=framework, actor=system_actor)
    stale = Framework.objects.get(pk=draft.pk)
    framework_publish(framework=draft, actor=system_actor)
    criterion = stale.criteria.first()
    criterion.framework = stale  # still says "draft" in memory
    with pytest.raises(FrameworkImmutableError):
        criterion_update(criterion=criterion, actor=system_actor, title="Sneaky")


def test_the_diff_names_changed_fields_by_their_labels(framework, system_actor):
    from assessments.frameworks.selectors import framework_diff

    draft = framework_copy(framework=framework, actor=system_actor)
    criterion_update(
        criterion=draft.criteria.get(code="EV-01"),
        actor=system_actor,
        max_evidence_age_days=7,
        check_kind="eval_pass_rate",
    )
    (change,) = framework_diff(old=framework, new=draft).changed
    assert change.fields == ["check_kind", "max_evidence_age_days"]
    assert change.labels == ["Automated check", "Maximum evidence age (days)"]


def test_an_update_records_what_changed_and_a_save_without_changes_records_nothing(framework, system_actor):
    from assessments.audit.models import AuditEvent

    draft = framework_copy(framework=framework, actor=system_actor)
    criterion = draft.criteria.get(code="EV-01")
    events = AuditEvent.objects.count()
    criterion_update(criterion=criterion, actor=system_actor, title=criterion.title, max_evidence_age_days=30)
    event = AuditEvent.objects.filter(organisation=framework.organisation).latest("sequence")
    assert (event.action, event.changes) == ("criterion.updated", {"max_evidence_age_days": [180, 30]})
    criterion_update(criterion=criterion, actor=system_actor, title=criterion.title, max_evidence_age_days=30)
    gap_update(gap=criterion.gap, actor=system_actor, weight=criterion.gap.weight)
    assert AuditEvent.objects.count() == events + 1
