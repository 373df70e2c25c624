"""Migration 0004/0005 (severity per tier, regulation tiers) runs forward on a populated database
and changes no criterion's severity at any tier it applies to."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from assessments.frameworks.models import Criterion, RegulatoryMapping

BEFORE = [("frameworks", "0003_field_labels")]


@pytest.mark.django_db(transaction=True)
def test_the_tier_migration_keeps_every_severity_and_fills_in_obligation_tiers(framework):
    severities = {c.code: c.severity_by_tier for c in Criterion.objects.filter(framework=framework)}
    tiers = dict(RegulatoryMapping.objects.filter(scheme="eu_ai_act").values_list("pk", "obligation_from"))
    assert set(tiers.values()) >= {"high", "limited"}
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    try:
        executor.migrate(BEFORE)
        with connection.cursor() as cursor:
            cursor.execute("SELECT code, severity FROM frameworks_criterion")
            single = dict(cursor.fetchall())
        # Backwards, each criterion has its one severity again (v1 has one per criterion).
        assert single == {code: next(iter(by_tier.values())) for code, by_tier in severities.items()}
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(latest)
    assert {c.code: c.severity_by_tier for c in Criterion.objects.filter(framework=framework)} == severities
    assert dict(RegulatoryMapping.objects.filter(scheme="eu_ai_act").values_list("pk", "obligation_from")) == tiers
