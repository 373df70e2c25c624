"""Telling people that a check which passed now fails (once per flip): mail to the pilot's
owners, and a message to the organisation's Slack-compatible incoming webhook when one is set."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.urls import reverse

from assessments.evidence.connectors.base import ConnectorError
from assessments.evidence.credentials import CredentialsError, credentials_decrypt
from assessments.evidence.models import AlertWebhook, CheckRun
from assessments.evidence.outbound import outbound_post_json
from assessments.evidence.services import WEBHOOK

logger = logging.getLogger(__name__)


def _slack_escape(text: str) -> str:
    """Slack's three control characters in message text (its documented escaping)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webhook_post(*, organisation_id: int, text: str) -> str:
    """Post ``text`` to the organisation's webhook. Returns what happened, in a sentence;
    raises ConnectorError (or CredentialsError) with a readable message when it failed."""
    webhook = AlertWebhook.objects.filter(organisation_id=organisation_id).first()
    if webhook is None:
        return "No alert webhook is set."
    url = credentials_decrypt(row_id=organisation_id, ciphertext=webhook.url_ciphertext, scope=WEBHOOK)["url"]
    answer = outbound_post_json(url, {"text": text})
    return f"Posted to the webhook at {webhook.host} ({answer.status})."


def regression_notify(*, run_id: int) -> None:
    """Mail the pilot's owners and post to the organisation's webhook.

    Runs after the run's transaction commits; the run row marks the flip, so a second
    delivery of the same run never notifies twice (only ``_finish`` sets ``is_regression``,
    once, on the run that flipped). A mail server or webhook that is down is logged: the
    flip stays on the page, on the dashboard and in the trail.
    """
    run = CheckRun.objects.select_related(
        "check_rule__linked_system__pilot__technical_owner", "check_rule__linked_system__pilot__business_owner",
        "check_rule__criterion",
    ).get(pk=run_id)  # fmt: skip
    check = run.check_rule
    pilot = check.linked_system.pilot
    link = f"{settings.SITE_URL}{reverse('pilot', args=[pilot.pk])}"
    subject = f"[Preflight] {pilot.name}: check “{check.name}” now fails"
    body = (
        f"The check “{check.name}” on {check.criterion.code} {check.criterion.title} passed on its previous run "
        f"and fails now.\n\n{run.message}\n\nOpen the pilot in Preflight: {link}\n"
    )
    recipients = sorted({u.email for u in (pilot.technical_owner, pilot.business_owner) if u is not None and u.email})
    if recipients:
        try:
            send_mail(subject, body, None, recipients)
        except OSError as exc:
            logger.warning("could not mail the regression of check %s: %s", check.pk, exc)
    text = (
        f":rotating_light: *{_slack_escape(pilot.name)}*: check “{_slack_escape(check.name)}” "
        f"({_slack_escape(check.criterion.code)}) passed before and fails now.\n"
        f"{_slack_escape(run.message)}\n<{link}|Open the pilot in Preflight>"
    )
    try:
        webhook_post(organisation_id=pilot.organisation_id, text=text)
    except (ConnectorError, CredentialsError) as exc:
        logger.warning("could not post the regression of check %s to the webhook: %s", check.pk, exc)
