"""Table-driven tests for the pure scoring functions."""

from __future__ import annotations

import datetime as dt

import pytest

from assessments.frameworks.scoring import (
    EXPIRING,
    FRESH,
    STALE,
    CriterionRow,
    evidence_expiry,
    freshness_of,
    score,
)

TODAY = dt.date(2026, 11, 22)
FRESH_EVIDENCE = (TODAY + dt.timedelta(days=60),)
STALE_EVIDENCE = (TODAY - dt.timedelta(days=1),)


def row(code: str, gap: str, severity: str, status: str, *, applies: bool = True, evidence=FRESH_EVIDENCE, weight=50):
    order = {"evals": 1, "cost": 2}[gap]
    return CriterionRow(
        code=code,
        title=f"Criterion {code}",
        gap_key=gap,
        gap_name=gap.title(),
        gap_order=order,
        gap_weight=weight,
        severity=severity,
        status=status,
        applies=applies,
        evidence_expiries=evidence,
    )


@pytest.mark.parametrize(
    ("rows", "evals", "cost", "overall", "ready", "blocker_codes"),
    [
        pytest.param(
            [row("E1", "evals", "blocking", "met"), row("C1", "cost", "minor", "met")],
            100,
            100,
            100,
            True,
            [],
            id="everything met with fresh evidence is ready",
        ),
        pytest.param(
            [
                row("E1", "evals", "blocking", "met"),
                row("E2", "evals", "minor", "not_met"),
                row("C1", "cost", "major", "met"),
            ],
            75,
            100,
            88,
            True,
            [],
            id="a minor gap lowers the score but does not block",
        ),
        pytest.param(
            [row("E1", "evals", "blocking", "partly_met"), row("C1", "cost", "major", "met")],
            50,
            100,
            75,
            False,
            ["E1"],
            id="a partly met blocker blocks",
        ),
        pytest.param(
            [row("E1", "evals", "blocking", "not_started", evidence=()), row("C1", "cost", "major", "met")],
            0,
            100,
            50,
            False,
            ["E1"],
            id="an unanswered blocker fails closed",
        ),
        pytest.param(
            [row("E1", "evals", "blocking", "met", evidence=STALE_EVIDENCE), row("C1", "cost", "major", "met")],
            100,
            100,
            100,
            False,
            ["E1"],
            id="a met blocker with only expired evidence blocks",
        ),
        pytest.param(
            [row("E1", "evals", "blocking", "met", evidence=()), row("C1", "cost", "major", "met")],
            100,
            100,
            100,
            False,
            ["E1"],
            id="a met blocker without evidence blocks",
        ),
        pytest.param(
            [row("E1", "evals", "blocking", "met", evidence=STALE_EVIDENCE + FRESH_EVIDENCE)],
            100,
            None,
            100,
            True,
            [],
            id="one current item among stale ones is enough",
        ),
        pytest.param(
            [row("E1", "evals", "blocking", "not_met", applies=False), row("E2", "evals", "major", "met")],
            100,
            None,
            100,
            True,
            [],
            id="a blocker outside the pilot's risk tier is ignored",
        ),
        pytest.param(
            [row("E1", "evals", "blocking", "not_applicable"), row("E2", "evals", "minor", "partly_met")],
            50,
            None,
            50,
            True,
            [],
            id="not applicable is excluded from score and blockers",
        ),
        pytest.param(
            [row("E1", "evals", "blocking", "not_applicable")],
            None,
            None,
            None,
            False,
            [],
            id="nothing applicable is not ready",
        ),
        pytest.param(
            [row("E1", "evals", "minor", "met", weight=80), row("C1", "cost", "minor", "not_met", weight=20)],
            100,
            0,
            80,
            True,
            [],
            id="overall weights gaps by their weight",
        ),
    ],
)
def test_it_scores_and_decides_readiness(rows, evals, cost, overall, ready, blocker_codes):
    card = score(rows, today=TODAY)
    gaps = {g.key: g.score for g in card.gaps}
    assert gaps.get("evals") == evals
    assert gaps.get("cost") == cost
    assert card.overall == overall
    assert card.is_ready is ready
    assert [b.code for b in card.blockers] == blocker_codes
    assert bool(card.reasons) is not ready


def test_it_lists_a_reason_per_blocker():
    card = score(
        [row("E1", "evals", "blocking", "not_met"), row("E2", "evals", "blocking", "not_started", evidence=())],
        today=TODAY,
    )
    assert card.reasons == ["E1 Criterion E1: not met", "E2 Criterion E2: unanswered"]
    assert card.gap("evals").blocking_open == 2


@pytest.mark.parametrize(
    ("effective", "expires", "max_age", "expected"),
    [
        (dt.date(2026, 1, 1), None, 30, dt.date(2026, 1, 31)),
        (dt.date(2026, 1, 1), dt.date(2026, 1, 10), 30, dt.date(2026, 1, 10)),
        (dt.date(2026, 1, 1), dt.date(2026, 6, 1), 30, dt.date(2026, 1, 31)),
    ],
)
def test_evidence_expires_at_the_sooner_of_its_date_and_max_age(effective, expires, max_age, expected):
    assert evidence_expiry(effective_date=effective, expires_on=expires, max_age_days=max_age) == expected


@pytest.mark.parametrize(
    ("offset_days", "expected"),
    [(-1, STALE), (0, EXPIRING), (14, EXPIRING), (15, FRESH)],
)
def test_freshness_boundaries(offset_days, expected):
    assert freshness_of(TODAY + dt.timedelta(days=offset_days), TODAY) == expected


def test_it_counts_freshness_of_applicable_criteria_only():
    card = score(
        [
            row("E1", "evals", "major", "met", evidence=STALE_EVIDENCE + FRESH_EVIDENCE),
            row("E2", "evals", "major", "met", evidence=(TODAY + dt.timedelta(days=3),)),
            row("E3", "evals", "major", "met", applies=False, evidence=STALE_EVIDENCE),
        ],
        today=TODAY,
    )
    assert (card.freshness.fresh, card.freshness.expiring, card.freshness.stale) == (1, 1, 1)
