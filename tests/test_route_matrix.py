"""Every route, asked by every kind of person, answers as one table says.

The routes come from the URL resolver, so a new view fails here until EXPECTED has
a row for it: per method, what each actor gets. The table states the product's rules
(README, "Who may do what"), not whatever the code happens to do:

- anonymous people are sent to sign in; the API schema refuses them;
- viewers read (dashboard, pilot page, exports, downloads) and edit nothing;
- every member reads the frameworks, drafts included, and each criterion's own page;
- a pilot's owners edit its profile, stage, stop conditions, every response and its
  evidence, and move it to a newer framework version;
- delivery, security, risk and product edit only the responses they are named owner of;
- someone with the owner role edits nothing of a pilot they do not own, not even a
  criterion they are named owner of (criterion ownership is for reviewer roles);
- administrators edit any pilot's profile, edit frameworks and manage members, but do
  not edit responses of pilots they do not own;
- an administrator of another organisation gets 404 for everything of this one.

Each request runs in a savepoint that is rolled back, so every actor meets the same
world, built once for the module.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import User
from django.contrib.auth.tokens import default_token_generator
from django.contrib.messages import get_messages
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client, override_settings
from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, resolve, reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from assessments.audit.context import Actor
from assessments.evidence.models import Check, LinkedSystem
from assessments.evidence.services import check_create, linked_system_create
from assessments.frameworks.models import Criterion, Framework, Gap
from assessments.frameworks.services import framework_copy, framework_load, framework_publish
from assessments.organisations.models import Invitation, Membership, Organisation, Role
from assessments.organisations.services import invitation_create, membership_grant, organisation_create, user_create
from assessments.pilots.models import Evidence, Pilot, Response, StopCondition
from assessments.pilots.services import evidence_add, pilot_create, response_update, stop_condition_add
from assessments.pilots.uploads import upload_check
from assessments.reports.models import Report, ReportKind, ReportStatus
from assessments.reviews.models import Condition, ReviewMeeting
from assessments.reviews.services import condition_raise, meeting_schedule

SYSTEM = Actor.system("route matrix")
PASSWORD = "matrix-pass-for-tests"
NEW_PASSWORD = "matrix-new-pass-for-tests-2"

# --- Who asks -------------------------------------------------------------------------

ANON = ("anonymous",)
OUTSIDER = ("outsider",)  # an administrator of another organisation
MEMBERS = ("viewer", "owner", "other_owner", "delivery", "security", "risk", "product", "admin")
SIGNED_IN = (*MEMBERS, "outsider")
ACTORS = (*ANON, *SIGNED_IN)

CREATORS = ("owner", "other_owner", "admin")
# Profile, stage, stop conditions, moving to a newer framework version.
PILOT_EDITORS = ("owner", "admin")
# The pilot's owner and the named owner (a reviewer role) of the response under test.
RESPONSE_EDITORS = ("owner", "security")
ADMINS = ("admin",)
# Reviews: the four signing roles; who schedules and runs a pilot's meetings (its editors and
# the reviewers); who closes a condition raised by security for the owner (its owner, the
# raising role, the pilot's editors).
SIGNERS = ("delivery", "security", "risk", "product")
ORGANISERS = (*PILOT_EDITORS, *SIGNERS)
CONDITION_CLOSERS = (*PILOT_EDITORS, "security")

# --- What they get --------------------------------------------------------------------

LOGIN = "302 to sign-in"
ADMIN_LOGIN = "302 to the admin sign-in"
Expected = int | tuple[int, ...] | str
Cells = dict[str, Expected]


def cells(*pairs: tuple[Iterable[str], Expected]) -> Cells:
    """One expected outcome per actor, given as (group, outcome) pairs covering everyone once."""
    out: Cells = {}
    for group, expected in pairs:
        for actor in group:
            assert actor not in out, f"{actor} is in two groups of one row"
            out[actor] = expected
    assert set(out) == set(ACTORS), f"a row misses {sorted(set(ACTORS) - set(out))}"
    return out


def but(*groups: Iterable[str]) -> tuple[str, ...]:
    """This organisation's members outside ``groups``."""
    taken = {actor for group in groups for actor in group}
    return tuple(actor for actor in MEMBERS if actor not in taken)


def only(allowed: Iterable[str], ok: Expected, *, outsider: Expected = 404) -> Cells:
    """An app route: sign in first; ``allowed`` members get ``ok``, other members 403."""
    allowed = tuple(allowed)
    return cells((ANON, LOGIN), (allowed, ok), (but(allowed), 403), (OUTSIDER, outsider))


def everyone(expected: Expected) -> Cells:
    return cells((ACTORS, expected))


NOT_ALLOWED = everyone(405)

