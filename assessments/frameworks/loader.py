"""Validation of framework files (JSON) before anything touches the database.

Every problem is reported with the path of the offending value, for example
``gaps[2].criteria[4].severity: 'urgent' is not one of blocking, major, minor``.
"""

from __future__ import annotations

import difflib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assessments.frameworks.catalogues import CatalogueError, catalogue
from assessments.frameworks.models import (
    SEVERITY_RANK,
    TIER_ORDER,
    CheckKind,
    GapKey,
    HeldEvidence,
    MappingScheme,
    RiskTier,
    Severity,
)
from assessments.text import text_problem

CODE_PREFIX = {
    GapKey.EVALS: "EV",
    GapKey.OBSERVABILITY: "OB",
    GapKey.GUARDRAILS: "GR",
    GapKey.GOVERNANCE: "GV",
    GapKey.COST: "CO",
    GapKey.OWNERSHIP: "OW",
}


# The fields each kind of object may carry. Anything else is refused: a misspelt key
# ("preflight_evidance") would otherwise drop its meaning without a word.
FRAMEWORK_KEYS = frozenset({"name", "version", "description", "gaps"})
GAP_KEYS = frozenset({"key", "name", "order", "weight", "description", "criteria"})
CRITERION_KEYS = frozenset(
    {
        "code",
        "title",
        "guidance",
        "cost_if_missing",
        "severity_by_tier",
        "severity",
        "risk_tiers",
        "evidence_expected",
        "check_kind",
        "preflight_evidence",
        "max_evidence_age_days",
        "mappings",
    }
)
# A mapping's title is read from the catalogue; the first format's files still carry one.
MAPPING_KEYS = frozenset({"scheme", "reference", "title"})
# The largest version a PositiveIntegerField holds on every database Django supports.
MAX_VERSION = 2_147_483_647
_VERSION = re.compile(r"[0-9]{1,10}")


