from __future__ import annotations

import datetime as dt

import pytest

from assessments.audit.signing import signing_key_ensure
from assessments.pilots.models import Response
from assessments.pilots.services import evidence_add, pilot_create, response_update


@pytest.fixture
def signing_key(settings):
    return signing_key_ensure()


@pytest.fixture
def busy_org(framework, users, owner_actor):
    """An organisation with a pilot, a dozen answered criteria and one uploaded file."""
    from assessments.pilots.services import UploadedEvidenceFile

    pilot = pilot_create(
        organisation=framework.organisation, actor=owner_actor, name="Audited", technical_owner=users["owner"]
    )
    responses = list(Response.objects.filter(assessment__pilot=pilot).select_related("criterion")[:12])
    for response in responses:
        response_update(response=response, actor=owner_actor, expected_version=1, status="met")
    evidence_add(
        response=responses[0],
        actor=owner_actor,
        kind="file",
        title="Eval run",
        effective_date=dt.date(2026, 11, 1),
        upload=UploadedEvidenceFile(name="run.csv", content=b"case,ok\n1,true\n", content_type="text/csv"),
    )
    return framework.organisation
