"""Telling a pilot's owner that a check which passed now fails (once per flip)."""

from __future__ import annotations

import logging

from django.core.mail import send_mail
from django.urls import reverse

from assessments.evidence.models import CheckRun

logger = logging.getLogger(__name__)


def regression_notify(*, run_id: int) -> None:
    """Mail the pilot's owners.

    Runs after the run's transaction commits; the run row marks the flip, so a second
    delivery of the same run never mails twice (only ``_finish`` sets ``is_regression``,
    once, on the run that flipped).
    """
    run = CheckRun.objects.select_related(
        "check_rule__linked_system__pilot__technical_owner", "check_rule__linked_system__pilot__business_owner",
        "check_rule__criterion",
    ).get(pk=run_id)  # fmt: skip
    check = run.check_rule
    pilot = check.linked_system.pilot
    link = f"Open the pilot in Preflight: {reverse('pilot', args=[pilot.pk])}"
    subject = f"[Preflight] {pilot.name}: check “{check.name}” now fails"
    body = (
        f"The check “{check.name}” on {check.criterion.code} {check.criterion.title} passed on its previous run "
        f"and fails now.\n\n{run.message}\n\n{link}\n"
    )
    recipients = sorted({u.email for u in (pilot.technical_owner, pilot.business_owner) if u is not None and u.email})
    if not recipients:
        return
    try:
        send_mail(subject, body, None, recipients)
    except OSError as exc:  # the mail server is down: the flip stays on the page and in the trail
        logger.warning("could not mail the regression of check %s: %s", check.pk, exc)