class FrameworkFileError(ValueError):
    """A framework file that cannot be loaded; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass
class MappingSpec:
    scheme: str
    reference: str
    title: str
    obligation_from: str = ""  # the tier from which the cited text binds, from the catalogue


@dataclass
class CriterionSpec:
    code: str
    title: str
    guidance: str
    cost_if_missing: str
    # The tiers the criterion applies to, each with its severity there, lowest tier first.
    severity_by_tier: dict[str, str]
    evidence_expected: str
    check_kind: str
    max_evidence_age_days: int
    preflight_evidence: str = ""
    mappings: list[MappingSpec] = field(default_factory=list)

    @property
    def risk_tiers(self) -> list[str]:
        return list(self.severity_by_tier)


@dataclass
class GapSpec:
    key: str
    name: str
    order: int
    weight: int
    description: str
    criteria: list[CriterionSpec] = field(default_factory=list)


@dataclass
class FrameworkSpec:
    name: str
    version: int
    description: str
    gaps: list[GapSpec]

    @property
    def criteria_count(self) -> int:
        return sum(len(gap.criteria) for gap in self.gaps)


class _Object(dict[str, Any]):
    """A JSON object that remembers the keys it was given more than once (``json`` keeps the
    last, while a person reading the file sees the first: neither may silently win)."""

    repeated: tuple[str, ...] = ()


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    obj = _Object(pairs)
    if len(obj) != len(pairs):
        counts = Counter(key for key, _ in pairs)
        obj.repeated = tuple(key for key, count in counts.items() if count > 1)
    return obj


def _in_path(key: str) -> str:
    """A key as one step of a path; quoted when it holds spaces or characters that do not print."""
    return key if key.isprintable() and " " not in key else repr(key)


def _shown(value: str) -> str:
    """A key as a message shows it: quoted where quoting reveals case, spaces or invisible characters."""
    return value if value.isidentifier() and value.isascii() and value.islower() else repr(value)


class _Reader:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def fields(self, obj: dict[str, Any], path: str, allowed: frozenset[str], kind: str) -> None:
        """Refuse keys given twice and keys that are not fields of ``kind``, naming each."""
        for key in getattr(obj, "repeated", ()):
            self.problems.append(f"{path}.{_in_path(key)}: given more than once; give it once")
        for key in obj:
            if key not in allowed:
                close = difflib.get_close_matches(key, sorted(allowed), n=1)
                hint = f"; did you mean {close[0]}?" if close else f" (expected {', '.join(sorted(allowed))})"
                self.problems.append(f"{path}.{_in_path(key)}: not a field of a {kind}{hint}")

    def text(
        self,
        obj: dict[str, Any],
        key: str,
        path: str,
        *,
        required: bool = True,
        max_len: int = 0,
        prose: bool = False,
    ) -> str:
        """Text under the rules the editor applies (``assessments.text``): one line unless ``prose``."""
        value = obj.get(key, "")
        if not isinstance(value, str):
            self.problems.append(f"{path}.{key}: expected text, got {type(value).__name__}")
            return ""
        value = value.strip()
        if required and not value:
            self.problems.append(f"{path}.{key}: is required")
        if max_len and len(value) > max_len:
            self.problems.append(f"{path}.{key}: longer than {max_len} characters")
        problem = text_problem(value, multiline=prose)
        if problem:
            self.problems.append(f"{path}.{key}: {problem}")
        return value

    def integer(self, obj: dict[str, Any], key: str, path: str, *, low: int, high: int) -> int:
        value = obj.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            self.problems.append(f"{path}.{key}: expected a whole number, got {value!r}")
            return low
        if not low <= value <= high:
            self.problems.append(f"{path}.{key}: {value} is outside {low}..{high}")
        return value

    def choice(self, obj: dict[str, Any], key: str, path: str, choices: list[str], *, blank: bool = False) -> str:
        if key not in obj and not blank:
            self.problems.append(f"{path}.{key}: is required (one of {', '.join(choices)})")
            return ""
        value = obj.get(key, "")
        if blank and value == "":
            return ""
        if not isinstance(value, str) or value not in choices:
            self.problems.append(f"{path}.{key}: {value!r} is not one of {', '.join(choices)}")
        return str(value)

    def items(self, obj: dict[str, Any], key: str, path: str) -> list[dict[str, Any]]:
        value = obj.get(key)
        if not isinstance(value, list):
            self.problems.append(f"{path}.{key}: expected a list")
            return []
        good = []
        for index, item in enumerate(value):
            if isinstance(item, dict):
                good.append(item)
            else:
                self.problems.append(f"{path}.{key}[{index}]: expected an object")
        return good


def _severities(r: _Reader, c: dict[str, Any], cpath: str) -> dict[str, str]:
    """``severity_by_tier`` ({"minimal": "major", "high": "blocking"}), or the first format's
    single ``severity`` with its ``risk_tiers``. Either way: tiers it applies to, lowest first."""
    tier_list = ", ".join(RiskTier.values)
    # Present at all (even null) means this format was meant: null is a wrong type, not absence.
    if "severity_by_tier" in c:
        by_tier = c["severity_by_tier"]
        if "severity" in c or "risk_tiers" in c:
            r.problems.append(f"{cpath}: give severity_by_tier or severity with risk_tiers, not both")
        if not isinstance(by_tier, dict) or not by_tier:
            r.problems.append(
                f"{cpath}.severity_by_tier: expected an object mapping risk tiers ({tier_list}) to severities"
            )
            return {t: Severity.MAJOR.value for t in RiskTier.values}
        for tier in getattr(by_tier, "repeated", ()):
            r.problems.append(f"{cpath}.severity_by_tier.{_in_path(tier)}: given more than once; give it once")
        for tier in by_tier:
            if tier not in RiskTier.values:
                meant = "".join(ch for ch in tier if ch.isprintable()).strip().casefold()
                hint = f"; did you mean {meant!r}? Tiers are written in lower case" if meant in RiskTier.values else ""
                r.problems.append(f"{cpath}.severity_by_tier: {_shown(tier)} is not a risk tier ({tier_list}){hint}")
        result: dict[str, str] = {}
        for tier in RiskTier.values:
            if tier in by_tier:
                result[tier] = r.choice(by_tier, tier, f"{cpath}.severity_by_tier", Severity.values)
    else:
        severity = r.choice(c, "severity", cpath, Severity.values)
        tiers = c.get("risk_tiers")
        if not isinstance(tiers, list) or not tiers or any(t not in RiskTier.values for t in tiers):
            r.problems.append(f"{cpath}.risk_tiers: expected a non-empty list drawn from {tier_list}")
            tiers = list(RiskTier.values)
        result = {tier: severity for tier in RiskTier.values if tier in tiers}
    ranks = [SEVERITY_RANK.get(value, 0) for value in result.values()]
    if ranks != sorted(ranks):
        r.problems.append(
            f"{cpath}.severity_by_tier: a criterion cannot matter less for a riskier pilot "
            f"({', '.join(f'{t} {v}' for t, v in result.items())})"
        )
    return result


def _mapping(r: _Reader, m: dict[str, Any], mpath: str, tiers: list[str]) -> MappingSpec | None:
    """One mapping, checked against its scheme's catalogue; the title comes from the catalogue."""
    scheme = r.choice(m, "scheme", mpath, MappingScheme.values)
    reference = r.text(m, "reference", mpath, max_len=40)
    if scheme not in MappingScheme.values or not reference:
        return None
    try:
        book = catalogue(scheme)
    except CatalogueError as exc:
        r.problems.append(f"{mpath}.scheme: {exc}")
        return None
    entry = book.lookup(reference)
    if entry is None:
        hint = ""
        if scheme == MappingScheme.OWASP_LLM and ":" not in reference:
            hint = f"; write the edition, as in {reference}:2025"
        elif meant := _meant(book.entries, reference):
            hint = f"; did you mean {meant}?"
        label = MappingScheme(scheme).label
        r.problems.append(f"{mpath}.reference: {reference!r} is not in the {label} catalogue ({book.file}){hint}")
        return None
    if entry.from_tier and tiers and max(TIER_ORDER[t] for t in tiers) < TIER_ORDER[entry.from_tier]:
        r.problems.append(
            f"{mpath}.reference: {reference} binds only {entry.from_tier}-risk systems and above, "
            f"but the criterion applies only to {', '.join(tiers)}"
        )
        return None
    return MappingSpec(scheme=scheme, reference=reference, title=entry.title, obligation_from=entry.from_tier)


