"""The format readers against real files written by the tools (tests/evidence/interop, see
SOURCES.md there), fresh output from real runs, and the bad input people really upload."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import zipfile
from io import BytesIO
from pathlib import Path

import pytest

from assessments.evidence.connectors.base import ConnectorError
from assessments.evidence.formats import FormatError, eval_parse, usage_parse

INTEROP = Path(__file__).parent / "interop"
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "evidence"


def read(path: str) -> bytes:
    return (INTEROP / path).read_bytes()


# file, format, the counts the tool reported (passed, failed, errors, skipped, total)
COUNTED = [
    ("promptfoo/french-greeting-test_output.json", "promptfoo", (0, 1, 0, 0, 1)),
    ("junit/python-xunit-pytest.xml", "junit", (11, 2, 0, 2, 15)),
    ("junit/jest-junit.xml", "junit", (1, 4, 0, 1, 6)),
    ("junit/TEST-org.apache.pulsar.AddMissingPatchVersionTest.xml", "junit", (0, 1, 0, 1, 2)),
    ("garak/report_test.report.jsonl", "garak", (8, 0, 0, 0, 8)),
    ("garak/test_with_ci.report.jsonl", "garak", (37, 13, 0, 0, 50)),
    ("inspect/log_read_sample.json", "inspect_ai", (1, 0, 0, 0, 1)),
    ("inspect/2025-05-12T20-28-13-04-00_popularity.json", "inspect_ai", (2, 1, 0, 0, 3)),
    ("inspect/2024-11-05T13-32-37-05-00_input-task_hxs4q9azL3ySGkjJirypKZ.eval", "inspect_ai", (1, 0, 0, 0, 1)),
    ("deepeval/test_completion_sync_eval.json", "deepeval", (2, 0, 0, 0, 2)),
    ("deepeval/test_run_sample.json", "deepeval", (0, 1, 0, 0, 1)),
    ("aiverify/veritastool-mock-data.json", "aiverify", (2, 0, 0, 0, 2)),
]


@pytest.mark.parametrize(("path", "fmt", "counts"), COUNTED, ids=[row[0] for row in COUNTED])
def test_it_reports_exactly_the_counts_the_tool_wrote(path: str, fmt: str, counts: tuple[int, ...]) -> None:
    facts = eval_parse(read(path))
    passed, failed, errors, skipped, total = counts
    assert facts.details["format"] == fmt
    assert facts.metrics["passed"] == passed
    assert facts.metrics["failed"] == failed
    assert facts.metrics["errors"] == errors
    assert facts.metrics["skipped"] == skipped
    assert facts.metrics["total"] == total
    assert facts.metrics["pass_rate"] == pytest.approx(passed / total)
    assert f"{passed} of {total}" in facts.summary
    assert facts.details["dataset"]["fingerprint"].startswith("sha256:")


def test_promptfoo_gives_named_scores_cost_latency_version_and_run_time() -> None:
    facts = eval_parse(read("promptfoo/french-greeting-test_output.json"))
    assert facts.metrics["score:Correctness"] == 1
    assert facts.metrics["score:Topicality"] == pytest.approx(0.6015003324002018)
    assert facts.metrics["score:Performance"] == 0.5
    assert facts.metrics["cost_total"] == pytest.approx(8.1e-06)
    assert facts.metrics["latency_ms_mean"] == 1352
    assert facts.details["tool_version"] == "0.120.16"
    assert facts.details["run_at"].startswith("2026-01-21T22:56:55")
    assert facts.summary == "0 of 1 case passed (0.00); 1 failed — promptfoo 0.120.16"


def test_junit_keeps_the_runners_declared_totals_and_says_when_cases_are_missing() -> None:
    facts = eval_parse(read("junit/python-xunit-pytest.xml"))
    assert facts.details["producer"] == "pytest"
    assert facts.details["dataset"]["cases_listed"] == 10
    assert "declared 15" in facts.details["note"]
    assert facts.details["failing_cases"] == ["tests.test_lib::test_always_fail", "tests.test_lib::test_error"]


def test_lm_eval_v04_reports_scores_and_samples_without_inventing_pass_counts() -> None:
    facts = eval_parse(read("lm-eval/results_2024-08-26T11-40-14.123429.json"))
    assert facts.details["format"] == "lm_eval"
    assert facts.metrics["score:gsm8k_judge_2/exact_match,test"] == pytest.approx(0.8165276724791509)
    assert facts.metrics["total"] == 1319
    assert "pass_rate" not in facts.metrics
    assert facts.details["stderr"]["score:gsm8k_judge_2/exact_match_stderr,test"] == pytest.approx(0.01066137044869965)
    assert facts.details["dataset"]["fingerprint_from"] == "task_hashes"
    assert facts.details["run_at"].startswith("2024-08-26T")


def test_lm_eval_groups_sum_their_subtasks_samples() -> None:
    facts = eval_parse(read("lm-eval/results_2024-06-03T01-49-14.636822.json"))
    assert facts.metrics["total"] == 990 + 1321 + 8766 + 10380 + 4396
    assert facts.metrics["score:steer/acc,none"] == pytest.approx(0.39581479905620237)
    assert len([key for key in facts.metrics if key.startswith("score:")]) == 6


def test_lm_eval_old_minimal_format_is_read() -> None:
    facts = eval_parse(read("lm-eval/arc_challenge-v2.0-res.json"))
    assert facts.metrics == {
        "score:arc_challenge/acc": pytest.approx(0.26621160409556316),
        "score:arc_challenge/acc_norm": pytest.approx(0.28242320819112626),
    }
    assert facts.details["format_label"].endswith("(old minimal format)")


def test_garak_reports_probes_and_per_probe_pass_rates() -> None:
    facts = eval_parse(read("garak/test_with_ci.report.jsonl"))
    assert facts.metrics["probes"] == 1
    assert facts.metrics["probe:test.Test"] == pytest.approx(0.74)
    assert facts.details["tool_version"] == "0.14.0.pre1"
    assert facts.summary == "37 of 50 attempts passed (0.74); 13 failed — garak 0.14.0.pre1, 1 probe"


def test_inspect_says_a_cancelled_run_was_cancelled() -> None:
    facts = eval_parse(read("inspect/2025-05-12T20-28-13-04-00_popularity.json"))
    assert facts.details["status"] == "cancelled"
    assert facts.metrics["score:match/accuracy"] == pytest.approx(2 / 3)
    assert "(run cancelled)" in facts.summary


def test_inspect_eval_archive_is_read_from_its_zip() -> None:
    facts = eval_parse(read("inspect/2024-11-05T13-32-37-05-00_input-task_hxs4q9azL3ySGkjJirypKZ.eval"))
    assert facts.details["format_label"] == "Inspect AI log (.eval archive)"
    assert facts.metrics["score:model_graded_fact/accuracy"] == 1.0
    assert facts.details["tool_version"] == "0.3.43.dev33+g6c96d92d"


def test_deepeval_judge_cost_is_not_the_applications_cost() -> None:
    facts = eval_parse(read("deepeval/test_run_sample.json"))
    assert facts.metrics["evaluation_cost"] == pytest.approx(0.0214)
    assert "cost_total" not in facts.metrics
    assert facts.metrics["score:Faithfulness"] == pytest.approx((0.45 + 0.91 + 0.88) / 3)


def test_openai_evals_final_report_gives_scores_and_sample_count() -> None:
    facts = eval_parse(read("openai-evals/oriprompt.log.jsonl"))
    assert facts.details["format"] == "openai_evals"
    assert facts.metrics["total"] == 1500
    assert facts.metrics["score:accuracy"] == pytest.approx(0.20733333333333334)
    assert facts.details["finished"] is True


def test_openai_evals_without_a_final_report_is_marked_unfinished() -> None:
    facts = eval_parse(read("openai-evals/gpt-4-cot_semantic_role_recognition.jsonl"))
    assert facts.details["finished"] is False
    assert facts.metrics["total"] == 9  # 32 sampling events over 9 distinct samples
    assert "did not finish" in facts.summary


def test_langfuse_trace_gives_cost_latency_and_scores() -> None:
    facts = eval_parse(read("langfuse/openai-agents-2025-09-30.trace.json"))
    assert facts.details["format"] == "langfuse"
    assert facts.metrics["total"] == 1
    assert facts.metrics["cost_total"] == pytest.approx(0.000632)
    assert facts.metrics["latency_ms_mean"] == pytest.approx(2190)
    assert facts.metrics["score:toxicity"] == pytest.approx(0.8)
    assert facts.metrics["score:hallucination"] == 0


def test_aiverify_fairness_toolbox_reports_group_metrics() -> None:
    facts = eval_parse(read("aiverify/test_result_examples.json"))
    assert facts.details["format"] == "aiverify"
    assert facts.metrics["total"] == 1
    assert facts.metrics[
        "score:fairness_metrics_toolbox_for_classification/Disparate Impact[class 0]"
    ] == pytest.approx(1.0218689431079695)


def test_format_is_detected_from_content_not_the_file_name(tmp_path: Path) -> None:
    misnamed = tmp_path / "results.xml"
    misnamed.write_bytes(read("garak/report_test.report.jsonl"))
    assert eval_parse(misnamed.read_bytes()).details["format"] == "garak"
    assert eval_parse(read("junit/jest-junit.xml")).details["format"] == "junit"
    # leading whitespace and a BOM change nothing
    assert eval_parse(b"\xef\xbb\xbf\n  " + read("deepeval/test_run_sample.json")).details["format"] == "deepeval"


def test_the_same_golden_set_keeps_its_fingerprint_across_runs_and_the_regression_shows() -> None:
    good = eval_parse((FIXTURES / "junit-goldenset-pass.xml").read_bytes())
    bad = eval_parse((FIXTURES / "junit-goldenset-regression.xml").read_bytes())
    assert (good.metrics["passed"], good.metrics["total"]) == (16, 16)
    assert (bad.metrics["passed"], bad.metrics["failed"]) == (11, 5)
    assert good.details["dataset"]["fingerprint"] == bad.details["dataset"]["fingerprint"]
    good_pf = eval_parse((FIXTURES / "promptfoo-goldenset-pass.json").read_bytes())
    bad_pf = eval_parse((FIXTURES / "promptfoo-goldenset-regression.json").read_bytes())
    assert (good_pf.metrics["passed"], bad_pf.metrics["passed"], bad_pf.metrics["failed"]) == (10, 6, 4)
    assert good_pf.details["dataset"]["fingerprint"] == bad_pf.details["dataset"]["fingerprint"]


def test_a_changed_golden_set_changes_the_fingerprint() -> None:
    original = read("junit/jest-junit.xml")
    renamed = original.replace(b'name="Passing test"', b'name="Passing test, reworded"')
    assert (
        eval_parse(original).details["dataset"]["fingerprint"] != eval_parse(renamed).details["dataset"]["fingerprint"]
    )


BAD_INPUTS = [
    ("empty", b"", "empty"),
    ("whitespace", b"  \n\t ", "empty"),
    ("html error page", b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head></html>", "HTML"),
    ("unknown json", b'{"hello": "world"}', "not a recognised results format"),
    ("json scalar", b"42", "neither JSON nor XML"),
    ("plain text", b"All tests passed!", "neither JSON nor XML"),
    ("non-junit xml", b"<?xml version='1.0'?><rss><channel/></rss>", "root element is <rss>"),
    ("random jsonl", b'{"a": 1}\n{"b": 2}\n', "not a recognised results log"),
]


@pytest.mark.parametrize(("name", "data", "expected"), BAD_INPUTS, ids=[row[0] for row in BAD_INPUTS])
def test_bad_input_is_a_readable_format_error(name: str, data: bytes, expected: str) -> None:
    with pytest.raises(FormatError) as caught:
        eval_parse(data)
    assert expected in caught.value.message
    assert isinstance(caught.value, ConnectorError)
    assert caught.value.transient is False


def test_unknown_json_names_the_formats_tried_and_what_it_found() -> None:
    with pytest.raises(FormatError) as caught:
        eval_parse(read("openai-usage/openapi_GET_organization_costs_example.json"))
    assert "promptfoo JSON, JUnit XML" in caught.value.message
    assert "object, data, has_more" in caught.value.message


def test_truncated_junit_says_where_it_stops() -> None:
    text = read("junit/jest-junit.xml")
    lines = text.splitlines(keepends=True)
    with pytest.raises(FormatError) as caught:
        eval_parse(b"".join(lines[:40]))
    assert caught.value.message.startswith("This looks like JUnit XML but is truncated at line")


def test_truncated_promptfoo_json_is_named_as_promptfoo() -> None:
    data = read("promptfoo/french-greeting-test_output.json")
    with pytest.raises(FormatError) as caught:
        eval_parse(data[: len(data) // 2])
    assert caught.value.message.startswith("This looks like promptfoo results but is truncated at line")


def test_truncated_garak_report_says_which_line() -> None:
    data = read("garak/test_with_ci.report.jsonl")
    with pytest.raises(FormatError) as caught:
        eval_parse(data[:-200])
    assert "garak report but is truncated at line" in caught.value.message


def test_right_format_wrong_schema_says_what_is_missing() -> None:
    doc = json.loads(read("promptfoo/french-greeting-test_output.json"))
    doc["results"]["stats"] = {"tokenUsage": {}}
    with pytest.raises(FormatError) as caught:
        eval_parse(json.dumps(doc).encode())
    assert "no successes/failures" in caught.value.message


def test_ten_megabytes_of_random_bytes_is_refused_as_binary() -> None:
    noise = random.Random(7).randbytes(10 * 1024 * 1024)
    with pytest.raises(FormatError) as caught:
        eval_parse(noise)
    assert "binary" in caught.value.message


def test_an_oversized_file_is_refused_before_parsing() -> None:
    with pytest.raises(FormatError) as caught:
        eval_parse(b"[" + b" " * (13 * 1024 * 1024) + b"]")
    assert "MB" in caught.value.message


def test_billion_laughs_xml_is_refused() -> None:
    bomb = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<testsuites><testsuite name="&lol3;" tests="1"/></testsuites>"""
    with pytest.raises(FormatError) as caught:
        eval_parse(bomb)
    assert "declares entities" in caught.value.message


