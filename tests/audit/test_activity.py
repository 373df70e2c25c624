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