def _meant(entries: dict[str, Any], reference: str) -> str:
    """The catalogue id ``reference`` differs from only in case and spacing ("llm01:2025", "Art.15")."""
    key = "".join(reference.split()).casefold()
    return next((id_ for id_ in entries if "".join(id_.split()).casefold() == key), "")


def framework_parse(raw: bytes | str) -> FrameworkSpec:
    """Parse and validate a framework document; raise FrameworkFileError listing every problem."""
    try:
        data = json.loads(raw, object_pairs_hook=_object)
    except ValueError as exc:  # also bad encodings and numbers too long to convert
        raise FrameworkFileError([f"not valid JSON: {exc}"]) from exc
    except RecursionError as exc:
        raise FrameworkFileError(["not valid JSON: nested too deeply"]) from exc
    if not isinstance(data, dict):
        raise FrameworkFileError(["the top level must be an object with name, version and gaps"])
    r = _Reader()
    r.fields(data, "framework", FRAMEWORK_KEYS, "framework")
    name = r.text(data, "name", "framework", max_len=200)
    version_raw = data.get("version")
    version = 0
    if isinstance(version_raw, str) and _VERSION.fullmatch(version_raw):
        version = int(version_raw)
    elif isinstance(version_raw, int) and not isinstance(version_raw, bool):
        version = version_raw
    if not 1 <= version <= MAX_VERSION:
        r.problems.append(
            f"framework.version: expected a positive whole number up to {MAX_VERSION}, got {version_raw!r}"
        )
    description = r.text(data, "description", "framework", required=False, prose=True)
    gaps: list[GapSpec] = []
    seen_codes: set[str] = set()
    held_by: dict[str, str] = {}
    for gi, g in enumerate(r.items(data, "gaps", "framework")):
        gpath = f"gaps[{gi}]"
        r.fields(g, gpath, GAP_KEYS, "gap")
        gap = GapSpec(
            key=r.choice(g, "key", gpath, GapKey.values),
            name=r.text(g, "name", gpath, max_len=100),
            order=r.integer(g, "order", gpath, low=1, high=6),
            weight=r.integer(g, "weight", gpath, low=1, high=100),
            description=r.text(g, "description", gpath, required=False, prose=True),
        )
        criteria = r.items(g, "criteria", gpath)
        if not criteria:
            r.problems.append(f"{gpath}.criteria: a gap needs at least one criterion")
        for ci, c in enumerate(criteria):
            cpath = f"{gpath}.criteria[{ci}]"
            r.fields(c, cpath, CRITERION_KEYS, "criterion")
            code = r.text(c, "code", cpath, max_len=20)
            prefix = CODE_PREFIX.get(GapKey(gap.key)) if gap.key in GapKey.values else None
            if code in seen_codes:
                r.problems.append(f"{cpath}.code: {code!r} is used twice")
            elif prefix and code and not code.startswith(prefix + "-"):
                r.problems.append(f"{cpath}.code: {code!r} should start with {prefix}- in the {gap.key} gap")
            seen_codes.add(code)
            severity_by_tier = _severities(r, c, cpath)
            criterion = CriterionSpec(
                code=code,
                title=r.text(c, "title", cpath, max_len=200),
                guidance=r.text(c, "guidance", cpath, prose=True),
                cost_if_missing=r.text(c, "cost_if_missing", cpath, prose=True),
                severity_by_tier=severity_by_tier,
                evidence_expected=r.text(c, "evidence_expected", cpath, prose=True),
                check_kind=r.choice(c, "check_kind", cpath, CheckKind.values, blank=True),
                max_evidence_age_days=r.integer(c, "max_evidence_age_days", cpath, low=1, high=3650),
                preflight_evidence=r.choice(c, "preflight_evidence", cpath, HeldEvidence.values, blank=True),
            )
            if criterion.preflight_evidence:
                if criterion.preflight_evidence in held_by:
                    r.problems.append(
                        f"{cpath}.preflight_evidence: {criterion.preflight_evidence!r} is already the evidence "
                        f"of {held_by[criterion.preflight_evidence]}"
                    )
                held_by.setdefault(criterion.preflight_evidence, code)
            seen_refs: set[tuple[str, str]] = set()
            for mi, m in enumerate(r.items(c, "mappings", cpath) if "mappings" in c else []):
                r.fields(m, f"{cpath}.mappings[{mi}]", MAPPING_KEYS, "mapping")
                mapping = _mapping(r, m, f"{cpath}.mappings[{mi}]", criterion.risk_tiers)
                if mapping is None:
                    continue
                if (mapping.scheme, mapping.reference) in seen_refs:
                    r.problems.append(f"{cpath}.mappings[{mi}]: {mapping.scheme} {mapping.reference} is listed twice")
                seen_refs.add((mapping.scheme, mapping.reference))
                criterion.mappings.append(mapping)
            gap.criteria.append(criterion)
        gaps.append(gap)
    keys = [gap.key for gap in gaps]
    if sorted(keys) != sorted(GapKey.values):
        r.problems.append(f"framework.gaps: expected exactly the six gaps {', '.join(GapKey.values)}, got {keys}")
    orders = [gap.order for gap in gaps]
    if len(set(orders)) != len(orders):
        r.problems.append("framework.gaps: two gaps share an order")
    if r.problems:
        raise FrameworkFileError(r.problems)
    return FrameworkSpec(name=name, version=version, description=description, gaps=gaps)


def framework_read_file(path: Path) -> FrameworkSpec:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FrameworkFileError([f"cannot read {path.name}: {exc.strerror}"]) from exc
    return framework_parse(raw)


FRAMEWORKS_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "frameworks"
FRAMEWORK_V1_PATH = FRAMEWORKS_DIR / "ai-production-readiness-v1.json"
FRAMEWORK_V2_PATH = FRAMEWORKS_DIR / "ai-production-readiness-v2.json"
# What a new organisation starts with.
DEFAULT_FRAMEWORK_PATH = FRAMEWORK_V2_PATH