EXPECTED: dict[str, dict[str, Cells]] = {
    # The portfolio and the organisation switcher: the outsider sees their own organisation.
    "home": {"GET": only(MEMBERS, 200, outsider=200), "POST": NOT_ALLOWED},
    "organisation-switch": {"GET": NOT_ALLOWED, "POST": only(MEMBERS, 302)},
    "pilot-new": {"GET": only(CREATORS, 200, outsider=200), "POST": only(CREATORS, 302, outsider=302)},
    # One pilot and what hangs off it.
    "pilot": {"GET": only(MEMBERS, 200), "POST": NOT_ALLOWED},
    "pilot-export": {"GET": only(MEMBERS, 200), "POST": NOT_ALLOWED},
    "pilot-edit": {"GET": only(PILOT_EDITORS, 200), "POST": only(PILOT_EDITORS, 302)},
    "pilot-stage": {"GET": NOT_ALLOWED, "POST": only(PILOT_EDITORS, 302)},
    "assessment-migrate": {"GET": only(PILOT_EDITORS, 200), "POST": only(PILOT_EDITORS, 302)},
    "stop-condition-new": {"GET": NOT_ALLOWED, "POST": only(PILOT_EDITORS, 302)},
    "stop-condition-status": {"GET": NOT_ALLOWED, "POST": only(PILOT_EDITORS, 302)},
    "response-save": {"GET": NOT_ALLOWED, "POST": only(RESPONSE_EDITORS, 200)},
    # A line opened or closed in place; without htmx it leads to the pilot page at that criterion.
    "response-row": {"GET": only(MEMBERS, 302), "POST": NOT_ALLOWED},
    "evidence-new": {"GET": only(RESPONSE_EDITORS, 200), "POST": only(RESPONSE_EDITORS, 200)},
    "evidence-download": {"GET": only(MEMBERS, 200), "POST": NOT_ALLOWED},
    # Linked systems and checks: every member reads them and asks for a re-check; the
    # pilot's editors link systems and write rules (the rule posted here names no system: 422).
    "linked-systems": {"GET": only(MEMBERS, 200), "POST": NOT_ALLOWED},
    "linked-system-new": {"GET": NOT_ALLOWED, "POST": only(PILOT_EDITORS, 302)},
    "check-new": {"GET": NOT_ALLOWED, "POST": only(PILOT_EDITORS, 422)},
    "check-status": {"GET": only(MEMBERS, 200), "POST": only(MEMBERS, 302)},
    # Reviews: every member reads the gate, meetings and meeting mode and comments; the four
    # roles sign (each for their own role) and raise conditions; editors and reviewers run meetings.
    "pilot-reviews": {"GET": only(MEMBERS, 200), "POST": NOT_ALLOWED},
    "pilot-gate": {"GET": only(MEMBERS, 200), "POST": NOT_ALLOWED},
    "meeting-new": {"GET": NOT_ALLOWED, "POST": only(ORGANISERS, 302)},
    "meeting": {"GET": only(MEMBERS, 200), "POST": NOT_ALLOWED},
    "meeting-edit": {"GET": NOT_ALLOWED, "POST": only(ORGANISERS, 302)},
    "meeting-status": {"GET": NOT_ALLOWED, "POST": only(ORGANISERS, 302)},
    "meeting-ics": {"GET": only(MEMBERS, 200), "POST": NOT_ALLOWED},
    "meeting-present": {"GET": only(MEMBERS, 200), "POST": NOT_ALLOWED},
    "meeting-decide": {"GET": NOT_ALLOWED, "POST": only(SIGNERS, 302)},
    # Without htmx a criterion's comments lead to the pilot page at that criterion.
    "response-comments": {"GET": only(MEMBERS, 302), "POST": only(MEMBERS, 302)},
    "condition-new": {"GET": NOT_ALLOWED, "POST": only(SIGNERS, 302)},
    "condition-status": {"GET": NOT_ALLOWED, "POST": only(CONDITION_CLOSERS, 302)},
    "linked-system-edit": {"GET": only(PILOT_EDITORS, 200), "POST": only(PILOT_EDITORS, 302)},
    "check-edit": {"GET": only(PILOT_EDITORS, 200), "POST": only(PILOT_EDITORS, 302)},
    # Reports: every member reads a pilot's reports, asks for one and downloads it (the portfolio
    # is the outsider's own organisation's); a status line without htmx leads back to its list.
    "pilot-reports": {"GET": only(MEMBERS, 200), "POST": NOT_ALLOWED},
    "pilot-report-new": {"GET": NOT_ALLOWED, "POST": only(MEMBERS, 302)},
    "portfolio-report": {"GET": only(MEMBERS, 200, outsider=200), "POST": NOT_ALLOWED},
    "portfolio-report-new": {"GET": NOT_ALLOWED, "POST": only(MEMBERS, 302, outsider=302)},
    "report-status": {"GET": only(MEMBERS, 302), "POST": NOT_ALLOWED},
    "report-download": {"GET": only(MEMBERS, 200), "POST": NOT_ALLOWED},
    # Frameworks: every member reads them (the outsider sees their own organisation's list);
    # the editor and the members page are for administrators only.
    "framework-list": {"GET": only(MEMBERS, 200, outsider=200), "POST": NOT_ALLOWED},
    "framework-detail": {"GET": only(MEMBERS, 200), "POST": NOT_ALLOWED},
    "criterion-detail": {"GET": only(MEMBERS, 200), "POST": NOT_ALLOWED},
    "framework-copy": {"GET": NOT_ALLOWED, "POST": only(ADMINS, 302)},
    "framework-publish": {"GET": only(ADMINS, 200), "POST": only(ADMINS, 302)},
    "gap-edit": {"GET": only(ADMINS, 200), "POST": only(ADMINS, 302)},
    "criterion-new": {"GET": only(ADMINS, 200), "POST": only(ADMINS, 302)},
    "criterion-edit": {"GET": only(ADMINS, 200), "POST": only(ADMINS, 302)},
    "criterion-delete": {"GET": NOT_ALLOWED, "POST": only(ADMINS, 302)},
    "members": {"GET": only(ADMINS, 200, outsider=200), "POST": NOT_ALLOWED},
    "alerts": {"GET": only(ADMINS, 200, outsider=200), "POST": only(ADMINS, 302, outsider=302)},
    "sow": {"GET": only(MEMBERS, 200), "POST": NOT_ALLOWED},
    "sow-edit": {"GET": only(PILOT_EDITORS, 200), "POST": only(PILOT_EDITORS, 302)},
    "sow-download": {"GET": only(MEMBERS, 200), "POST": NOT_ALLOWED},
    "member-invite": {"GET": NOT_ALLOWED, "POST": only(ADMINS, 302, outsider=302)},
    "member-role-grant": {"GET": NOT_ALLOWED, "POST": only(ADMINS, 302)},
    "member-role-revoke": {"GET": NOT_ALLOWED, "POST": only(ADMINS, 302)},
    # Invitations: each person answers their own (the outsider is invited here); admins withdraw them.
    "invitations": {"GET": cells((ANON, LOGIN), (SIGNED_IN, 200)), "POST": NOT_ALLOWED},
    "invitation-accept": {"GET": NOT_ALLOWED, "POST": cells((ANON, LOGIN), (MEMBERS, 404), (OUTSIDER, 302))},
    "invitation-decline": {"GET": NOT_ALLOWED, "POST": cells((ANON, LOGIN), (MEMBERS, 404), (OUTSIDER, 302))},
    "invitation-revoke": {"GET": NOT_ALLOWED, "POST": only(ADMINS, 302)},
    "organisation-choose": {"GET": cells((ANON, LOGIN), (SIGNED_IN, 200)), "POST": NOT_ALLOWED},
    # The API schema describes the API to signed-in people only.
    "api-schema": {
        "GET": cells((ANON, (401, 403)), (SIGNED_IN, 200)),
        "POST": cells((ANON, (401, 403, 405)), (SIGNED_IN, 405)),
    },
    # The icon browsers ask for at the site root: public.
    "favicon": {"GET": everyone(200), "POST": NOT_ALLOWED},
    # Signing in and out, and passwords: public pages, except changing one's password.
    "login": {"GET": everyone(200), "POST": everyone(302)},
    "admin-login": {"GET": everyone(200), "POST": everyone(302)},
    "logout": {"GET": NOT_ALLOWED, "POST": everyone(LOGIN)},
    "password_change": {"GET": cells((ANON, LOGIN), (SIGNED_IN, 200)), "POST": cells((ANON, LOGIN), (SIGNED_IN, 302))},
    "password_change_done": {
        "GET": cells((ANON, LOGIN), (SIGNED_IN, 200)),
        "POST": cells((ANON, LOGIN), (SIGNED_IN, 405)),
    },
    "password_reset": {"GET": everyone(200), "POST": everyone(302)},
    "password_reset_done": {"GET": everyone(200), "POST": NOT_ALLOWED},
    "password_reset_confirm": {"GET": everyone(302), "POST": everyone(302)},
    "password_reset_complete": {"GET": everyone(200), "POST": NOT_ALLOWED},
}

