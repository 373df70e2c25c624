"""Writes to linked systems, checks and check runs.

Every rule change is audited in the transaction that makes it, so no run can use a rule
the trail does not show. A run is claimed by one worker with a compare-and-set update,
finishes once (one audit event), and rescores the pilot in the same transaction.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePath
from types import SimpleNamespace
from typing import Any, TypedDict, Unpack
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from assessments.audit.context import Actor
from assessments.audit.services import audit_record, snapshot
from assessments.evidence.connectors.base import ConnectorError, Facts, Source, connector_for
from assessments.evidence.credentials import CredentialsError, credentials_decrypt, credentials_encrypt
from assessments.evidence.hostcap import HostBusy, host_slot, target_host
from assessments.evidence.models import (
    AlertWebhook,
    Check,
    CheckRun,
    Comparator,
    LinkedSystem,
    RunStatus,
    RunTrigger,
    SystemKind,
    Verdict,
)
from assessments.evidence.seal import outcome_seal, rule_seal, rule_sealed
from assessments.frameworks.models import Criterion
from assessments.model_update import model_update
from assessments.organisations.models import Organisation
from assessments.organisations.permissions import can_administer, can_edit_pilot, require, require_member
from assessments.pilots.models import Assessment, AssessmentStatus, Pilot
from assessments.pilots.scorecache import scores_refresh
from assessments.text import text_check
from readiness.jobs import TRANSIENT_ERRORS

logger = logging.getLogger(__name__)

# A run still marked running this long after it started belongs to a worker that died
# (the hard time limit has ended any live one): another claim may take it over.
RUN_LEASE = timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 30)
# A transient failure (timeout, 5xx) is tried this many times before the run fails.
MAX_ATTEMPTS = 4
DISPATCH_CHUNK = 500
MAX_UPLOAD_BYTES = 10 * 1024 * 1024

URL_KINDS = {SystemKind.PROMETHEUS, SystemKind.HTTP_JSON}
FILE_OR_URL_KINDS = {SystemKind.EVAL_RESULTS, SystemKind.USAGE_COST}


class EditConflict(Exception):
    """The row changed since the form was shown; nothing was saved. The message says what to do."""


class RunRetry(Exception):
    """A transient failure: the run was put back in the queue; try again after ``countdown`` seconds."""

    def __init__(self, message: str, countdown: float) -> None:
        super().__init__(message)
        self.countdown = countdown


def _floats_as_text(value: Any) -> Any:
    """The audit chain stores no floats (their text is not stable across languages): thresholds
    and measured values go in as their shortest exact text, e.g. "0.95"."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return {k: _floats_as_text(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_floats_as_text(v) for v in value]
    return value


def _require_editor(actor: Actor, pilot: Pilot) -> None:
    roles = require_member(actor=actor, organisation=pilot.organisation_id)
    require(
        can_edit_pilot(roles, actor=actor, pilot=pilot),
        "Only this pilot's owners and administrators link systems and set check rules.",
    )


# --- linked systems ----------------------------------------------------------------


def _configuration_check(kind: str, configuration: dict[str, Any], *, has_file: bool) -> None:
    """The settings each kind cannot work without, checked before anything is stored."""
    if not isinstance(configuration, dict):
        raise ValidationError({"configuration": "Settings must be a JSON object."})
    for key, value in configuration.items():
        if isinstance(value, str):
            text_check(value, field=f"configuration.{key}")
    for url in (str(configuration.get(key) or "") for key in ("url", "api_url")):
        if not url:
            continue
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError:
            parts, host = None, None
        if parts is None or parts.scheme not in {"http", "https"} or not host:
            raise ValidationError({"configuration": f"{url!r} is not an http(s) URL."})
        if parts.username or parts.password:
            # It would be shown to every member and written into the trail: secrets go in the token.
            raise ValidationError(
                {"configuration": "Leave the user name and password out of the URL; put the secret in the token field."}
            )
    fixture = configuration.get("fixture")
    if fixture is not None:
        _fixture_path(str(fixture))  # refuses anything outside the demo fixtures
    if kind in URL_KINDS and not configuration.get("url"):
        raise ValidationError({"configuration": "A URL is required for this kind of system."})
    if kind in FILE_OR_URL_KINDS and not (has_file or configuration.get("url") or fixture):
        raise ValidationError({"configuration": "Upload a file or give its URL."})
    if kind == SystemKind.GITHUB and "/" not in str(configuration.get("repository", "")):
        raise ValidationError({"configuration": "Name the repository as owner/name."})
    if kind == SystemKind.PAGERDUTY and not configuration.get("schedule_id"):
        raise ValidationError({"configuration": "A PagerDuty schedule id is required."})


