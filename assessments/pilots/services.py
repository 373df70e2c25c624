"""Writes to pilots, assessments, responses, stop conditions and manual evidence."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from pathlib import PurePath
from typing import Any, TypedDict, Unpack

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from assessments.audit.context import Actor
from assessments.audit.services import audit_record, created_changes, diff_fields, snapshot
from assessments.evidence.selectors import check_outcomes
from assessments.frameworks.models import Criterion, Framework, FrameworkStatus
from assessments.frameworks.scoring import Scorecard
from assessments.frameworks.selectors import framework_current
from assessments.model_update import model_update
from assessments.organisations.models import Organisation, Role
from assessments.organisations.permissions import (
    can_create_pilot,
    can_edit_pilot,
    can_edit_response,
    require,
    require_member,
)
from assessments.pilots.models import (
    Assessment,
    AssessmentStatus,
    Evidence,
    EvidenceKind,
    Pilot,
    Response,
    ResponseStatus,
    Stage,
    StopCondition,
    StopConditionStatus,
)
from assessments.pilots.scorecache import scores_refresh
from assessments.pilots.selectors import CheckOutcomes, scorecards
from assessments.reviews.models import GateOverride
from assessments.text import name_distinct_check, name_key, text_check


class PilotFields(TypedDict, total=False):
    """What a pilot's owners may set on its profile; the model's validation says which are required."""

    name: str
    description: str
    stage: str
    risk_tier: str
    data_sensitivity: str
    model_providers: str
    data_leaves_boundary: bool
    business_owner: User | None
    technical_owner: User | None
    oncall_contact: str
    value_metric_name: str
    value_metric_unit: str
    value_baseline: Decimal | None
    value_target: Decimal | None
    value_current: Decimal | None
    expected_monthly_volume: int | None
    cost_envelope_per_task: Decimal | None


class StopConditionFields(TypedDict, total=False):
    """What may be set on a stop condition (a new one starts armed unless told otherwise)."""

    condition: str
    metric: str
    comparator: str
    threshold: Decimal
    status: str


# The same names as plain tuples, in the order declared, for forms, snapshots and diffs.
PILOT_FIELDS: tuple[str, ...] = tuple(PilotFields.__annotations__)
STOP_FIELDS: tuple[str, ...] = tuple(StopConditionFields.__annotations__)
RESPONSE_FIELDS = ("status", "justification", "owner", "due_date")
# A stop condition that triggers pauses a pilot unless it is already stopped.
HALTED = frozenset({Stage.PAUSED, Stage.RETIRED})
logger = logging.getLogger(__name__)
# Closed assessments are a record: no answer or evidence changes once they are in these states.
CLOSED_STATUSES = frozenset({AssessmentStatus.SUPERSEDED})
EVIDENCE_FIELDS = (
    "kind",
    "file",
    "title",
    "url",
    "original_filename",
    "content_type",
    "size_bytes",
    "sha256",
    "note",
    "effective_date",
    "expires_on",
)


class AssessmentClosedError(ValidationError):
    """The assessment is closed (superseded): its answers and evidence are a record, not a draft."""

    def __init__(self, assessment: Assessment) -> None:
        super().__init__(
            f"This assessment of {assessment.pilot.name} was superseded by a newer framework version and is "
            "read-only. Open the pilot's current assessment to make changes.",
            code="closed",
        )


def _require_open(assessment: Assessment) -> None:
    # Re-read the status: a stale copy of the row may still say "draft" after a move.
    status = Assessment.objects.filter(pk=assessment.pk).values_list("status", flat=True).first()
    if status is None or status in CLOSED_STATUSES:
        raise AssessmentClosedError(assessment)


class ResponseConflictError(Exception):
    """Someone else saved the response first; ``current`` is what they saved."""

    def __init__(self, current: Response) -> None:
        self.current = current
        who = current.updated_by.get_username() if current.updated_by else "someone else"
        super().__init__(
            f"{who} changed {current.criterion.code} while you were editing "
            f"(now '{current.get_status_display()}'). Review their change and save again."
        )


def _unique_slug(organisation: Organisation, name: str) -> str:
    base = slugify(name)[:90] or "pilot"
    slug, n = base, 2
    while Pilot.objects.filter(organisation=organisation, slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def _open_assessment(*, pilot: Pilot, framework: Framework, target_date: dt.date | None) -> Assessment:
    assessment = Assessment.objects.create(pilot=pilot, framework=framework, target_date=target_date)
    Response.objects.bulk_create(
        Response(assessment=assessment, criterion=criterion) for criterion in framework.criteria.all()
    )
    return assessment


@transaction.atomic
def pilot_create(
    *, organisation: Organisation, actor: Actor, target_date: dt.date | None = None, **fields: Unpack[PilotFields]
) -> Pilot:
    """Create a pilot and open its assessment against the current published framework."""
    unknown = set(fields) - set(PILOT_FIELDS)
    if unknown:
        raise ValidationError(f"Pilots have no field {', '.join(sorted(unknown))}.")
    roles = require_member(actor=actor, organisation=organisation)
    require(can_create_pilot(roles), "Only pilot owners and administrators create pilots.")
    text_check(str(fields.get("name", "")), subject="The name", field="name")
    # Lock the organisation so two people cannot create lookalike names at the same moment.
    Organisation.objects.select_for_update().get(pk=organisation.pk)
    name_distinct_check(
        str(fields.get("name", "")),
        Pilot.objects.filter(organisation=organisation).values_list("name", flat=True),
        kind="pilot",
        where=organisation.name,
    )
    framework = framework_current(organisation=organisation)
    pilot = Pilot(organisation=organisation, slug=_unique_slug(organisation, fields.get("name", "")), **fields)
    pilot.full_clean()
    pilot.save()
    assessment = _open_assessment(pilot=pilot, framework=framework, target_date=target_date)
    scores_refresh(assessment_ids=[assessment.pk], today=timezone.localdate())
    changes = created_changes(pilot, ("slug", *PILOT_FIELDS))
    changes["assessment"] = [None, assessment.pk]
    changes["framework"] = [None, f"{framework.name} v{framework.version}"]
    audit_record(
        organisation=organisation,
        actor=actor,
        action="pilot.created",
        object_type="pilot",
        object_id=pilot.pk,
        pilot_id=pilot.pk,
        changes=changes,
    )
    return pilot


@transaction.atomic
def pilot_update(
    *, pilot: Pilot, actor: Actor, override_justification: str = "", **changes: Unpack[PilotFields]
) -> Pilot:
    """Change a pilot's profile (including its stage: pause, retire, promote).

    The event lists what changed; a save that changes nothing records nothing. Scores
    are recomputed when the risk tier or an owner changed: the tier decides which criteria
    apply and how severe each is, and a review signed only by the pilot's owners holds no
    evidence.

    Moving to production needs the readiness gate (``assessments.reviews``): criteria met
    with current evidence, no failing check, the four roles signed what is there now, no
    overdue condition. An administrator may override a closed gate only with a written
    ``override_justification``, which goes into the same audit event and onto the pilot page.
    """
    roles = require_member(actor=actor, organisation=pilot.organisation_id)
    require(can_edit_pilot(roles, actor=actor, pilot=pilot), "Only this pilot's owners and administrators edit it.")
    override = _production_gate(pilot, actor, roles, changes.get("stage"), override_justification.strip())
    new_name = str(changes.get("name", pilot.name))
    if new_name != pilot.name:
        text_check(new_name, subject="The name", field="name")
    # Only a changed name is compared, so a pilot already sharing a name (from before the rule) stays editable.
    if name_key(new_name) != name_key(pilot.name):
        Organisation.objects.select_for_update().get(pk=pilot.organisation_id)
        name_distinct_check(
            new_name,
            Pilot.objects.filter(organisation_id=pilot.organisation_id)
            .exclude(pk=pilot.pk)
            .values_list("name", flat=True),
            kind="pilot",
            where=pilot.organisation.name,
        )
    before = snapshot(pilot, PILOT_FIELDS)
    pilot, changed = model_update(instance=pilot, fields=PILOT_FIELDS, data=changes)
    if not changed:
        return pilot
    # The tier sets each criterion's severity; the owners decide whether a signed review
    # counts as evidence Preflight holds (a role signed only by owners does not).
    if {"risk_tier", "technical_owner", "business_owner"} & set(changed):
        _rescore_pilot(pilot)
    audited = diff_fields(before=before, after=snapshot(pilot, PILOT_FIELDS))
    if override is not None:
        override.save()
        audited["gate_override"] = [None, override.justification]
        audited["gate_reasons"] = [None, override.gate_reasons]
    audit_record(
        organisation=pilot.organisation,
        actor=actor,
        action="pilot.updated",
        object_type="pilot",
        object_id=pilot.pk,
        pilot_id=pilot.pk,
        changes=audited,
    )
    return pilot


def _production_gate(
    pilot: Pilot, actor: Actor, roles: set[str], stage: str | None, justification: str
) -> GateOverride | None:
    """Refuse a move to production the gate does not allow; an administrator's written
    justification overrides it (returned unsaved, for the caller to keep with its event)."""
    if stage != Stage.PRODUCTION or pilot.stage == Stage.PRODUCTION:
        if justification:
            raise ValidationError({"override_justification": "Only a move to production can override the gate."})
        return None
    from assessments.reviews.selectors import readiness_gate  # reviews reads pilots; not the other way at import

    assessment = pilot.assessments.exclude(status=AssessmentStatus.SUPERSEDED).select_related("pilot").first()
    if assessment is None:
        raise ValidationError({"stage": "This pilot has no open assessment, so it cannot be ready for production."})
    card = scorecards(assessment_ids=[assessment.pk], today=timezone.localdate())[assessment.pk]
    gate = readiness_gate(assessment=assessment, card=card)
    if gate.ready:
        if justification:
            raise ValidationError({"override_justification": "The gate is open: no override is needed."})
        return None
    if not justification:
        raise ValidationError(
            {"stage": "Not ready for production: " + "; ".join(gate.reason_texts[:5])
             + (f" (and {len(gate.reasons) - 5} more)" if len(gate.reasons) > 5 else "")}
        )  # fmt: skip
    require(Role.ADMIN in roles, "Only an administrator may override the readiness gate.")
    text_check(justification, multiline=True, subject="The justification", field="override_justification")
    if len(justification) < 20:
        raise ValidationError(
            {"override_justification": "Write the justification out in full (at least 20 characters)."}
        )
    assert actor.user_pk is not None  # administrators are people
    return GateOverride(
        pilot=pilot,
        assessment=assessment,
        actor_id=actor.user_pk,
        stage_from=pilot.stage,
        stage_to=Stage.PRODUCTION,
        justification=justification,
        gate_reasons=gate.reason_texts,
    )


@transaction.atomic
def stop_condition_add(*, pilot: Pilot, actor: Actor, **fields: Unpack[StopConditionFields]) -> StopCondition:
    """Write down a condition under which the pilot is paused."""
    _require_pilot_editor(actor, pilot)
    stop = StopCondition(pilot=pilot, **fields)
    stop.full_clean()
    stop.save()
    audit_record(
        organisation=pilot.organisation,
        actor=actor,
        action="stop_condition.added",
        object_type="stop_condition",
        object_id=stop.pk,
        pilot_id=pilot.pk,
        changes=created_changes(stop, STOP_FIELDS),
    )
    return stop


@transaction.atomic
def stop_condition_update(
    *, stop: StopCondition, actor: Actor, **changes: Unpack[StopConditionFields]
) -> StopCondition:
    """Change a stop condition (its wording, threshold or status: armed, triggered, retired).

    The event lists what changed; a save that changes nothing records nothing.
    """
    _require_pilot_editor(actor, stop.pilot)
    before = snapshot(stop, STOP_FIELDS)
    stop, changed = model_update(instance=stop, fields=STOP_FIELDS, data=changes)
    if changed:
        audited = diff_fields(before=before, after=snapshot(stop, STOP_FIELDS))
        pilot = stop.pilot
        if "status" in changed and stop.status == StopConditionStatus.TRIGGERED and pilot.stage not in HALTED:
            # A stop condition that triggers pauses the programme, in the same change and event.
            audited["pilot_stage"] = [pilot.stage, Stage.PAUSED]
            pilot.stage = Stage.PAUSED
            pilot.save(update_fields=["stage", "updated_at"])
            transaction.on_commit(partial(_stop_triggered_notify, stop_id=stop.pk), robust=True)
        audit_record(
            organisation=stop.pilot.organisation,
            actor=actor,
            action="stop_condition.updated",
            object_type="stop_condition",
            object_id=stop.pk,
            pilot_id=stop.pilot_id,
            changes=audited,
        )
    return stop


def _stop_triggered_notify(*, stop_id: int) -> None:
    """After commit: tell the pilot's owners it was paused by a stop condition."""
    stop = StopCondition.objects.select_related("pilot__technical_owner", "pilot__business_owner").get(pk=stop_id)
    pilot = stop.pilot
    recipients = sorted({u.email for u in (pilot.technical_owner, pilot.business_owner) if u is not None and u.email})
    if not recipients:
        return
    subject = f"[Preflight] {pilot.name} is paused: a stop condition triggered"
    body = (
        f"The stop condition “{stop.condition}” ({stop.metric} {stop.get_comparator_display()} "
        f"{stop.threshold}) triggered, so {pilot.name} has been moved to paused.\n\n"
        f"{reverse('pilot', args=[pilot.pk])}\n"
    )
    try:
        send_mail(subject, body, None, recipients)
    except OSError as exc:
        logger.warning("could not mail the pause of pilot %s: %s", pilot.pk, exc)


