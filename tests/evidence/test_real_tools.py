"""The format readers against files the real tools write here and now, not stored copies.

promptfoo is the pinned npm package in tools/promptfoo (``make node-deps`` installs it);
pytest is the one running this suite. Each test runs the tool on a small generated suite
whose cases pass, fail and error, then checks that ``eval_parse`` reports exactly the counts
the tool printed in its own summary. Without promptfoo the test skips, except in CI, where
a missing tool must fail the run rather than quietly drop the check.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from assessments.evidence.formats import eval_parse

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
PROMPTFOO_DIR = Path(__file__).resolve().parents[2] / "tools" / "promptfoo"
PROMPTFOO = PROMPTFOO_DIR / "node_modules" / ".bin" / "promptfoo"
PINNED = json.loads((PROMPTFOO_DIR / "package.json").read_text())["dependencies"]["promptfoo"]
ANSI = re.compile(r"\x1b\[[0-9;]*m")

# The echo provider answers with the rendered prompt, so the assertions decide pass or fail
# without a model or a network. The last case's provider is a command that exits non-zero:
# promptfoo counts that as an error, not a failure.
PROMPTFOO_CONFIG = """\
description: Claims triage, fresh run
prompts:
  - "Route this claim: {{claim}}"
providers:
  - echo
tests:
  - vars: {claim: Cracked windscreen}
    assert: [{type: icontains, value: windscreen, metric: routing}]
  - vars: {claim: Stolen bicycle}
    assert: [{type: icontains, value: "queue: theft", metric: routing}]
  - vars: {claim: Burst pipe}
    assert: [{type: javascript, value: "output.startsWith('Route this claim')"}]
  - vars: {claim: Roof tiles lost in storm}
    assert: [{type: equals, value: "queue: property"}]
  - vars: {claim: Hail damage to the car}
    assert: [{type: contains, value: Hail}, {type: not-icontains, value: "queue:"}]
  - vars: {claim: Provider falls over}
    provider: 'exec: node -e "process.exit(3)"'
    assert: [{type: contains, value: falls}]
"""

# Every kind of outcome pytest has: pass, fail, skip (marked and from inside), expected failure,
# unexpected pass, an error in setup and one in teardown.
PYTEST_CASES = """\
import pytest

@pytest.mark.parametrize("n", range(6))
def test_even(n):
    assert n % 2 == 0

@pytest.mark.skip(reason="not written yet")
def test_later():
    pass

def test_skips_itself():
    pytest.skip("no data today")

@pytest.mark.xfail(reason="known bug")
def test_known_bug():
    assert False

@pytest.mark.xfail(reason="maybe fixed")
def test_maybe_fixed():
    pass

@pytest.fixture
def broken():
    raise RuntimeError("fixture broke")

def test_uses_broken(broken):
    pass

@pytest.fixture
def breaks_afterwards():
    yield
    raise RuntimeError("teardown broke")

def test_teardown_breaks(breaks_afterwards):
    pass
"""


def _summary_count(output: str, pattern: str) -> int:
    """One count from a tool's own summary; a summary we cannot read fails the test."""
    found = re.search(pattern, output, re.MULTILINE)
    assert found, f"no {pattern!r} in the tool's output:\n{output[-3000:]}"
    return int(found.group(1))