def _fixture_path(name: str) -> Path:
    base = Path(settings.EVIDENCE_FIXTURES_DIR).resolve()
    path = (base / name).resolve()
    if base not in path.parents or not path.is_file():
        raise ValidationError({"configuration": f"{name!r} is not one of the demo evidence files."})
    return path


def _store_upload(system: LinkedSystem, upload: UploadedFile) -> None:
    if upload.size is None or upload.size > MAX_UPLOAD_BYTES:
        raise ValidationError({"upload": f"Files up to {MAX_UPLOAD_BYTES // (1024 * 1024)} MB are accepted."})
    data = upload.read()
    name = PurePath(upload.name or "upload").name[:200]
    system.upload_sha256 = hashlib.sha256(data).hexdigest()
    system.upload_name = name
    system.upload.save(name, ContentFile(data), save=False)


class LinkedSystemFields(TypedDict, total=False):
    name: str
    configuration: dict[str, Any]
    check_interval_minutes: int
    enabled: bool


@transaction.atomic
def linked_system_create(
    *,
    pilot: Pilot,
    actor: Actor,
    kind: str,
    secrets: dict[str, str] | None = None,
    upload: UploadedFile | None = None,
    **fields: Unpack[LinkedSystemFields],
) -> LinkedSystem:
    """Link a system to a pilot; its secrets are encrypted and bound to the new row."""
    _require_editor(actor, pilot)
    if kind not in SystemKind.values:
        raise ValidationError({"kind": f"Unknown kind of system {kind!r}."})
    configuration = fields.get("configuration", {})
    _configuration_check(kind, configuration, has_file=upload is not None)
    responsible = actor.user_pk or pilot.technical_owner_id
    if responsible is None:
        raise ValidationError("A linked system needs a person responsible for it.")
    system = LinkedSystem(pilot=pilot, kind=kind, created_by_id=responsible, **fields)
    text_check(system.name, field="name")
    if upload is not None:
        _store_upload(system, upload)
    try:
        system.full_clean()
        system.save()
    except Exception:
        if system.upload.name:
            default_storage.delete(system.upload.name)
        raise
    if secrets:
        system.credentials = credentials_encrypt(row_id=system.pk, secrets=secrets)
        system.save(update_fields=["credentials"])
    fields_shown = ["kind", "name", "configuration", "check_interval_minutes", "enabled", "upload_sha256"]
    changes: dict[str, Any] = {name: [None, value] for name, value in snapshot(system, fields_shown).items()}
    changes["credentials"] = [None, "set" if secrets else "none"]
    audit_record(
        organisation=pilot.organisation,
        actor=actor,
        action="linked_system.added",
        object_type="linked_system",
        object_id=system.pk,
        changes=_floats_as_text(changes),
        pilot_id=pilot.pk,
    )
    return system