def _rescore_pilot(pilot: Pilot) -> None:
    ids = list(pilot.assessments.exclude(status=AssessmentStatus.SUPERSEDED).values_list("pk", flat=True))
    scores_refresh(assessment_ids=ids, today=timezone.localdate())


def _require_pilot_editor(actor: Actor, pilot: Pilot) -> None:
    roles = require_member(actor=actor, organisation=pilot.organisation_id)
    require(can_edit_pilot(roles, actor=actor, pilot=pilot), "Only this pilot's owners and administrators edit it.")


def _require_response_editor(actor: Actor, response: Response) -> None:
    pilot = response.assessment.pilot
    roles = require_member(actor=actor, organisation=pilot.organisation_id)
    require(
        can_edit_response(roles, actor=actor, pilot=pilot, response_owner_id=response.owner_id),
        "Only the pilot's owners and the person named owner of this criterion edit it.",
    )


def _validate_response_fields(fields: dict[str, Any]) -> None:
    status = fields.get("status")
    if status is not None and status not in ResponseStatus.values:
        raise ValidationError({"status": f"'{status}' is not a response status."})
    if status == ResponseStatus.NOT_APPLICABLE and not str(fields.get("justification", "")).strip():
        raise ValidationError({"justification": "Say why this criterion does not apply."})


