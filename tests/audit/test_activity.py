"""The activity feed reads as sentences about people, not ids."""

from __future__ import annotations

from assessments.audit.selectors import activity_for_pilot
from assessments.pilots.models import Response
from assessments.pilots.services import pilot_create, response_update


def test_the_feed_names_people_where_the_trail_stores_their_account(
    framework, users, owner_actor, django_assert_num_queries
):
    users["security"].first_name, users["security"].last_name = "Sam", "Sørensen"
    users["security"].save()
    pilot = pilot_create(
        organisation=framework.organisation, actor=owner_actor, name="Feed", technical_owner=users["owner"]
    )
    row = Response.objects.select_related("criterion").filter(assessment__pilot=pilot).first()
    response_update(response=row, actor=owner_actor, expected_version=1, owner=users["security"], status="partly_met")
    with django_assert_num_queries(2):
        feed = activity_for_pilot(pilot_id=pilot.pk)
    sentence = feed[0].sentence
    assert "owner from nothing to Sam Sørensen" in sentence
    assert "status from not started to partly met" in sentence
    assert str(users["security"].pk) not in sentence.replace(row.criterion.code, "")


def test_evidence_and_review_events_read_as_sentences(framework, users, owner_actor) -> None:
    from assessments.audit.selectors import activity_for_pilot
    from assessments.evidence.services import check_create, check_run_execute, check_run_request, linked_system_create
    from assessments.pilots.models import Response
    from assessments.pilots.services import pilot_create

    pilot = pilot_create(
        organisation=framework.organisation, actor=owner_actor, name="Claims triage", technical_owner=users["owner"]
    )
    system = linked_system_create(
        pilot=pilot, actor=owner_actor, kind="eval_results", name="Golden set",
        configuration={"fixture": "junit-goldenset-pass.xml"},
    )  # fmt: skip
    criterion = Response.objects.get(assessment__pilot=pilot, criterion__code="EV-03").criterion
    check = check_create(
        system=system, criterion=criterion, actor=owner_actor, name="Pass rate", metric="pass_rate",
        comparator="gte", threshold=0.5,
    )  # fmt: skip
    check_run_execute(run_id=check_run_request(check=check, actor=owner_actor).pk)
    sentences = [row.sentence for row in activity_for_pilot(pilot_id=pilot.pk)]
    assert "owner linked the system “Golden set”" in sentences
    assert "owner added the check “Pass rate” on EV-03" in sentences
    assert "owner asked for a re-check" in sentences
    assert any(s.endswith("ran “Pass rate”: pass") for s in sentences)