@transaction.atomic
def linked_system_update(
    *,
    system: LinkedSystem,
    actor: Actor,
    secrets: dict[str, str] | None = None,
    upload: UploadedFile | None = None,
    expected_token: str | None = None,
    **fields: Unpack[LinkedSystemFields],
) -> LinkedSystem:
    """Change a linked system. ``secrets`` None keeps the stored ones, {} removes them.

    ``expected_token`` (the ``edit_token`` the form was shown) refuses a save over a change
    someone else made meanwhile, with EditConflict.
    """
    system = LinkedSystem.objects.select_for_update().select_related("pilot__organisation").get(pk=system.pk)
    _require_editor(actor, system.pilot)
    if expected_token is not None and expected_token != system.edit_token():
        raise EditConflict(
            f"Someone else changed “{system.name}” while you were editing it; your changes were not saved. "
            "The form now shows the current settings: make your change again."
        )
    if "configuration" in fields:
        _configuration_check(system.kind, fields["configuration"], has_file=bool(upload or system.upload))
    if "name" in fields:
        text_check(fields["name"], field="name")
    editable = ("name", "configuration", "check_interval_minutes", "enabled")
    before = {name: getattr(system, name) for name in (*editable, "upload_sha256")}
    before_secret = bool(system.credentials)
    old_file = system.upload.name if upload is not None and system.upload else ""
    system, changed = model_update(instance=system, fields=editable, data=fields)
    changes: dict[str, Any] = {name: [before[name], getattr(system, name)] for name in changed}
    if upload is not None:
        _store_upload(system, upload)
        system.save(update_fields=["upload", "upload_name", "upload_sha256"])
        changes["upload_sha256"] = [before["upload_sha256"], system.upload_sha256]
        if old_file:
            transaction.on_commit(lambda: default_storage.delete(old_file))
    if secrets is not None:
        system.credentials = credentials_encrypt(row_id=system.pk, secrets=secrets)
        system.save(update_fields=["credentials"])
        changes["credentials"] = ["set" if before_secret else "none", "replaced" if secrets else "removed"]
    if not changes:
        return system
    audit_record(
        organisation=system.pilot.organisation,
        actor=actor,
        action="linked_system.changed",
        object_type="linked_system",
        object_id=system.pk,
        changes=_floats_as_text(changes),
        pilot_id=system.pilot_id,
    )
    return system


# --- checks ------------------------------------------------------------------------


class CheckRule(TypedDict, total=False):
    name: str
    metric: str
    comparator: str
    threshold: float
    tolerance: float | None
    baseline: float | None
    dataset_fingerprint: str


RULE_FIELDS = ("name", "metric", "comparator", "threshold", "tolerance", "baseline", "dataset_fingerprint")


def _criterion_of_pilot(pilot: Pilot, criterion: Criterion) -> None:
    open_framework = (
        Assessment.objects.filter(pilot=pilot)
        .exclude(status=AssessmentStatus.SUPERSEDED)
        .values_list("framework_id", flat=True)
        .first()
    )
    if criterion.framework_id != open_framework:
        raise ValidationError({"criterion": "That criterion is not in this pilot's framework version."})


@transaction.atomic
def check_create(*, system: LinkedSystem, criterion: Criterion, actor: Actor, **rule: Unpack[CheckRule]) -> Check:
    """A rule over a linked system's facts answering one criterion; audited before any run."""
    system = LinkedSystem.objects.select_related("pilot__organisation").get(pk=system.pk)
    _require_editor(actor, system.pilot)
    _criterion_of_pilot(system.pilot, criterion)
    for key in ("name", "metric", "dataset_fingerprint"):
        if key in rule:
            text_check(str(rule[key]), field=key)
    check = Check(linked_system=system, criterion=criterion, rule_changed_by_id=actor.user_pk, **rule)
    check.full_clean()
    check.save()
    _reseal(check)
    audit_record(
        organisation=system.pilot.organisation,
        actor=actor,
        action="check.created",
        object_type="check",
        object_id=check.pk,
        changes=_floats_as_text(
            {name: [None, value] for name, value in snapshot(check, list(RULE_FIELDS)).items()}
            | {"criterion": [None, criterion.code]}
        ),
        pilot_id=system.pilot_id,
    )
    return check