def _promptfoo() -> Path:
    if PROMPTFOO.exists():
        return PROMPTFOO
    reason = "promptfoo is not installed in tools/promptfoo (make node-deps installs it; it needs npm)"
    if IN_CI:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def test_a_fresh_promptfoo_run_is_read_with_the_counts_promptfoo_printed(tmp_path: Path) -> None:
    binary = _promptfoo()
    (tmp_path / "promptfooconfig.yaml").write_text(PROMPTFOO_CONFIG)
    output = tmp_path / "out.json"
    home = tmp_path / "home"
    home.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("PROMPTFOO_")}
    env |= {
        "PROMPTFOO_DISABLE_TELEMETRY": "1",
        "PROMPTFOO_DISABLE_UPDATE": "1",
        # Its database, logs and notices, and anything else that would go under the home directory.
        "PROMPTFOO_CONFIG_DIR": str(tmp_path / "promptfoo"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "NO_COLOR": "1",
    }
    started = datetime.now(UTC).replace(microsecond=0)
    completed = subprocess.run(
        [
            *(str(binary), "eval", "-c", "promptfooconfig.yaml", "-o", str(output)),
            *("--no-cache", "--no-progress-bar", "--no-table"),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
        timeout=120,
    )
    printed = ANSI.sub("", completed.stdout)
    # 100 is promptfoo's exit status for "the eval ran and some cases did not pass".
    assert completed.returncode == 100, printed[-3000:]
    passed = _summary_count(printed, r"^\W*(\d+) passed\b")
    failed = _summary_count(printed, r"^\W*(\d+) failed\b")
    errors = _summary_count(printed, r"^\W*(\d+) errors?\b")
    # The run covers every kind of outcome, and promptfoo counted every case once.
    assert min(passed, failed, errors) >= 1, printed[-3000:]
    assert passed + failed + errors == PROMPTFOO_CONFIG.count("- vars:")

    facts = eval_parse(output.read_bytes())

    assert facts.details["format"] == "promptfoo"
    assert facts.details["tool_version"] == PINNED, "tools/promptfoo is not the pinned version: make node-deps"
    assert facts.metrics["passed"] == passed
    assert facts.metrics["failed"] == failed
    assert facts.metrics["errors"] == errors
    assert facts.metrics["total"] == passed + failed + errors
    assert facts.metrics["pass_rate"] == pytest.approx(passed / (passed + failed + errors))
    assert facts.summary.startswith(f"{passed} of {passed + failed + errors} cases passed")
    assert facts.summary.endswith(f"promptfoo {PINNED}")
    # One routing assertion passes and one fails: promptfoo's named score is their mean.
    assert facts.metrics["score:routing"] == pytest.approx(0.5)
    assert facts.details["description"] == "Claims triage, fresh run"
    assert facts.details["dataset"]["cases"] == passed + failed + errors
    assert len(facts.details["failure_reasons"]) == failed + errors
    assert any("queue: theft" in reason for reason in facts.details["failure_reasons"])
    assert any("process.exit(3)" in reason for reason in facts.details["failure_reasons"])
    assert started <= datetime.fromisoformat(facts.details["run_at"]) <= datetime.now(UTC)
    assert not any(home.iterdir()), "promptfoo wrote into the home directory"


def test_a_fresh_pytest_junit_file_is_read_with_the_counts_pytest_printed(tmp_path: Path) -> None:
    # The generated suite's own pytest.ini makes tmp_path the rootdir, so the project's settings
    # stay out; without plugin autoloading no Django, randomisation or other plugin joins in.
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_cases.py").write_text(PYTEST_CASES)
    report = tmp_path / "report.xml"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "DJANGO_"))}
    env |= {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "NO_COLOR": "1"}
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rfE", f"--junitxml={report}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    printed = completed.stdout
    assert completed.returncode == 1, printed[-3000:]  # 1: some tests failed
    collected = _summary_count(printed, r"^collected (\d+) items?$")
    last_line = re.findall(r"^=+ (.+) in [\d.]+s\b", printed, re.MULTILINE)
    assert last_line, printed[-3000:]
    said = {kind.removesuffix("s"): int(count) for count, kind in re.findall(r"(\d+) (\w+)", last_line[-1])}
    # pytest's summary counts a test that passed and then broke in teardown twice (passed, and
    # error); JUnit lists it once, with an <error>, so it is an error there and not a pass.
    passed_then_broke = sum(said.values()) - collected
    assert set(said) == {"passed", "failed", "skipped", "xfailed", "xpassed", "error"}, last_line[-1]
    assert passed_then_broke == 1, last_line[-1]

    facts = eval_parse(report.read_bytes())

    assert facts.details["format_label"] == "JUnit XML (pytest)"
    assert facts.metrics["total"] == collected
    assert facts.metrics["failed"] == said["failed"]
    assert facts.metrics["errors"] == said["error"]
    # JUnit has no xfail: pytest writes an expected failure as skipped, an unexpected pass as a pass.
    assert facts.metrics["skipped"] == said["skipped"] + said["xfailed"]
    assert facts.metrics["passed"] == said["passed"] + said["xpassed"] - passed_then_broke
    assert facts.metrics["pass_rate"] == pytest.approx(facts.metrics["passed"] / collected)
    assert "note" not in facts.details  # every declared test is listed as a <testcase>
    # The cases Preflight names as failing are the ones pytest's short summary named.
    named = set(re.findall(r"^(?:FAILED|ERROR) test_cases\.py::(\S+)", printed, re.MULTILINE))
    assert named
    assert {case.removeprefix("test_cases::") for case in facts.details["failing_cases"]} == named