# --- The routes, from the resolver ----------------------------------------------------


def _walk(patterns: Iterable[URLPattern | URLResolver], namespace: str = "") -> Iterator[tuple[str, str]]:
    """(namespace, name) of every route; unnamed routes come out with an empty name."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = ":".join(part for part in (namespace, pattern.namespace or "") if part)
            yield from _walk(pattern.url_patterns, inner)
        else:
            yield namespace, pattern.name or ""


def app_routes() -> list[str]:
    """Every route name outside the admin (which has its own test below)."""
    names = {name for namespace, name in _walk(get_resolver().url_patterns) if namespace.split(":")[0] != "admin"}
    return sorted(names)


def _takes_no_arguments(name: str) -> bool:
    try:
        reverse(name)
    except NoReverseMatch:
        return False
    return True


def admin_routes() -> list[str]:
    """The admin's routes that take no arguments, except signing in and out."""
    names = {f"admin:{name}" for namespace, name in _walk(get_resolver().url_patterns) if namespace == "admin"}
    return sorted(name for name in names - {"admin:login", "admin:logout"} if _takes_no_arguments(name))


# --- The world the requests are made in -----------------------------------------------


@dataclass(frozen=True)
class World:
    people: dict[str, User]
    org: Organisation
    pilot: Pilot  # owned by "owner"; the pilot under test
    pilot_names: tuple[str, ...]  # this organisation's pilots
    foreign_pilot_names: tuple[str, ...]  # the outsider's organisation's pilots
    response: Response  # named owner: security
    other_owner_response: Response  # named owner: other_owner, on the same pilot
    evidence: Evidence  # a file, on ``response``
    stop: StopCondition
    published: Framework  # the current version
    copyable: Framework  # published, with no draft pending
    draft: Framework
    gap: Gap  # of the draft
    criterion: Criterion  # of the draft
    spare: User  # a member whose roles the members page changes
    spare_membership: Membership
    invitation: Invitation  # to the outsider, from this organisation
    check: Check  # on a linked system of ``pilot``
    meeting: ReviewMeeting  # a scheduled review of ``pilot``, organised by its owner
    condition: Condition  # raised by security on ``response``, owned by the pilot's owner

    def response_for(self, actor: str) -> Response:
        """The response an actor is tried on: other_owner on the one they are named owner of.

        That is the case the rule is about (owning a criterion of someone else's pilot
        gives an owner no rights); everyone else meets security's response, where
        delivery shows that owning a different response gives no rights to this one.
        """
        return self.other_owner_response if actor == "other_owner" else self.response

    def username(self, actor: str) -> str:
        return self.spare.username if actor == "anonymous" else self.people[actor].username