@transaction.atomic
def check_update(
    *, check: Check, actor: Actor, expected_version: int | None = None, **rule: Unpack[CheckRule]
) -> Check:
    """Change a rule. The change is in the trail (who, when, old → new) before any run uses it.

    ``expected_version`` (the rule version the form was shown) refuses a save over a rule
    someone else changed meanwhile, with EditConflict.
    """
    check = (
        Check.objects.select_for_update(of=("self",))
        .select_related("linked_system__pilot__organisation", "rule_changed_by")
        .get(pk=check.pk)
    )
    pilot = check.linked_system.pilot
    _require_editor(actor, pilot)
    if expected_version is not None and expected_version != check.rule_version:
        who = check.rule_changed_by.get_full_name() or check.rule_changed_by.username if check.rule_changed_by else ""
        raise EditConflict(
            f"{who or 'Someone'} changed this rule to “{check.rule_text()}” while you were editing it; "
            "your change was not saved. Check the current rule and save again."
        )
    for key in ("name", "metric", "dataset_fingerprint"):
        if key in rule:
            text_check(str(rule[key]), field=key)
    before = {name: getattr(check, name) for name in RULE_FIELDS}
    check, changed = model_update(instance=check, fields=RULE_FIELDS, data=rule)
    if not changed:
        return check
    Check.objects.filter(pk=check.pk).update(
        rule_changed_at=timezone.now(), rule_changed_by_id=actor.user_pk, rule_version=F("rule_version") + 1
    )
    check.refresh_from_db()
    _reseal(check)
    audit_record(
        organisation=pilot.organisation,
        actor=actor,
        action="check.rule_changed",
        object_type="check",
        object_id=check.pk,
        changes=_floats_as_text({name: [before[name], getattr(check, name)] for name in changed}),
        pilot_id=pilot.pk,
    )
    return check


def _reseal(check: Check) -> None:
    """Seal the rule as the services just wrote it (see seal.py)."""
    check.rule_seal = rule_seal(check)
    Check.objects.filter(pk=check.pk).update(rule_seal=check.rule_seal)


# --- runs --------------------------------------------------------------------------


def _enqueue(run_id: int) -> None:
    transaction.on_commit(lambda: _send(run_id))


def _send(run_id: int) -> None:
    from assessments.evidence.tasks import check_run

    try:
        check_run.delay(run_id)
    except TRANSIENT_ERRORS:
        # The queue is not answering: the run stays queued and the dispatcher (every 30 s)
        # sends it once its lease has passed, rather than the request answering 500.
        logger.warning("check run %s could not be queued now; the dispatcher will send it", run_id, exc_info=True)


