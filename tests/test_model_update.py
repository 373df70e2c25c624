"""The generic update helper: sets only the fields it is allowed to, validates, saves what changed."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from assessments.frameworks.models import Gap
from assessments.model_update import model_update


@pytest.fixture
def gap(framework) -> Gap:
    return framework.gaps.get(key="evals")


def test_it_sets_validates_and_saves_only_the_changed_fields(gap):
    with CaptureQueriesContext(connection) as queries:
        updated, changed = model_update(
            instance=gap, fields=("name", "weight", "description"), data={"name": gap.name, "weight": 42}
        )
    assert updated is gap and changed == ["weight"]
    assert Gap.objects.get(pk=gap.pk).weight == 42
    (save,) = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    assert "weight" in save and "description" not in save and '"name"' not in save


def test_nothing_changed_means_nothing_is_saved(gap, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert model_update(instance=gap, fields=("name", "weight"), data={"weight": gap.weight}) == (gap, [])


def test_a_field_outside_the_allowed_list_is_a_programming_error(gap):
    with pytest.raises(TypeError, match="key"):
        model_update(instance=gap, fields=("name",), data={"name": "Evals", "key": "cost"})
    assert Gap.objects.get(pk=gap.pk).key == "evals"


def test_an_invalid_value_is_refused_and_the_row_keeps_its_value(gap):
    weight = gap.weight
    with pytest.raises(ValidationError) as refused:
        model_update(instance=gap, fields=("weight",), data={"weight": 0})
    assert "weight" in refused.value.message_dict
    assert Gap.objects.get(pk=gap.pk).weight == weight


def test_an_update_moves_the_auto_now_stamp_in_the_same_save(framework, users, owner_actor):
    from assessments.pilots.models import Pilot
    from assessments.pilots.services import pilot_create

    pilot = pilot_create(
        organisation=framework.organisation, actor=owner_actor, name="Stamped", technical_owner=users["owner"]
    )
    before = Pilot.objects.get(pk=pilot.pk).updated_at
    from assessments.model_update import model_update

    model_update(instance=pilot, fields=("oncall_contact",), data={"oncall_contact": "#ops"})
    assert Pilot.objects.get(pk=pilot.pk).updated_at > before
