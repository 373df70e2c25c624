"""Writes of the statement-of-work definition: its per-pilot preamble and scope."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from assessments.audit.context import Actor
from assessments.audit.services import audit_record, diff_fields
from assessments.organisations.permissions import can_edit_pilot, require, require_member
from assessments.pilots.models import Pilot
from assessments.reports.models import SowText
from assessments.text import text_check

# Generous for a contract's opening pages, small enough that nobody pastes a book.
SOW_TEXT_MAX_CHARS = 20_000


class SowTextConflictError(Exception):
    """The text was saved by someone else since the editor read ``expected_version``."""

    def __init__(self, current: SowText | None) -> None:
        self.current = current
        who = current.updated_by.username if current and current.updated_by else "someone else"
        super().__init__(f"The preamble and scope were changed by {who} after you opened them; nothing was saved.")


def _text_validate(*, preamble: str, scope: str) -> None:
    errors: dict[str, list[ValidationError]] = {}
    for field, value in (("preamble", preamble), ("scope", scope)):
        try:
            text_check(value, multiline=True, subject=f"The {field}")
        except ValidationError as exc:
            errors.setdefault(field, []).append(exc)
        if len(value) > SOW_TEXT_MAX_CHARS:
            errors.setdefault(field, []).append(
                ValidationError(
                    f"The {field} is {len(value):,} characters long; at most {SOW_TEXT_MAX_CHARS:,} fit.",
                    code="max_length",
                )
            )
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def sow_text_update(*, pilot: Pilot, actor: Actor, preamble: str, scope: str, expected_version: int) -> SowText:
    """Save ``pilot``'s preamble and scope if nobody saved them since ``expected_version``.

    ``expected_version`` is 0 while no text has been saved. Those who edit the pilot's
    profile edit this text; a stale version raises SowTextConflictError and changes nothing.
    Prose rules apply (tabs and line breaks kept, other control characters refused);
    the exports escape whatever remains.
    """
    roles = require_member(actor=actor, organisation=pilot.organisation_id)
    require(
        can_edit_pilot(roles, actor=actor, pilot=pilot),
        f"Only the owners of {pilot.name} and administrators change its statement-of-work text.",
    )
    _text_validate(preamble=preamble, scope=scope)
    current = SowText.objects.select_for_update(of=("self",)).filter(pilot=pilot).select_related("updated_by").first()
    if (current.version if current else 0) != expected_version:
        raise SowTextConflictError(current)
    before = {"preamble": current.preamble, "scope": current.scope} if current else {}
    after = {"preamble": preamble, "scope": scope}
    changes = diff_fields(before=before, after=after)
    if current is not None and not changes:
        return current
    if current is None:
        try:
            with transaction.atomic():
                text = SowText.objects.create(pilot=pilot, updated_by_id=actor.user_pk, version=1, **after)
        except IntegrityError as exc:  # saved by someone else between our read and our write
            raise SowTextConflictError(SowText.objects.filter(pilot=pilot).first()) from exc
    else:
        # Compare-and-set on the version, so two saves from the same version cannot both win.
        updated = SowText.objects.filter(pk=current.pk, version=expected_version).update(
            version=F("version") + 1, updated_by_id=actor.user_pk, updated_at=timezone.now(), **after
        )
        if updated != 1:
            raise SowTextConflictError(SowText.objects.filter(pilot=pilot).first())
        text = SowText.objects.get(pk=current.pk)
    changes["version"] = [expected_version, text.version]
    audit_record(
        organisation=pilot.organisation,
        actor=actor,
        action="sow_text.updated",
        object_type="sow_text",
        object_id=text.pk,
        changes=changes,
        pilot_id=pilot.pk,
    )
    return text
