"""JUnit XML as written by pytest (``--junitxml``), jest-junit, TestNG, Maven Surefire and others.

The root is ``<testsuites>`` (pytest, jest) or a bare ``<testsuite>`` (TestNG, Surefire).
Counts are the ones the runner declared in its attributes — root first, else the sum of the
leaf suites — because runners count things that have no ``<testcase>`` of their own
(pytest-subtests); only when no attribute is present are the elements counted.
``skipped`` includes pytest's xfail, which pytest itself reports as skipped.

The XML is parsed with defusedxml: entity declarations (billion laughs) and external
entities or DTDs are refused, since these files arrive from uploads and URLs.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # only for the ParseError and Element types
from typing import Any

from defusedxml import DefusedXmlException  # type: ignore[import-untyped]
from defusedxml.ElementTree import fromstring  # type: ignore[import-untyped]

from assessments.evidence.connectors.base import Facts
from assessments.evidence.formats._common import FormatError, as_int, counts_facts, fingerprint, iso_time

NAME = "junit"
LABEL = "JUnit XML"


def sniff(text: str) -> bool:
    head = re.sub(r"<\?xml[^>]*\?>|<!--.*?-->", "", text[:4096], flags=re.S).lstrip()
    return head.startswith("<testsuites") or head.startswith("<testsuite")


def _parse_xml(text: str) -> ET.Element:
    try:
        root: ET.Element = fromstring(text.encode("utf-8"))
    except DefusedXmlException as exc:
        raise FormatError(
            "This XML was refused: it declares entities or refers to external files "
            f"({type(exc).__name__}), which results files never need and which can exhaust memory "
            "or read local files. Export the report again without a DTD."
        ) from None
    except ET.ParseError as exc:
        line, column = exc.position
        label = LABEL if sniff(text) else "XML"
        if "no element found" in str(exc) or "unclosed token" in str(exc):
            raise FormatError(
                f"This looks like {label} but is truncated at line {line}: the XML stops early."
            ) from None
        raise FormatError(
            f"This looks like {label} but is not well-formed at line {line}, column {column}: {exc}."
        ) from None
    return root


def _leaf_suites(root: ET.Element) -> list[ET.Element]:
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    return [suite for suite in suites if suite.find("testsuite") is None]


def _declared(root: ET.Element, suites: list[ET.Element], attribute: str) -> int | None:
    if root.tag == "testsuites" and as_int(root.get(attribute)) is not None:
        return as_int(root.get(attribute))
    values = [as_int(suite.get(attribute)) for suite in suites]
    present = [value for value in values if value is not None]
    return sum(present) if present else None


def _producer(root: ET.Element, suites: list[ET.Element], text: str) -> str | None:
    name = (root.get("name") or "").lower()
    if name.startswith("pytest") or any(suite.get("name") == "pytest" for suite in suites):
        return "pytest"
    if name.startswith("jest"):
        return "jest-junit"
    if "org.testng.reporters" in text[:2048]:
        return "TestNG"
    return None


def parse(text: str) -> Facts:
    root = _parse_xml(text)
    if root.tag not in ("testsuites", "testsuite"):
        raise FormatError(
            f"This is XML but not JUnit XML: the root element is <{root.tag}>, not <testsuites> or <testsuite>."
        )
    suites = _leaf_suites(root)
    cases = list(root.iter("testcase"))

    counted = {
        "failed": sum(1 for case in cases if case.find("failure") is not None),
        "errors": sum(1 for case in cases if case.find("error") is not None and case.find("failure") is None),
        "skipped": sum(1 for case in cases if case.find("skipped") is not None),
    }
    total = _declared(root, suites, "tests")
    failed = _declared(root, suites, "failures")
    errors = _declared(root, suites, "errors")
    skipped = _declared(root, suites, "skipped")
    total = len(cases) if total is None else total
    failed = counted["failed"] if failed is None else failed
    errors = counted["errors"] if errors is None else errors
    skipped = counted["skipped"] if skipped is None else skipped
    passed = max(total - failed - errors - skipped, 0)

    producer = _producer(root, suites, text)
    failing = [
        f"{case.get('classname') or ''}::{case.get('name') or ''}".lstrip(":")
        for case in cases
        if case.find("failure") is not None or case.find("error") is not None
    ]
    timestamps = sorted(suite.get("timestamp") or "" for suite in suites if suite.get("timestamp"))
    durations = [float(t) for t in (suite.get("time") for suite in suites) if t and _is_float(t)]
    details: dict[str, Any] = {
        "format": NAME,
        "format_label": f"{LABEL} ({producer})" if producer else LABEL,
        "producer": producer,
        "dataset": {
            "name": root.get("name") or (suites[0].get("name") if suites else None),
            "suites": [suite.get("name") for suite in suites][:50],
            "cases_listed": len(cases),
            "fingerprint": fingerprint(f"{case.get('classname') or ''}::{case.get('name') or ''}" for case in cases),
        },
        "failing_cases": failing[:50],
    }
    if timestamps:
        details["run_at"] = iso_time(timestamps[0]) or timestamps[0]
    if durations:
        details["duration_s"] = round(sum(durations), 3)
    if len(cases) != total:
        details["note"] = f"The runner declared {total} tests; {len(cases)} <testcase> elements are listed."
    return counts_facts(
        passed=passed,
        failed=failed,
        errors=errors,
        skipped=skipped,
        total=total,
        details=details,
        tool=details["format_label"],
    )


def _is_float(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True