def _person(org: Organisation, username: str, *roles: str) -> User:
    user = user_create(
        organisation=org, username=username, email=f"{username}@matrix.test", password=PASSWORD, actor=SYSTEM
    )
    for role in roles:
        membership_grant(organisation=org, user=user, role=role, actor=SYSTEM)
    return user


def _build(spec: Any) -> World:
    org = organisation_create(name="Acme Matrix", slug="acme-matrix", actor=SYSTEM)
    other_org = organisation_create(name="Globex Matrix", slug="globex-matrix", actor=SYSTEM)
    people = {actor: _person(org, actor, actor) for actor in ("viewer", "owner", "delivery", "security")}
    people |= {actor: _person(org, actor, actor) for actor in ("risk", "product", "admin")}
    people["other_owner"] = _person(org, "other_owner", Role.OWNER)
    people["outsider"] = _person(other_org, "outsider", Role.ADMIN)
    spare = _person(org, "spare", Role.VIEWER, Role.DELIVERY)
    owner, other_owner = Actor.for_user(people["owner"]), Actor.for_user(people["other_owner"])
    admin_actor = Actor.for_user(people["admin"])

    # A second framework, published before the current one and with no draft pending, is
    # what the administrator copies (a name with a pending draft cannot be copied again).
    side = framework_load(organisation=org, spec=dataclasses.replace(spec, name="Matrix side framework"), actor=SYSTEM)
    first = framework_load(organisation=org, spec=spec, actor=SYSTEM)
    framework_load(organisation=other_org, spec=spec, actor=SYSTEM)
    pilot = pilot_create(
        organisation=org, actor=owner, name="Acme claims triage", technical_owner=people["owner"], risk_tier="high"
    )
    other_pilot = pilot_create(
        organisation=org, actor=other_owner, name="Acme fraud alerts", technical_owner=people["other_owner"]
    )
    foreign = pilot_create(
        organisation=other_org,
        actor=Actor.for_user(people["outsider"]),
        name="Globex payroll assistant",
        technical_owner=people["outsider"],
    )
    # The pilot stays on version 1; version 2 is current, so it can be moved; version 3 is a draft.
    published = framework_publish(framework=framework_copy(framework=first, actor=admin_actor), actor=admin_actor)
    draft = framework_copy(framework=published, actor=admin_actor)

    rows = list(Response.objects.filter(assessment__pilot=pilot).order_by("criterion__gap__order", "criterion__order"))
    named = {"security": rows[0], "other_owner": rows[1], "delivery": rows[2]}
    for actor, row in named.items():
        named[actor] = response_update(
            response=row, actor=owner, expected_version=row.version, owner=people[actor]
        ).response
    upload = SimpleUploadedFile("eval.csv", b"case,passed\n1,true\n", content_type="text/csv")
    evidence_add(
        response=named["security"],
        actor=owner,
        kind="file",
        title="Evaluation run",
        effective_date=timezone.localdate() - dt.timedelta(days=1),
        upload=upload_check(upload),
    )
    stop = stop_condition_add(
        pilot=pilot, actor=owner, condition="Pause below 90%", metric="accuracy", comparator="lt", threshold=Decimal(1)
    )
    gap = draft.gaps.order_by("order")[0]
    system = linked_system_create(
        pilot=pilot, actor=owner, kind="eval_results", name="Golden set",
        configuration={"fixture": "junit-goldenset-pass.xml"},
    )  # fmt: skip
    check = check_create(
        system=system, criterion=named["security"].criterion, actor=owner, name="Pass rate", metric="pass_rate",
        comparator="gte", threshold=0.9,
    )  # fmt: skip
    meeting = meeting_schedule(
        pilot=pilot, actor=owner, scheduled_at=timezone.now() + dt.timedelta(days=3),
        participants=[(people[role], role) for role in SIGNERS],
    )  # fmt: skip
    condition = condition_raise(
        response=named["security"], actor=Actor.for_user(people["security"]), role="security",
        text="Rotate the provider key", owner=people["owner"], due_date=timezone.localdate() + dt.timedelta(days=9),
    )  # fmt: skip
    return World(
        meeting=meeting,
        condition=condition,
        check=check,
        people=people,
        org=org,
        pilot=pilot,
        pilot_names=(pilot.name, other_pilot.name),
        foreign_pilot_names=(foreign.name,),
        response=named["security"],
        other_owner_response=named["other_owner"],
        evidence=Evidence.objects.get(response=named["security"]),
        stop=stop,
        published=published,
        copyable=side,
        draft=draft,
        gap=gap,
        criterion=draft.criteria.order_by("gap__order", "order")[0],
        spare=spare,
        spare_membership=Membership.objects.get(organisation=org, user=spare, role=Role.DELIVERY),
        invitation=invitation_create(
            organisation=org,
            invitee=people["outsider"],
            email=people["outsider"].email,
            roles=[Role.VIEWER],
            actor=admin_actor,
            accept_url="http://testserver/invitations/",
        ),
    )


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory, default_spec) -> Iterator[World]:
    """Built once; each test's own transaction, and each request's savepoint, roll back inside it."""
    storage: Path = tmp_path_factory.mktemp("route-matrix")
    with (
        override_settings(
            MEDIA_ROOT=storage / "media",
            AUDIT_CHECKPOINT_DIR=storage / "checkpoints",
            AUDIT_SIGNING_KEY_PATH=storage / "audit-signing-key.pem",
            # Hundreds of sign-ins and password changes: the hasher is not what is under test.
            PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        ),
        django_db_blocker.unblock(),
        transaction.atomic(),
    ):
        yield _build(default_spec)
        transaction.set_rollback(True)