@transaction.atomic
def check_run_request(*, check: Check, actor: Actor) -> CheckRun:
    """ "Re-check now": queue a run at once (or return the one already queued or running)."""
    check = Check.objects.select_related("linked_system__pilot__organisation").get(pk=check.pk)
    pilot = check.linked_system.pilot
    roles = require_member(actor=actor, organisation=pilot.organisation_id)
    require(bool(roles), "Only members of this organisation re-check.")
    if not check.linked_system.enabled:
        raise ValidationError(f"“{check.linked_system.name}” is switched off; switch it on to re-check its checks.")
    open_run = CheckRun.objects.filter(check_rule=check, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).first()
    if open_run is not None:
        return open_run
    try:
        with transaction.atomic():
            run = CheckRun.objects.create(check_rule=check, trigger=RunTrigger.MANUAL, requested_by_id=actor.user_pk)
    except IntegrityError:  # a concurrent request queued one first
        return CheckRun.objects.get(check_rule=check, status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
    audit_record(
        organisation=pilot.organisation,
        actor=actor,
        action="check.run_requested",
        object_type="check",
        object_id=check.pk,
        changes={"run": [None, run.pk]},
        pilot_id=pilot.pk,
    )
    _enqueue(run.pk)
    return run


def check_runs_queue_due(*, now: datetime | None = None, limit: int = 5000) -> list[int]:
    """Queue one run for each enabled check that is due and has none open; returns the run ids.

    Not audited by itself: each run records its event when it finishes. Also re-queues
    runs whose worker died (running past the lease), so a killed worker loses nothing.
    """
    now = now or timezone.now()
    due = list(
        Check.objects.filter(next_run_at__lte=now, linked_system__enabled=True)
        .exclude(runs__status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
        .order_by("next_run_at")
        .values_list("pk", flat=True)[:limit]
    )
    from assessments.evidence.tasks import check_run

    queued: list[int] = []
    # In chunks, each sent to the workers as soon as it is committed: a big sweep starts
    # running after the first chunk instead of after every row is written.
    for start in range(0, len(due), DISPATCH_CHUNK):
        chunk = due[start : start + DISPATCH_CHUNK]
        try:
            with transaction.atomic():
                runs = CheckRun.objects.bulk_create(
                    CheckRun(check_rule_id=check_id, trigger=RunTrigger.SCHEDULE, queued_at=now) for check_id in chunk
                )
            ids = [run.pk for run in runs]
        except IntegrityError:  # one was queued meanwhile by "re-check now" or another dispatcher
            ids = []
            for check_id in chunk:
                try:
                    with transaction.atomic():
                        run = CheckRun.objects.create(
                            check_rule_id=check_id, trigger=RunTrigger.SCHEDULE, queued_at=now
                        )
                except IntegrityError:
                    continue
                ids.append(run.pk)
        for run_id in ids:
            check_run.delay(run_id)
        queued.extend(ids)
    stale = CheckRun.objects.filter(status=RunStatus.RUNNING, started_at__lt=now - RUN_LEASE).values_list(
        "pk", flat=True
    )
    for run_id in list(stale):
        check_run.delay(run_id)
    return queued


def _source(system: LinkedSystem) -> Source:
    pilot = system.pilot
    secrets = credentials_decrypt(row_id=system.pk, ciphertext=system.credentials)
    data: bytes | None = None
    if system.upload:
        with system.upload.open("rb") as handle:
            data = handle.read()
        if hashlib.sha256(data).hexdigest() != system.upload_sha256:
            raise ConnectorError(
                f"The stored file {system.upload_name!r} no longer matches the SHA-256 recorded when it was "
                f"uploaded ({system.upload_sha256[:12]}…): it was changed outside Preflight. Upload it again."
            )
    elif system.configuration.get("fixture"):
        try:
            data = _fixture_path(str(system.configuration["fixture"])).read_bytes()
        except ValidationError as exc:
            raise ConnectorError(" ".join(exc.messages)) from None
    context = {
        "expected_monthly_volume": pilot.expected_monthly_volume,
        "cost_envelope_per_task": (
            float(pilot.cost_envelope_per_task) if pilot.cost_envelope_per_task is not None else None
        ),
    }
    return Source(configuration=dict(system.configuration), secrets=secrets, file=data, context=context)


@dataclass(frozen=True)
class Judgement:
    verdict: str
    value: float
    message: str


_HOLDS = {
    Comparator.GTE: lambda v, t: v >= t,
    Comparator.GT: lambda v, t: v > t,
    Comparator.LTE: lambda v, t: v <= t,
    Comparator.LT: lambda v, t: v < t,
    Comparator.EQ: lambda v, t: math.isclose(v, t, rel_tol=1e-9, abs_tol=1e-12),
}
_NEGATED = {"gte": "<", "gt": "≤", "lte": ">", "lt": "≥", "eq": "≠"}
_SYMBOL = {"gte": "≥", "gt": ">", "lte": "≤", "lt": "<", "eq": "="}


def rule_judge(*, rule: dict[str, Any], facts: Facts) -> Judgement:
    """Pass or fail, and a sentence saying why (e.g. "pass_rate 0.93 < 0.95 — 383 of 412 cases passed").

    Raises ConnectorError when the facts do not hold the rule's metric (the run then fails:
    a rule that cannot be judged must not pass).
    """
    metric = rule["metric"]
    if metric not in facts.metrics:
        have = ", ".join(sorted(facts.metrics)[:12]) or "none"
        raise ConnectorError(f"The system's facts have no {metric!r} (it reported: {have}). Change the rule's metric.")
    value = float(facts.metrics[metric])
    if not math.isfinite(value):
        raise ConnectorError(f"The system reported {metric} = {value}, which is not a number a rule can judge.")
    comparator, threshold = rule["comparator"], float(rule["threshold"])
    summary = f" — {facts.summary}" if facts.summary else ""
    if not _HOLDS[comparator](value, threshold):
        return Judgement(Verdict.FAIL, value, f"{metric} {value:g} {_NEGATED[comparator]} {threshold:g}{summary}")
    expected = rule.get("dataset_fingerprint") or ""
    if expected:
        reported = facts.details.get("dataset")
        if isinstance(reported, dict):  # {"name": …, "fingerprint": …}: either may be pinned
            names = {str(reported.get("fingerprint") or ""), str(reported.get("name") or "")}
            dataset = str(reported.get("fingerprint") or reported.get("name") or "")
        else:
            names = {str(reported or "")}
            dataset = str(reported or "")
        if expected not in names:
            found = dataset or "unnamed"
            return Judgement(Verdict.FAIL, value, f"ran on dataset {found!r}, not the pinned {expected!r}{summary}")
    tolerance, baseline = rule.get("tolerance"), rule.get("baseline")
    if tolerance is not None and baseline is not None and value < float(baseline) - float(tolerance):
        drop = float(baseline) - value
        return Judgement(
            Verdict.FAIL,
            value,
            f"{metric} {value:g} fell {drop:.4g} below its baseline {float(baseline):g} "
            f"(tolerance {float(tolerance):g}){summary}",
        )
    return Judgement(Verdict.PASS, value, f"{metric} {value:g} {_SYMBOL[comparator]} {threshold:g}{summary}")


def _rule_snapshot(check: Check) -> dict[str, Any]:
    return {name: getattr(check, name) for name in RULE_FIELDS} | {"version": check.rule_version}


def _backoff(attempt: int) -> float:
    cap = min(settings.JOB_RETRY_BACKOFF_MAX, 5 * 2 ** max(0, attempt - 1))
    return random.uniform(1, cap)  # full jitter


def _busy_wait() -> float:
    return random.uniform(0.5, 2.0)


def _requeue(run: CheckRun, **fields: Any) -> bool:
    """Put a run this worker holds back in the queue; False when it is no longer ours."""
    return bool(
        CheckRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING, attempts=run.attempts).update(
            status=RunStatus.QUEUED, started_at=None, **fields
        )
    )


def check_run_execute(*, run_id: int, now: datetime | None = None) -> CheckRun | None:
    """Claim the run, read the system, judge the rule, record the outcome (one audit event).

    Returns None when the run is not this caller's to do: already finished, or claimed by
    a live worker (a duplicate delivery). Raises RunRetry after putting the run back in
    the queue when the system failed transiently and attempts remain.
    """
    clock = now  # a given time also stamps the finish (the demo seeds a chosen day)
    now = now or timezone.now()
    claimable = Q(status=RunStatus.QUEUED) | Q(status=RunStatus.RUNNING, started_at__lt=now - RUN_LEASE)
    if not CheckRun.objects.filter(claimable, pk=run_id).update(
        status=RunStatus.RUNNING, started_at=now, attempts=F("attempts") + 1
    ):
        return None
    run = CheckRun.objects.select_related(
        "check_rule__linked_system__pilot__organisation", "check_rule__criterion"
    ).get(pk=run_id)
    check = run.check_rule
    system = check.linked_system
    rule = _rule_snapshot(check)
    if not rule_sealed(check):
        return _finish(
            run,
            at=clock,
            rule=rule,
            status=RunStatus.FAILED,
            facts=None,
            payload=b"",
            message=(
                "This check's rule in the database is not the rule Preflight recorded (it was changed outside "
                "Preflight), so it was not run. Open the rule, check it, and save it to run it again."
            ),
        )
    facts: Facts | None = None
    payload = b""
    host = target_host(
        kind=system.kind,
        configuration=system.configuration,
        file_backed=bool(system.upload) or bool(system.configuration.get("fixture")),
    )
    try:
        with host_slot(host=host, lease_seconds=RUN_LEASE.total_seconds()):
            fetched = connector_for(system.kind).fetch(_source(system))
        facts, payload = fetched.facts, fetched.payload
        judgement = rule_judge(rule=rule, facts=facts)
    except HostBusy as exc:
        # Not an attempt: the run goes back to the queue untouched and tries again shortly.
        if _requeue(run, attempts=F("attempts") - 1):
            raise RunRetry(str(exc), _busy_wait()) from exc
        return None
    except ConnectorError as exc:
        if exc.transient and run.attempts < MAX_ATTEMPTS:
            if _requeue(run, message=f"Attempt {run.attempts} failed, retrying: {exc.message}"):
                raise RunRetry(exc.message, _backoff(run.attempts)) from exc
            return None
        return _finish(
            run, at=clock, rule=rule, status=RunStatus.FAILED, message=exc.message, facts=facts, payload=payload
        )
    except CredentialsError as exc:
        return _finish(run, at=clock, rule=rule, status=RunStatus.FAILED, message=str(exc), facts=None, payload=b"")
    except Exception:
        logger.exception("check run %s failed unexpectedly", run.pk)
        return _finish(
            run,
            at=clock,
            rule=rule,
            status=RunStatus.ERROR,
            facts=None,
            payload=b"",
            message=(
                "Preflight failed while running this check (the details are in the worker's log); "
                "it will run again on schedule."
            ),
        )
    return _finish(run, at=clock, rule=rule, status=RunStatus.OK, judgement=judgement, facts=facts, payload=payload)


def _finish(
    run: CheckRun,
    *,
    at: datetime | None,
    rule: dict[str, Any],
    status: str,
    facts: Facts | None,
    payload: bytes,
    message: str = "",
    judgement: Judgement | None = None,
) -> CheckRun | None:
    finished = at or timezone.now()
    with transaction.atomic():
        check = (
            Check.objects.select_for_update(of=("self",))
            .select_related("latest_run", "linked_system__pilot__organisation")
            .get(pk=run.check_rule_id)
        )
        pilot = check.linked_system.pilot
        previous = check.latest_run
        verdict = judgement.verdict if judgement else ""
        passed = verdict == Verdict.PASS
        regression = not passed and previous is not None and previous.verdict == Verdict.PASS
        value = judgement.value if judgement else None
        sealed = outcome_seal(
            SimpleNamespace(
                pk=run.pk,
                check_rule_id=run.check_rule_id,
                status=status,
                verdict=verdict,
                value=value,
                finished_at=finished,
                rule=rule,
            )
        )
        updated = CheckRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING, attempts=run.attempts).update(
            status=status,
            finished_at=finished,
            outcome_seal=sealed,
            rule=rule,
            facts={"metrics": facts.metrics, "details": facts.details, "summary": facts.summary} if facts else {},
            value=value,
            payload_sha256=hashlib.sha256(payload).hexdigest() if payload else "",
            payload_size=len(payload),
            verdict=verdict,
            message=(judgement.message if judgement else message)[:4000],
            is_regression=regression,
        )
        if not updated:  # the lease ran out and another worker took the run over
            return None
        run.refresh_from_db()
        # Judged by a rule changed while it ran: the dispatcher runs it again with the new rule now.
        superseded = rule.get("version") != check.rule_version
        check_fields: dict[str, Any] = {
            "latest_run": run,
            "next_run_at": finished
            if superseded
            else finished + timedelta(minutes=check.linked_system.check_interval_minutes),
            "failing_since": None if passed else (check.failing_since or finished),
        }
        baseline_set = passed and check.tolerance is not None and check.baseline is None and judgement is not None
        if baseline_set and judgement is not None:
            check_fields["baseline"] = judgement.value
        Check.objects.filter(pk=check.pk).update(**check_fields)
        if baseline_set:
            check.refresh_from_db()
            _reseal(check)  # the baseline is part of the rule
        if superseded:
            try:
                with transaction.atomic():
                    again = CheckRun.objects.create(check_rule=check, trigger=RunTrigger.SCHEDULE, queued_at=finished)
            except IntegrityError:  # someone queued one already
                pass
            else:
                _enqueue(again.pk)
        # A run that says what the previous one said, on the same day, leaves every score as it
        # was (same state, same evidence date, same "failing since"): most runs of a steady
        # sweep. Anything else rescores the pilot in this transaction.
        unchanged = (
            previous is not None
            and previous.finished_at is not None
            and (previous.status, previous.verdict) == (status, verdict)
            and timezone.localdate(previous.finished_at) == timezone.localdate(finished)
            and not baseline_set
        )
        if not unchanged:
            assessment_ids = list(
                Assessment.objects.filter(pilot=pilot)
                .exclude(status=AssessmentStatus.SUPERSEDED)
                .values_list("pk", flat=True)
            )
            scores_refresh(assessment_ids=assessment_ids, today=timezone.localdate())
        # The trail's head is locked from here to the commit: write the event last, after the
        # rescore, so runs of one organisation wait on each other as briefly as possible (and
        # in the same order as the checklist's writes: scores, then the trail).
        audit_record(
            organisation=pilot.organisation,
            actor=Actor.system("check runner"),
            action="check_run.regressed" if regression else "check_run.finished",
            object_type="check_run",
            object_id=run.pk,
            changes=_floats_as_text(
                {
                    "check": [None, check.name],
                    "status": [None, status],
                    "verdict": [previous.verdict if previous else None, verdict or None],
                    "message": [None, run.message[:300]],
                    **({"baseline": [None, judgement.value]} if baseline_set and judgement else {}),
                }
            ),
            pilot_id=pilot.pk,
        )
        if regression:
            from assessments.evidence.notify import regression_notify

            transaction.on_commit(lambda: regression_notify(run_id=run.pk))
    return run