@dataclass(frozen=True)
class ResponseUpdate:
    """A saved response with what a page shows next to it, computed once during the save."""

    response: Response
    card: Scorecard
    still_editable: bool  # false when the editor just handed the criterion to someone else
    checks: CheckOutcomes  # the pilot's automated checks, read once for the scores and the row


@transaction.atomic
def response_update(*, response: Response, actor: Actor, expected_version: int, **fields: Any) -> ResponseUpdate:
    """Save the given fields of a response if nobody else saved it since ``expected_version`` was read.

    The compare-and-set on ``version`` (and on the assessment still being open) means a
    concurrent edit raises ResponseConflictError instead of silently overwriting the other
    person's work. Fields not passed keep their value. ``response`` is updated in memory,
    and the scorecard is computed once and returned, so callers re-read nothing.
    """
    unknown = set(fields) - set(RESPONSE_FIELDS)
    if unknown:
        raise ValidationError(f"Responses have no field {', '.join(sorted(unknown))}.")
    if "justification" in fields:
        fields["justification"] = str(fields["justification"]).strip()
    before = snapshot(response, RESPONSE_FIELDS)
    _validate_response_fields({**before, **fields})
    pilot = response.assessment.pilot
    roles = require_member(actor=actor, organisation=pilot.organisation_id)
    require(
        can_edit_response(roles, actor=actor, pilot=pilot, response_owner_id=response.owner_id),
        "Only the pilot's owners and the person named owner of this criterion edit it.",
    )
    db_fields = {k: v for k, v in fields.items() if k != "owner"}
    if "owner" in fields:
        db_fields["owner_id"] = fields["owner"].pk if fields["owner"] is not None else None
    now = timezone.now()
    updated = (
        Response.objects.filter(pk=response.pk, version=expected_version)
        .exclude(assessment__status__in=CLOSED_STATUSES)
        .update(**db_fields, version=F("version") + 1, updated_by_id=actor.user_pk, updated_at=now)
    )
    if updated != 1:
        _require_open(response.assessment)
        current = Response.objects.select_related("criterion", "updated_by").get(pk=response.pk)
        raise ResponseConflictError(current)
    for name, value in db_fields.items():
        setattr(response, name, value)
    if "owner" in fields:
        response.owner = fields["owner"]
    response.version, response.updated_by_id, response.updated_at = expected_version + 1, actor.user_pk, now
    checks = check_outcomes(pilot_ids=[pilot.pk])
    cards = scores_refresh(assessment_ids=[response.assessment_id], today=timezone.localdate(), checks=checks)
    audit_record(
        organisation=pilot.organisation,
        actor=actor,
        action="response.updated",
        object_type="response",
        object_id=response.pk,
        pilot_id=pilot.pk,
        changes={
            "criterion": [response.criterion.code, response.criterion.code],
            **diff_fields(before=before, after=snapshot(response, RESPONSE_FIELDS)),
        },
    )
    return ResponseUpdate(
        response=response,
        card=cards[response.assessment_id],
        still_editable=can_edit_response(roles, actor=actor, pilot=pilot, response_owner_id=response.owner_id),
        checks=checks,
    )