@pytest.fixture(scope="module")
def browser() -> Client:
    return Client(raise_request_exception=False)


@pytest.fixture(autouse=True)
def _isolated_storage() -> None:
    """Replaces the per-test storage of conftest: the world's files live in ``world``'s directory."""


# --- How each route is asked ----------------------------------------------------------

Args = Callable[[World, str], dict[str, Any]]

URL_ARGS: dict[str, Args] = {
    "organisation-switch": lambda w, a: {"slug": w.org.slug},
    "pilot": lambda w, a: {"pk": w.pilot.pk},
    "pilot-edit": lambda w, a: {"pk": w.pilot.pk},
    "pilot-export": lambda w, a: {"pk": w.pilot.pk, "fmt": "csv"},
    "pilot-stage": lambda w, a: {"pk": w.pilot.pk},
    "assessment-migrate": lambda w, a: {"pk": w.pilot.pk},
    "stop-condition-new": lambda w, a: {"pk": w.pilot.pk},
    "stop-condition-status": lambda w, a: {"pk": w.stop.pk},
    "response-save": lambda w, a: {"pk": w.response_for(a).pk},
    "response-row": lambda w, a: {"pk": w.response_for(a).pk},
    "evidence-new": lambda w, a: {"pk": w.response_for(a).pk},
    "evidence-download": lambda w, a: {"pk": w.evidence.pk},
    "linked-systems": lambda w, a: {"pk": w.pilot.pk},
    "linked-system-new": lambda w, a: {"pk": w.pilot.pk},
    "check-new": lambda w, a: {"pk": w.pilot.pk},
    "check-status": lambda w, a: {"pk": w.check.pk},
    "pilot-reviews": lambda w, a: {"pk": w.pilot.pk},
    "pilot-gate": lambda w, a: {"pk": w.pilot.pk},
    "meeting-new": lambda w, a: {"pk": w.pilot.pk},
    "meeting": lambda w, a: {"pk": w.meeting.pk},
    "meeting-edit": lambda w, a: {"pk": w.meeting.pk},
    "meeting-status": lambda w, a: {"pk": w.meeting.pk},
    "meeting-ics": lambda w, a: {"pk": w.meeting.pk},
    "meeting-present": lambda w, a: {"pk": w.meeting.pk},
    "meeting-decide": lambda w, a: {"pk": w.meeting.pk},
    "response-comments": lambda w, a: {"pk": w.response.pk},
    "condition-new": lambda w, a: {"pk": w.response.pk},
    "condition-status": lambda w, a: {"pk": w.condition.pk},
    "linked-system-edit": lambda w, a: {"pk": w.check.linked_system_id},
    "check-edit": lambda w, a: {"pk": w.check.pk},
    "sow": lambda w, a: {"pk": w.pilot.pk},
    "sow-edit": lambda w, a: {"pk": w.pilot.pk},
    "sow-download": lambda w, a: {"pk": w.pilot.pk, "fmt": "md"},
    "pilot-reports": lambda w, a: {"pk": w.pilot.pk},
    "pilot-report-new": lambda w, a: {"pk": w.pilot.pk},
    "report-status": lambda w, a: {"pk": _done_report(w).pk},
    "report-download": lambda w, a: {"pk": _done_report(w).pk},
    "framework-detail": lambda w, a: {"pk": w.published.pk},
    "framework-copy": lambda w, a: {"pk": w.copyable.pk},
    "framework-publish": lambda w, a: {"pk": w.draft.pk},
    "gap-edit": lambda w, a: {"pk": w.gap.pk},
    "criterion-new": lambda w, a: {"gap_pk": w.gap.pk},
    "criterion-detail": lambda w, a: {"pk": w.criterion.pk},  # a draft's: readable by every member too
    "criterion-edit": lambda w, a: {"pk": w.criterion.pk},
    "criterion-delete": lambda w, a: {"pk": w.criterion.pk},
    "member-role-grant": lambda w, a: {"user_id": w.spare.pk},
    "member-role-revoke": lambda w, a: {"membership_id": w.spare_membership.pk},
    "invitation-accept": lambda w, a: {"pk": w.invitation.pk},
    "invitation-decline": lambda w, a: {"pk": w.invitation.pk},
    "invitation-revoke": lambda w, a: {"pk": w.invitation.pk},
    "password_reset_confirm": lambda w, a: {
        "uidb64": urlsafe_base64_encode(force_bytes(w.spare.pk)),
        "token": default_token_generator.make_token(w.spare),
    },
}


