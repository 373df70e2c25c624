"""Loads the demo organisation from fixtures/demo.json through the ordinary services,
so the demo's audit chain and activity feeds look exactly like real use.

Every date in the demo is relative to the day it is seeded, so it never ages into
a different story: ``age_days`` and ``due_in_days`` count from that day, and text
(titles, links, notes, justifications, file contents) may name dates with
placeholders: ``{day-12}`` is "10 Nov" when seeded on 22 Nov, ``{iso-12}`` is
"2026-11-10", ``{day}`` / ``{iso}`` are the evidence's own effective date and
``{due}`` is the criterion's due date.

A criterion with a named reviewer as owner is answered the way it happens in use:
the pilot owner assigns it, then the reviewer sets the status, writes the
justification and attaches the evidence under their own name.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import textwrap
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.utils import timezone

from assessments.audit.context import Actor
from assessments.audit.signing import signing_key_ensure
from assessments.audit.verify import audit_verify, checkpoint_create
from assessments.evidence.demo import demo_link_systems
from assessments.frameworks.loader import FRAMEWORK_V1_PATH, FRAMEWORK_V2_PATH, framework_read_file
from assessments.frameworks.models import Framework, HeldEvidence
from assessments.frameworks.services import framework_load
from assessments.organisations.models import Organisation
from assessments.organisations.services import membership_grant, organisation_create, user_create
from assessments.pilots.models import Pilot, Response
from assessments.pilots.scorecache import scores_refresh_held
from assessments.pilots.selectors import assessment_open
from assessments.pilots.services import (
    assessment_move,
    evidence_add,
    pilot_create,
    response_update,
    stop_condition_add,
)
from assessments.pilots.uploads import upload_check
from assessments.reviews.demo import demo_reviews

DEMO_PATH = Path(__file__).resolve().parents[2] / "fixtures" / "demo.json"
DECIMAL_FIELDS = ("value_baseline", "value_target", "value_current", "cost_envelope_per_task")
ANSWERED_WITH_EVIDENCE = frozenset({"met", "partly_met"})
PLACEHOLDER = re.compile(r"\{(?P<kind>day|iso|due)(?:(?P<sign>[+-])(?P<days>\d+))?\}")


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    roles: list[str]


@dataclass(frozen=True)
class DemoResult:
    organisation: Organisation
    created: bool
    logins: list[DemoLogin]


@dataclass(frozen=True)
class Dates:
    """The seed day, and the dates a piece of text may refer to."""

    today: dt.date
    effective: dt.date | None = None
    due: dt.date | None = None

    def render(self, text: str) -> str:
        def replace(match: re.Match[str]) -> str:
            kind, sign, days = match["kind"], match["sign"], match["days"]
            if kind == "due":
                when = self.due
            elif sign:
                offset = int(days) if sign == "+" else -int(days)
                when = self.today + dt.timedelta(days=offset)
            else:
                when = self.effective
            if when is None:
                raise ImproperlyConfigured(f"demo.json: {match[0]} has no date to refer to in {text!r}")
            return when.isoformat() if kind == "iso" else f"{when.day} {when:%b}"

        return PLACEHOLDER.sub(replace, text)


def demo_seed(*, path: Path = DEMO_PATH, today: dt.date | None = None) -> DemoResult:
    """Create the demo organisation once; a second run changes nothing."""
    data = json.loads(path.read_text(encoding="utf-8"))
    logins = [DemoLogin(u["username"], data["password"], u["roles"]) for u in data["users"]]
    existing = Organisation.objects.filter(slug=data["organisation"]["slug"]).first()
    if existing is not None:
        return DemoResult(organisation=existing, created=False, logins=logins)
    signing_key_ensure()
    today = today or timezone.localdate()
    with transaction.atomic():
        organisation = _seed(data, today)
    # Linked systems read real tool outputs in fixtures/evidence/; each check runs once here.
    # The blocked high-risk pilot: its failing red-team and cost checks are among its blockers.
    linked = Pilot.objects.filter(organisation=organisation, risk_tier="high").order_by("pk").first()
    if linked is not None:
        demo_link_systems(pilot=linked, today=today)
    checkpoint_create(organisation=organisation)
    scores_refresh_held(kind=HeldEvidence.AUDIT_TRAIL, organisation_id=organisation.pk)
    audit_verify(organisation=organisation)
    return DemoResult(organisation=organisation, created=True, logins=logins)


def _seed(data: dict[str, Any], today: dt.date) -> Organisation:
    setup = Actor.system("demo.seed")
    organisation = organisation_create(
        name=data["organisation"]["name"], slug=data["organisation"]["slug"], actor=setup
    )
    # The organisation began on v1; v2 arrives as its next published version and most pilots
    # move to it through the normal path, so their answers carry over and the trail shows it.
    framework_load(organisation=organisation, spec=framework_read_file(FRAMEWORK_V1_PATH), actor=setup)
    people: dict[str, User] = {}
    for spec in data["users"]:
        user = user_create(
            organisation=organisation,
            username=spec["username"],
            email=spec["email"],
            password=data["password"],
            first_name=spec["first_name"],
            last_name=spec["last_name"],
            actor=setup,
        )
        if spec.get("superuser"):
            get_user_model().objects.filter(pk=user.pk).update(is_staff=True, is_superuser=True)
        for role in spec["roles"]:
            membership_grant(organisation=organisation, user=user, role=role, actor=setup)
        people[spec["username"]] = user
    pilots = [(spec, _seed_pilot(organisation, spec, people, today)) for spec in data["pilots"]]
    v2 = framework_load(organisation=organisation, spec=framework_read_file(FRAMEWORK_V2_PATH), actor=setup)
    for spec, pilot in pilots:
        if "after_move" in spec:
            _move(pilot, v2, spec["after_move"], people, today)
    demo_reviews(organisation=organisation, people=people, today=today)
    return organisation


def _move(pilot: Pilot, framework: Framework, plan: dict[str, Any], people: dict[str, User], today: dt.date) -> None:
    """Move ``pilot`` to ``framework`` as its technical owner would, then answer what v2 added."""
    mover = people[plan["by"]] if "by" in plan else pilot.technical_owner
    assert mover is not None
    actor = Actor.for_user(mover)
    assessment = assessment_open(pilot=pilot)
    assert assessment is not None
    new = assessment_move(assessment=assessment, framework=framework, actor=actor)
    codes: dict[str, dict[str, Any]] = plan.get("codes", {})
    responses = {r.criterion.code: r for r in Response.objects.filter(assessment=new).select_related("criterion")}
    unknown = set(codes) - set(responses)
    if unknown:
        raise ImproperlyConfigured(f"demo.json: {pilot.name} answers v2 criteria that do not exist: {sorted(unknown)}")
    for code, answer in codes.items():
        status = answer["status"]
        if status in ANSWERED_WITH_EVIDENCE and not answer.get("evidence"):
            raise ImproperlyConfigured(f"demo.json: {pilot.name} {code} is {status} but has no evidence")
        _answer(responses[code], answer, status, people, actor, today)


def _seed_pilot(organisation: Organisation, spec: dict[str, Any], people: dict[str, User], today: dt.date) -> Pilot:
    owner = people[spec["technical_owner"]]
    actor = Actor.for_user(owner)
    profile = dict(spec["profile"])
    for name in DECIMAL_FIELDS:
        if profile.get(name) is not None:
            profile[name] = Decimal(str(profile[name]))
    pilot = pilot_create(
        organisation=organisation,
        actor=actor,
        name=spec["name"],
        business_owner=people[spec["business_owner"]],
        technical_owner=owner,
        target_date=today + dt.timedelta(days=spec.get("target_in_days", 60)),
        **profile,
    )
    for stop in spec.get("stop_conditions", []):
        stop_condition_add(pilot=pilot, actor=actor, **{**stop, "threshold": Decimal(str(stop["threshold"]))})
    assessment = assessment_open(pilot=pilot)
    assert assessment is not None
    plan = spec["responses"]
    codes: dict[str, dict[str, Any]] = plan.get("codes", {})
    responses = list(Response.objects.filter(assessment=assessment).select_related("criterion__gap"))
    unknown = set(codes) - {response.criterion.code for response in responses}
    if unknown:
        raise ImproperlyConfigured(f"demo.json: {pilot.name} answers criteria the framework lacks: {sorted(unknown)}")
    for response in responses:
        criterion = response.criterion
        answer = codes.get(criterion.code)
        if answer is None and not criterion.applies_to(pilot.risk_tier):
            # Nobody answers a criterion the pilot's risk tier does not ask for.
            continue
        answer = answer or {}
        status = answer.get("status") or plan["gaps"].get(criterion.gap.key, plan["default"])
        if status == "not_started":
            continue
        evidence = answer.get("evidence", [])
        if status in ANSWERED_WITH_EVIDENCE and not evidence:
            raise ImproperlyConfigured(f"demo.json: {pilot.name} {criterion.code} is {status} but has no evidence")
        _answer(response, answer, status, people, actor, today)
    return pilot


def _answer(
    response: Response,
    answer: dict[str, Any],
    status: str,
    people: dict[str, User],
    pilot_actor: Actor,
    today: dt.date,
) -> None:
    due = today + dt.timedelta(days=answer["due_in_days"]) if answer.get("due_in_days") is not None else None
    dates = Dates(today=today, due=due)
    named = people[answer["owner"]] if answer.get("owner") else None
    fields: dict[str, Any] = {"status": status}
    if answer.get("justification"):
        fields["justification"] = dates.render(answer["justification"])
    assignment: dict[str, Any] = {}
    if named is not None:
        assignment["owner"] = named
    if due is not None:
        assignment["due_date"] = due
    author = pilot_actor
    if named is not None and named.pk != pilot_actor.user_pk:
        # The pilot owner hands the criterion over; its new owner answers it.
        response_update(response=response, actor=pilot_actor, expected_version=response.version, **assignment)
        author = Actor.for_user(named)
    else:
        fields.update(assignment)
    # The service brings ``response`` up to date in place (its version included).
    response_update(response=response, actor=author, expected_version=response.version, **fields)
    for item in answer.get("evidence", []):
        _add_evidence(response, item, author, dates)


def _add_evidence(response: Response, item: dict[str, Any], author: Actor, dates: Dates) -> None:
    effective = dates.today - dt.timedelta(days=int(item["age_days"]))
    dates = Dates(today=dates.today, effective=effective, due=dates.due)
    kind = item["kind"]
    upload = None
    if kind == "file":
        upload = upload_check(_demo_file(item["file"], dates))
    evidence_add(
        response=response,
        actor=author,
        kind=kind,
        title=dates.render(item["title"]),
        url=dates.render(item.get("url", "")),
        note=dates.render(item.get("note", "")),
        effective_date=effective,
        expires_on=effective + dt.timedelta(days=item["expires_in_days"]) if "expires_in_days" in item else None,
        upload=upload,
    )


def _demo_file(spec: dict[str, Any], dates: Dates) -> SimpleUploadedFile:
    """Build a small evidence file at seed time, as a browser upload would hand it over."""
    name = dates.render(spec["name"])
    if "rows" in spec:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerows([[dates.render(str(cell)) for cell in row] for row in spec["rows"]])
        content = buffer.getvalue().encode("utf-8")
    elif "paragraphs" in spec:
        content = pdf_document(
            heading=dates.render(spec["heading"]),
            paragraphs=[dates.render(p) for p in spec["paragraphs"]],
        )
    else:
        content = dates.render(spec["text"]).encode("utf-8")
    return SimpleUploadedFile(name, content)


PDF_LINE_CHARS = 95
PDF_MAX_LINES = 52


def pdf_document(*, heading: str, paragraphs: list[str]) -> bytes:
    """A one-page A4 PDF in Helvetica, written by hand so the demo needs no PDF library.

    A paragraph starting with "## " is a bold subheading; text must fit Windows-1252.
    """
    stream = [b"BT", b"/F2 15 Tf", b"56 782 Td", b"15 TL", b"(" + _pdf_text(heading) + b") Tj", b"T*"]
    lines = 0
    for paragraph in paragraphs:
        bold = paragraph.startswith("## ")
        text = paragraph.removeprefix("## ")
        stream.append(b"/F2 11 Tf" if bold else b"/F1 10 Tf")
        wrapped = textwrap.wrap(text, PDF_LINE_CHARS) or [""]
        stream.extend(b"(" + _pdf_text(line) + b") '" for line in wrapped)
        lines += len(wrapped)
    if lines > PDF_MAX_LINES:
        raise ImproperlyConfigured(f"demo.json: the PDF '{heading}' does not fit on one page")
    stream.append(b"ET")
    content = b"\n".join(stream)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R /F2 5 0 R >> >> /Contents 6 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        # The document information dictionary is not in the fonts' encoding: UTF-16 with a BOM.
        b"<< /Title <FEFF" + heading.encode("utf-16-be").hex().upper().encode() + b"> /Producer (Preflight demo) >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 7 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _pdf_text(text: str) -> bytes:
    return text.encode("cp1252").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