# --- the organisation's alert webhook ------------------------------------------------------

WEBHOOK = "alert_webhook"


def _require_administrator(actor: Actor, organisation: Organisation) -> None:
    roles = require_member(actor=actor, organisation=organisation.pk)
    require(can_administer(roles), "Only administrators set the organisation's alert webhook.")


@transaction.atomic
def alert_webhook_set(*, organisation: Organisation, actor: Actor, url: str) -> AlertWebhook:
    """Set or replace the Slack-compatible incoming webhook regressions are posted to.

    The URL is encrypted at rest and bound to the organisation; the trail records only its
    host, since the rest of a webhook URL is its secret.
    """
    _require_administrator(actor, organisation)
    if actor.user_pk is None:
        raise ValidationError("An alert webhook is set by a person.")
    url = url.strip()
    text_check(url, subject="The webhook URL", field="url")  # no bidi or invisible characters in the host shown
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        host, parts = "", None
    if parts is None or parts.scheme not in {"http", "https"} or not host:
        raise ValidationError({"url": "Enter the webhook's full http(s) URL, as the chat service gave it."})
    if parts.username or parts.password:
        raise ValidationError({"url": "A webhook URL carries its secret in the path, not as a user name."})
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValidationError({"url": "The webhook's host name is not a valid internet host name."}) from None
    current = AlertWebhook.objects.select_for_update().filter(organisation=organisation).first()
    before = current.host if current else None
    webhook = current or AlertWebhook(organisation=organisation)
    webhook.host = host[:255]
    webhook.updated_at = timezone.now()
    webhook.updated_by_id = actor.user_pk
    webhook.url_ciphertext = credentials_encrypt(row_id=organisation.pk, secrets={"url": url}, scope=WEBHOOK)
    webhook.full_clean(exclude=["organisation"])
    webhook.save()
    audit_record(
        organisation=organisation,
        actor=actor,
        action="alert_webhook.replaced" if current else "alert_webhook.set",
        object_type="organisation",
        object_id=organisation.pk,
        changes={"webhook_host": [before, host]},
    )
    return webhook


@transaction.atomic
def alert_webhook_remove(*, organisation: Organisation, actor: Actor) -> None:
    """Stop posting regressions to a webhook (mail to the owners goes on)."""
    _require_administrator(actor, organisation)
    current = AlertWebhook.objects.select_for_update().filter(organisation=organisation).first()
    if current is None:
        raise ValidationError("There is no alert webhook to remove.")
    current.delete()
    audit_record(
        organisation=organisation,
        actor=actor,
        action="alert_webhook.removed",
        object_type="organisation",
        object_id=organisation.pk,
        changes={"webhook_host": [current.host, None]},
    )