def _done_report(w: World) -> Report:
    """A finished report of the pilot under test (made once; rendering is not what is asked here)."""
    found = Report.objects.filter(pilot=w.pilot, status=ReportStatus.DONE).first()
    if found is not None:
        return found
    content = b"%PDF-1.7 matrix"
    name = default_storage.save("reports/matrix/report.pdf", ContentFile(content))
    return Report.objects.create(
        organisation=w.org,
        pilot=w.pilot,
        kind=ReportKind.PILOT,
        status=ReportStatus.DONE,
        requested_at=timezone.now(),
        file=name,
        sha256=hashlib.sha256(content).hexdigest(),
        size=len(content),
    )


def _response_data(w: World, actor: str) -> dict[str, Any]:
    row = w.response_for(actor)
    fields = {"status": "met", "justification": "Golden set passed", "owner": row.owner_id, "version": row.version}
    return {f"r{row.pk}-{name}": value for name, value in fields.items()}


def _sow_version(w: World) -> int:
    from assessments.reports.models import SowText

    return SowText.objects.filter(pilot=w.pilot).values_list("version", flat=True).first() or 0


def _criterion_data(w: World, code: str) -> dict[str, Any]:
    c = w.criterion
    return {
        "code": code, "title": "Checked by the route matrix", "severity_high": c.severity_high, "guidance": c.guidance,
        "cost_if_missing": c.cost_if_missing, "evidence_expected": c.evidence_expected,
        "check_kind": c.check_kind, "max_evidence_age_days": c.max_evidence_age_days,
    }  # fmt: skip