@dataclass(frozen=True)
class UploadedEvidenceFile:
    """A file already checked by the upload validator (size, type by content)."""

    name: str
    content: bytes
    content_type: str


@transaction.atomic
def evidence_add(
    *,
    response: Response,
    actor: Actor,
    kind: str,
    title: str,
    effective_date: dt.date,
    expires_on: dt.date | None = None,
    url: str = "",
    note: str = "",
    upload: UploadedEvidenceFile | None = None,
) -> Evidence:
    """Attach manual evidence. Files are stored under a random name with their SHA-256."""
    if actor.user_pk is None:
        raise ValidationError("Manual evidence is added by a person.")
    _require_response_editor(actor, response)
    _require_open(response.assessment)
    evidence = Evidence(
        response=response,
        kind=kind,
        title=title.strip(),
        url=url.strip(),
        note=note.strip(),
        effective_date=effective_date,
        expires_on=expires_on,
        added_by_id=actor.user_pk,
    )
    if kind == EvidenceKind.FILE:
        if upload is None:
            raise ValidationError({"file": "Choose a file to upload."})
        evidence.sha256 = hashlib.sha256(upload.content).hexdigest()
        evidence.size_bytes = len(upload.content)
        evidence.original_filename = upload.name[:255]
        evidence.content_type = upload.content_type
        # A placeholder name passes the "file has a hash" rule; the bytes are written only
        # once everything else has been checked.
        stored_name = _random_name(upload.name)
        evidence.file.name = stored_name
    if expires_on is not None and expires_on < effective_date:
        raise ValidationError({"expires_on": "Expiry must be on or after the effective date."})
    evidence.full_clean(exclude=["file"])
    stored: str | None = None
    try:
        if upload is not None and kind == EvidenceKind.FILE:
            evidence.file.save(stored_name, ContentFile(upload.content), save=False)
            stored = evidence.file.name
        evidence.save()
        scores_refresh(assessment_ids=[response.assessment_id], today=timezone.localdate())
        audit_record(
            organisation=response.assessment.pilot.organisation,
            actor=actor,
            action="evidence.added",
            object_type="evidence",
            object_id=evidence.pk,
            pilot_id=response.assessment.pilot_id,
            changes={"criterion": [None, response.criterion.code], **created_changes(evidence, EVIDENCE_FIELDS)},
        )
    except BaseException:
        # The row and its event roll back with this exception; the bytes must go with them.
        # (Callers do not wrap this service in a wider transaction, so its rollback is the one.)
        if stored is not None:
            default_storage.delete(stored)
        raise
    return evidence