def test_external_entity_xml_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read me")
    xxe = f"""<?xml version="1.0"?>
<!DOCTYPE t [<!ENTITY x SYSTEM "file://{secret}">]>
<testsuite name="&x;" tests="1"><testcase name="a"/></testsuite>""".encode()
    with pytest.raises(FormatError) as caught:
        eval_parse(xxe)
    assert "do not read me" not in caught.value.message
    assert "external" in caught.value.message


def test_a_zip_that_is_not_an_inspect_log_is_named() -> None:
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("results.json", "{}")
    with pytest.raises(FormatError) as caught:
        eval_parse(buffer.getvalue())
    assert "not an Inspect AI .eval log" in caught.value.message


def test_a_truncated_inspect_archive_is_named() -> None:
    data = read("inspect/2024-11-05T13-32-37-05-00_input-task_hxs4q9azL3ySGkjJirypKZ.eval")
    with pytest.raises(FormatError) as caught:
        eval_parse(data[: len(data) // 2])
    assert "zip archive" in caught.value.message


def test_a_fresh_pytest_junit_file_is_read_with_its_counts(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p no:django -p no:cacheprovider\n")
    (tmp_path / "test_cases.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.parametrize('n', range(7))\n"
        "def test_even(n):\n    assert n % 2 == 0\n\n"
        "@pytest.mark.skip(reason='not yet')\n"
        "def test_later():\n    pass\n\n"
        "@pytest.fixture\ndef broken():\n    raise RuntimeError('fixture broke')\n\n"
        "def test_uses_broken(broken):\n    pass\n"
    )
    report = tmp_path / "report.xml"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", f"--junitxml={report}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        check=False,
        timeout=120,
    )
    facts = eval_parse(report.read_bytes())
    assert facts.details["format_label"] == "JUnit XML (pytest)"
    # 7 parametrised (4 even pass, 3 odd fail), 1 skipped, 1 fixture error
    assert (facts.metrics["passed"], facts.metrics["failed"], facts.metrics["errors"]) == (4, 3, 1)
    assert (facts.metrics["skipped"], facts.metrics["total"]) == (1, 9)


def test_the_demo_golden_set_rerun_by_the_pinned_promptfoo_gives_the_stored_counts(tmp_path: Path) -> None:
    """The demo's promptfoo fixtures are what the pinned promptfoo really writes for this config."""
    from tests.evidence.test_real_tools import _promptfoo

    binary = str(_promptfoo())
    golden = FIXTURES / "goldenset"
    output = tmp_path / "out.json"
    env = {
        **os.environ,
        "PROMPTFOO_DISABLE_TELEMETRY": "1",
        "PROMPTFOO_DISABLE_UPDATE": "1",
        "PROMPTFOO_CONFIG_DIR": str(tmp_path / "promptfoo-home"),
    }
    subprocess.run(
        [
            binary,
            *("eval", "-c", "promptfooconfig.yaml", "--prompts", "file://prompts/triage-v2.txt"),
            *("-o", str(output), "--no-cache", "--no-progress-bar", "--no-table", "--no-write"),
        ],
        cwd=golden,
        env=env,
        capture_output=True,
        check=False,
        timeout=300,
    )
    facts = eval_parse(output.read_bytes())
    assert facts.details["format"] == "promptfoo"
    assert (facts.metrics["passed"], facts.metrics["failed"], facts.metrics["total"]) == (6, 4, 10)


# usage exports


def test_openai_usage_page_counts_requests_as_tasks_and_says_costs_are_missing() -> None:
    facts = usage_parse(
        read("openai-usage/openapi_GET_organization_usage_completions_example.json"),
        expected_monthly_volume=1000,
        cost_envelope_per_task=0.05,
    )
    assert facts.details["format"] == "openai_usage"
    assert facts.metrics == {"tasks": 5, "tokens_p50": 300, "tokens_p95": 300}
    assert "costs" in facts.details["note"]


def test_openai_costs_page_gives_the_total() -> None:
    facts = usage_parse(
        read("openai-usage/openapi_GET_organization_costs_example.json"),
        expected_monthly_volume=None,
        cost_envelope_per_task=None,
    )
    assert facts.metrics == {"cost_total": pytest.approx(0.06)}
    assert facts.details["series_cost"] == [["2024-11-01", pytest.approx(0.06)]]


def test_openai_usage_and_costs_pages_together_give_cost_per_task_and_projections() -> None:
    pages = [
        json.loads(read("openai-usage/openapi_GET_organization_usage_completions_example.json")),
        json.loads(read("openai-usage/openapi_GET_organization_costs_example.json")),
    ]
    facts = usage_parse(json.dumps(pages).encode(), expected_monthly_volume=1000, cost_envelope_per_task=0.01)
    assert facts.metrics["cost_per_task"] == pytest.approx(0.012)
    assert facts.metrics["monthly_projection"] == pytest.approx(12.0)
    assert facts.metrics["envelope_ratio"] == pytest.approx(1.2)
    assert facts.details["series"] == [["2024-11-01", pytest.approx(0.012)]]


def test_langfuse_export_is_one_task_per_trace() -> None:
    facts = usage_parse(
        read("langfuse/openai-agents-2025-09-30.trace.json"), expected_monthly_volume=None, cost_envelope_per_task=None
    )
    assert facts.details["format"] == "langfuse"
    assert facts.metrics["tasks"] == 1
    assert facts.metrics["cost_per_task"] == pytest.approx(0.000632)
    assert facts.metrics["tokens_p50"] == 184  # 114 + 70 tokens over the trace's two generations
    assert "monthly_projection" not in facts.metrics


def test_usage_csv_groups_requests_into_tasks() -> None:
    csv = (
        b"timestamp,task_id,input_tokens,output_tokens,cost_usd\n"
        b"2025-11-03T09:00:00Z,a,100,10,0.01\n"
        b"2025-11-03T09:00:05Z,a,200,20,0.02\n"
        b"2025-11-04T10:00:00Z,b,400,40,0.05\n"
    )
    facts = usage_parse(csv, expected_monthly_volume=100, cost_envelope_per_task=0.02)
    assert facts.metrics["tasks"] == 2
    assert facts.metrics["cost_total"] == pytest.approx(0.08)
    assert facts.metrics["cost_per_task"] == pytest.approx(0.04)
    assert facts.metrics["tokens_p50"] == pytest.approx(385)  # tasks of 330 and 440 tokens
    assert facts.metrics["tokens_p95"] == pytest.approx(434.5)
    assert facts.metrics["monthly_projection"] == pytest.approx(4.0)
    assert facts.metrics["envelope_ratio"] == pytest.approx(2.0)
    assert facts.details["series"] == [["2025-11-03", pytest.approx(0.03)], ["2025-11-04", pytest.approx(0.05)]]


def test_the_demo_usage_export_covers_several_weeks() -> None:
    facts = usage_parse(
        (FIXTURES / "usage-requests.csv").read_bytes(), expected_monthly_volume=2000, cost_envelope_per_task=0.01
    )
    assert facts.metrics["tasks"] == 727
    assert facts.details["period"] == ["2025-10-06", "2025-11-14"]
    assert len(facts.details["series"]) == 30


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "empty"),
        (b"timestamp,task_id\n2025-11-03,a\n", "lacks the column(s) cost_usd"),
        (b"timestamp,cost_usd\nyesterday,0.1\n", "row 2: timestamp"),
        (b"timestamp,cost_usd\n2025-11-03,lots\n", "row 2: cost_usd"),
        (b'{"object": "page", "data": [', "truncated"),
        (b'{"hello": 1}', "not a recognised usage export"),
        (b"<html><body>Sign in</body></html>", "not a usage export"),
    ],
)
def test_bad_usage_exports_are_readable_errors(data: bytes, expected: str) -> None:
    with pytest.raises(FormatError) as caught:
        usage_parse(data, expected_monthly_volume=None, cost_envelope_per_task=None)
    assert expected in caught.value.message