# Valid input, so a permitted actor succeeds and a refused one meets the refusal, not a form error.
POST_DATA: dict[str, Args] = {
    "linked-system-new": lambda w, a: {
        "kind": "http_json",
        "name": f"Scores for {a}",
        "url": "https://scores.example.com/api",
        "json_path": "data.pass_rate",
        "check_interval_minutes": "60",
    },
    # Read fresh: an earlier actor's save moves the token and the rule version on.
    "linked-system-edit": lambda w, a: {
        "name": "Golden set (edited)",
        "check_interval_minutes": "30",
        "enabled": "on",
        "edit_token": LinkedSystem.objects.get(pk=w.check.linked_system_id).edit_token(),
    },
    "check-edit": lambda w, a: {
        "name": "Pass rate",
        "metric": "pass_rate",
        "comparator": "gte",
        "threshold": "0.8",
        "rule_version": str(Check.objects.get(pk=w.check.pk).rule_version),
    },
    "pilot-new": lambda w, a: {"name": "Matrix pilot", "risk_tier": "limited", "data_sensitivity": "internal"},
    "pilot-edit": lambda w, a: {
        "name": w.pilot.name,
        "description": "Edited by the route matrix",
        "risk_tier": "high",
        "data_sensitivity": "internal",
        "technical_owner": w.people["owner"].pk,
    },
    "pilot-stage": lambda w, a: {"stage": "paused"},
    "pilot-report-new": lambda w, a: {"kind": "pilot"},
    "meeting-new": lambda w, a: {
        "scheduled_at": (timezone.localtime() + dt.timedelta(days=5)).strftime("%Y-%m-%dT10:00"),
        "duration_minutes": "60",
        "location": "Room 1",
        "participants": [f"{w.people[role].pk}:{role}" for role in SIGNERS],
    },
    "meeting-edit": lambda w, a: {"minutes": "Agreed to revisit the guardrails."},
    "meeting-status": lambda w, a: {"action": "start"},
    # Each person signs for their own role; everyone else tries security's.
    "meeting-decide": lambda w, a: {"role": a if a in SIGNERS else "security", "decision": "approve"},
    "response-comments": lambda w, a: {"body": f"A question from {a}"},
    "condition-new": lambda w, a: {
        "role": a if a in SIGNERS else "security",
        "text": "Load-test before launch",
        "owner": w.people["owner"].pk,
        "due_date": (timezone.localdate() + dt.timedelta(days=14)).isoformat(),
    },
    "condition-status": lambda w, a: {"action": "met", "resolution": "Rotated on Monday"},
    "stop-condition-new": lambda w, a: {
        "condition": "Pause on complaints",
        "metric": "complaints",
        "comparator": "gt",
        "threshold": "3",
    },
    "stop-condition-status": lambda w, a: {"status": "triggered"},
    "response-save": _response_data,
    "evidence-new": lambda w, a: {
        "kind": "link",
        "title": "Run log",
        "url": "https://example.test/run",
        "effective_date": (timezone.localdate() - dt.timedelta(days=1)).isoformat(),
    },
    "gap-edit": lambda w, a: {"name": w.gap.name, "weight": w.gap.weight, "description": "Edited"},
    "criterion-new": lambda w, a: _criterion_data(w, "ZZ-99"),
    "criterion-edit": lambda w, a: _criterion_data(w, w.criterion.code),
    # Each actor saves over the version the last one left.
    "sow-edit": lambda w, a: {"preamble": f"Written by {a}", "scope": "", "version": str(_sow_version(w))},
    "alerts": lambda w, a: {"action": "set", "url": "https://hooks.example.com/services/T0/B0/x"},
    "member-invite": lambda w, a: {"email": "invitee@matrix.test", "username": "invitee", "roles": ["viewer"]},
    "member-role-grant": lambda w, a: {"role": "risk"},
    "login": lambda w, a: {"username": w.username(a), "password": PASSWORD},
    "admin-login": lambda w, a: {"username": w.username(a), "password": PASSWORD},
    "password_change": lambda w, a: {
        "old_password": PASSWORD,
        "new_password1": NEW_PASSWORD,
        "new_password2": NEW_PASSWORD,
    },
    "password_reset": lambda w, a: {"email": w.spare.email},
}


# The checklist saves inline: over htmx a refused form is a 422, where a plain post would redirect.
HTMX_POSTS = {"response-save", "evidence-new"}


@dataclass(frozen=True)
class Answer:
    status: int
    location: str  # the redirect, or for htmx the page HX-Redirect sends the whole browser to
    body: str
    error: str  # the exception behind a 5xx, if the view raised one
    complaints: tuple[str, ...]  # error messages queued for the next page


class Asker:
    """Asks a URL as one actor, each request in a savepoint rolled back afterwards.

    One client serves every request (each new client loads the middleware again), and
    each actor signs in once per test; the request then only carries their session.
    """

    def __init__(self, client: Client, world: World) -> None:
        self.client, self.world = client, world
        self.sessions: dict[str, str] = {}

    def _session(self, actor: str) -> SimpleCookie:
        if actor == "anonymous":
            return SimpleCookie()
        if actor not in self.sessions:
            self.client.cookies = SimpleCookie()
            self.client.force_login(self.world.people[actor])
            self.sessions[actor] = self.client.cookies[settings.SESSION_COOKIE_NAME].value
        return SimpleCookie({settings.SESSION_COOKIE_NAME: self.sessions[actor]})

    def __call__(self, actor: str, method: str, url: str, data: dict[str, Any] | None = None) -> Answer:
        client = self.client
        client.cookies = self._session(actor)
        headers = {"HX-Request": "true"} if method == "POST" and resolve(url).url_name in HTMX_POSTS else {}
        with transaction.atomic():
            response = client.get(url) if method == "GET" else client.post(url, data or {}, headers=headers)
            # Reading a streamed body to its end closes it; closing it again would fire
            # request_finished and drop the database connection in the middle of the world.
            raw = b"".join(response.streaming_content) if response.streaming else response.content  # type: ignore[attr-defined]
            complaints = tuple(str(m) for m in get_messages(response.wsgi_request) if m.level >= messages.ERROR)
            transaction.set_rollback(True)
        exc_info = getattr(response, "exc_info", None)
        # Over htmx the sign-in redirect comes as HX-Redirect (the browser goes there whole).
        redirect = response.get("Location", "") or response.get("HX-Redirect", "")
        return Answer(
            status=302 if response.get("HX-Redirect") else response.status_code,
            location=redirect,
            body=raw.decode("utf-8", errors="replace"),
            error=repr(exc_info[1]) if exc_info else "",
            complaints=complaints,
        )