def _random_name(original: str) -> str:
    suffix = PurePath(original).suffix.lower()[:10]
    return f"{secrets.token_hex(16)}{suffix if suffix.isascii() else ''}"


@transaction.atomic
def evidence_remove(*, evidence: Evidence, actor: Actor) -> None:
    """Delete evidence. The stored file is kept: the audit chain still references its hash."""
    response = evidence.response
    _require_response_editor(actor, response)
    _require_open(response.assessment)
    before = snapshot(evidence, EVIDENCE_FIELDS)
    evidence_id = evidence.pk
    evidence.delete()
    scores_refresh(assessment_ids=[response.assessment_id], today=timezone.localdate())
    audit_record(
        organisation=response.assessment.pilot.organisation,
        actor=actor,
        action="evidence.removed",
        object_type="evidence",
        object_id=evidence_id,
        pilot_id=response.assessment.pilot_id,
        changes={"criterion": [response.criterion.code, None], **diff_fields(before=before, after={})},
    )


@transaction.atomic
def assessment_move(*, assessment: Assessment, framework: Framework, actor: Actor) -> Assessment:
    """Move a pilot's open assessment to a newer published version of its framework.

    The old assessment is kept, marked superseded. Answers and manual evidence are
    carried over by criterion code (evidence rows point at the same stored files and
    keep the time they were first added); new criteria start unanswered; criteria that
    no longer exist are dropped from the new assessment but stay on record in the old
    one. ``assessment_move_preview`` (selectors) shows the same split before the move.
    """
    pilot = assessment.pilot
    _require_pilot_editor(actor, pilot)
    if framework.organisation_id != pilot.organisation_id:
        raise ValidationError("That framework belongs to another organisation.")
    if framework.status != FrameworkStatus.PUBLISHED:
        raise ValidationError("Only a published framework version can be assessed against.")
    if framework.pk == assessment.framework_id:
        raise ValidationError("This assessment already uses that framework version.")
    # Compare-and-set: a double submit or a stale copy finds the row already superseded.
    claimed = (
        Assessment.objects.filter(pk=assessment.pk)
        .exclude(status=AssessmentStatus.SUPERSEDED)
        .update(status=AssessmentStatus.SUPERSEDED)
    )
    if claimed != 1:
        raise ValidationError("This assessment has already been moved to another framework version.")
    new = _open_assessment(pilot=pilot, framework=framework, target_date=assessment.target_date)
    old_responses = {
        r.criterion.code: r for r in assessment.responses.select_related("criterion").prefetch_related("evidence")
    }
    carried = 0
    copies: list[Evidence] = []
    for response in new.responses.select_related("criterion"):
        old = old_responses.get(response.criterion.code)
        if old is None:
            continue
        carried += 1
        # The answer keeps who gave it: the mover carries it, the answerer still wrote it.
        Response.objects.filter(pk=response.pk).update(
            status=old.status,
            justification=old.justification,
            owner_id=old.owner_id,
            due_date=old.due_date,
            updated_by_id=old.updated_by_id,
        )
        copies.extend(_evidence_copy(item, response=response) for item in old.evidence.all())
    Evidence.objects.bulk_create(copies)
    repointed, unmatched = _checks_follow(pilot=pilot, framework=framework)
    scores_refresh(assessment_ids=[new.pk], today=timezone.localdate())
    old_framework = assessment.framework
    audit_record(
        organisation=pilot.organisation,
        actor=actor,
        # The action keeps the name it was first recorded under, so the trail reads as one
        # series (events already in the hash chain cannot be renamed).
        action="assessment.migrated",
        object_type="assessment",
        object_id=new.pk,
        pilot_id=pilot.pk,
        changes={
            "framework": [f"{old_framework.name} v{old_framework.version}", f"{framework.name} v{framework.version}"],
            "assessment": [assessment.pk, new.pk],
            "carried_over": [None, carried],
            "new_criteria": [None, new.responses.count() - carried],
            "dropped_criteria": [None, len(old_responses) - carried],
            "evidence_copied": [None, len(copies)],
            "checks_moved": [None, repointed],
            "checks_left_behind": [None, unmatched],
        },
    )
    return new


def _checks_follow(*, pilot: Pilot, framework: Framework) -> tuple[int, int]:
    """Point the pilot's checks at the same-coded criteria of the new version.

    A check whose criterion code no longer exists keeps its old criterion (it then counts
    nowhere, and the linked-systems page says so) rather than guessing a new home for it.
    """
    from assessments.evidence.models import Check
    from assessments.evidence.seal import rule_reseal

    codes = dict(Criterion.objects.filter(framework=framework).values_list("code", "pk"))
    moved = left = 0
    for check_id, code in Check.objects.filter(linked_system__pilot=pilot).values_list("pk", "criterion__code"):
        target = codes.get(code)
        if target is None:
            left += 1
            continue
        moved += Check.objects.filter(pk=check_id).update(criterion_id=target)
        rule_reseal(check=Check.objects.get(pk=check_id))  # the criterion is part of the sealed rule
    return moved, left


def _evidence_copy(item: Evidence, *, response: Response) -> Evidence:
    """The same evidence on another response: same stored file, hash and author, and the
    time it was first added (not the time of the copy)."""
    return Evidence(
        response=response,
        **{name: getattr(item, name) for name in EVIDENCE_FIELDS},
        added_by_id=item.added_by_id,
        added_at=item.added_at,
    )
