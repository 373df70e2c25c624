"""Eight writers appending at once never fork the chain (real PostgreSQL)."""

from __future__ import annotations

import itertools
import threading

import pytest
from django.db import connection, connections

from assessments.audit.context import Actor
from assessments.audit.models import AuditEvent
from assessments.audit.verify import audit_verify
from assessments.pilots.models import Response
from assessments.pilots.services import pilot_create, response_update

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
WRITERS = 8
EDITS_EACH = 15


def test_eight_concurrent_writers_leave_one_gapless_chain(framework, users, owner_actor):
    if connection.vendor != "postgresql":
        pytest.skip("row-lock serialisation is exercised on PostgreSQL")
    organisation = framework.organisation
    pilots = [
        pilot_create(organisation=organisation, actor=owner_actor, name=f"Pilot {i}", technical_owner=users["owner"])
        for i in range(WRITERS)
    ]
    before = AuditEvent.objects.filter(organisation=organisation).count()
    barrier = threading.Barrier(WRITERS)
    errors: list[BaseException] = []

    def writer(pilot_id: int) -> None:
        try:
            barrier.wait()
            actor = Actor.for_user(users["owner"])
            responses = list(
                Response.objects.filter(assessment__pilot_id=pilot_id).select_related(
                    "assessment__pilot__organisation", "criterion"
                )[:EDITS_EACH]
            )
            for response in responses:
                response_update(response=response, actor=actor, expected_version=response.version, status="met")
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(p.pk,)) for p in pilots]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    sequences = list(
        AuditEvent.objects.filter(organisation=organisation)
        .order_by("sequence")
        .values_list("sequence", "prev_hash", "hash")
    )
    assert len(sequences) == before + WRITERS * EDITS_EACH
    assert [s for s, _, _ in sequences] == list(range(1, len(sequences) + 1))
    for (_, _, previous), (_, link, _) in itertools.pairwise(sequences):
        assert link == previous
    assert len({prev for _, prev, _ in sequences}) == len(sequences)  # no two events share a parent: no fork
    assert audit_verify(organisation=organisation).ok