@pytest.fixture
def ask(world: World, browser: Client, db: None) -> Asker:
    return Asker(browser, world)


def _matches(expected: Expected, answer: Answer, *, login_url: str) -> bool:
    to_login = answer.status == 302 and answer.location.startswith(login_url)
    if expected == LOGIN:
        return to_login
    if expected == ADMIN_LOGIN:
        return answer.status == 302 and answer.location.startswith(reverse("admin:login"))
    allowed = expected if isinstance(expected, tuple) else (expected,)
    # A redirect to the sign-in page is a refusal, never the success a 302 cell means; nor
    # is a redirect carrying an error message (a form refused, then shown on the next page).
    return answer.status in allowed and not to_login and not (answer.status < 400 and answer.complaints)


def _shown(answer: Answer) -> str:
    shown = f"{answer.status} → {answer.location}" if answer.location else str(answer.status)
    return shown + "".join(f" saying {complaint!r}" for complaint in answer.complaints)


def _leaked(world: World, actor: str, answer: Answer) -> list[str]:
    if actor == "anonymous" or answer.status != 200:
        return []
    foreign = world.pilot_names if actor == "outsider" else world.foreign_pilot_names
    return [name for name in foreign if name in answer.body]


# --- The tests ------------------------------------------------------------------------


def test_every_route_has_a_row_and_every_row_a_route():
    routes = app_routes()
    assert "" not in routes, "name every route, so the matrix can have a row for it"
    problems = [f"add {name} to EXPECTED" for name in routes if name not in EXPECTED]
    problems += [f"add {name} to URL_ARGS" for name in routes if name not in URL_ARGS and not _takes_no_arguments(name)]
    problems += [
        f"remove {name} from {table} (no such route)"
        for table, names in (("EXPECTED", EXPECTED), ("URL_ARGS", URL_ARGS), ("POST_DATA", POST_DATA))
        for name in names
        if name not in routes
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", app_routes())
def test_the_route_answers_every_actor_as_the_table_says(name: str, world: World, ask: Asker) -> None:
    assert name in EXPECTED, f"add {name} to EXPECTED"
    login_url = reverse("login")
    mismatches: list[str] = []
    server_errors: list[str] = []
    leaks: list[str] = []
    for method, row in EXPECTED[name].items():
        for actor in ACTORS:
            kwargs = URL_ARGS[name](world, actor) if name in URL_ARGS else {}
            url = reverse(name, kwargs=kwargs)
            data = POST_DATA[name](world, actor) if name in POST_DATA else {}
            answer = ask(actor, method, url, data)
            cell = f"{name:<24} {method:<4} {actor:<12}"
            if answer.status >= 500:
                server_errors.append(f"{cell} got {answer.status} {answer.error}")
            elif not _matches(row[actor], answer, login_url=login_url):
                mismatches.append(f"{cell} expected {row[actor]}, got {_shown(answer)}")
            if method == "GET":
                leaks.extend(f"{cell} shows {pilot!r}" for pilot in _leaked(world, actor, answer))
    report = [
        ("server errors (5xx)", server_errors),
        ("another organisation's pilot shown", leaks),
        ("outcomes that differ from EXPECTED (route, method, actor)", mismatches),
    ]
    failures = "\n\n".join(f"{title}:\n  " + "\n  ".join(lines) for title, lines in report if lines)
    assert not failures, failures


def test_the_admin_turns_away_everyone_who_is_not_staff(world: World, ask: Asker) -> None:
    urls = [reverse(name) for name in admin_routes()]
    urls.append(reverse("admin:pilots_pilot_change", args=[world.pilot.pk]))
    assert {reverse("admin:index"), reverse("admin:pilots_pilot_changelist")} <= set(urls)
    refused = []
    for url in urls:
        for actor in ACTORS:
            answer = ask(actor, "GET", url)
            if not _matches(ADMIN_LOGIN, answer, login_url=reverse("login")):
                refused.append(f"{url} {actor}: expected {ADMIN_LOGIN}, got {_shown(answer)}")
            if any(name in answer.body for name in (*world.pilot_names, *world.foreign_pilot_names)):
                refused.append(f"{url} {actor}: shows a pilot's name")
    assert not refused, "\n".join(refused)
    # The same pages do open for staff, so the redirects above are about who asks.
    staff = User.objects.create_superuser("matrix-staff", "staff@matrix.test", PASSWORD)
    client = Client()
    client.force_login(staff)
    assert client.get(reverse("admin:index")).status_code == 200
