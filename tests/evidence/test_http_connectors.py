"""The GitHub, Prometheus, PagerDuty and HTTP JSON connectors, on recorded responses.

The parsers are checked on the recorded payloads directly; the connectors then run through
the real outbound client against a local server replaying the same recordings with their
recorded status codes and headers (tests/evidence/interop/, see SOURCES-http.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from assessments.evidence.connectors.base import REGISTRY, ConnectorError, Source
from assessments.evidence.connectors.github import GitHubConnector, github_facts, github_protection_facts
from assessments.evidence.connectors.http_json import HttpJsonConnector, json_path_number
from assessments.evidence.connectors.pagerduty import (
    PagerDutyConnector,
    pagerduty_oncall_people,
    pagerduty_policy_facts,
    pagerduty_schedule_people,
)
from assessments.evidence.connectors.prometheus import (
    PrometheusConnector,
    prometheus_query_value,
    prometheus_rules_facts,
)
from tests.evidence.http_replay import (
    ReplayServer,
    Reply,
    interop_bytes,
    json_reply,
    replay_server,
    wiremock_reply,
)


def recorded(relative: str) -> Any:
    return json.loads(interop_bytes(relative))


RUNS = "github-api/actions-runs_3-r_h_g_actions_runs.json"
PROTECTION = "github-api/branch-protection_6-r_h_t_branches_main_protection.json"
RULES = "prometheus/api-v1-rules_docs-example.json"
QUERY = "prometheus/api-v1-query_docs-example.json"
ONCALLS = "pagerduty-api/api-schema_GET_oncalls_example.json"
SCHEDULE = "pagerduty-api/api-schema_GET_schedules_id_example.json"
POLICIES = "pagerduty-api/sample_escalation_policies.json"

REPO = "/repos/hub4j-test-org/GHWorkflowRunTest"
# GitHub's documented 404 body for an unprotected branch (no recording of it exists in the corpus).
NOT_PROTECTED = Reply(
    404,
    b'{"message":"Branch not protected","documentation_url":'
    b'"https://docs.github.com/rest/branches/branch-protection#get-branch-protection","status":"404"}',
    {"Content-Type": "application/json; charset=utf-8"},
)


@pytest.fixture
def server(settings) -> Iterator[ReplayServer]:
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    with replay_server() as replay:
        yield replay


def test_all_four_connectors_are_registered_by_kind() -> None:
    assert isinstance(REGISTRY["github"], GitHubConnector)
    assert isinstance(REGISTRY["prometheus"], PrometheusConnector)
    assert isinstance(REGISTRY["pagerduty"], PagerDutyConnector)
    assert isinstance(REGISTRY["http_json"], HttpJsonConnector)
    assert REGISTRY["github"].label == "GitHub repository"
    assert REGISTRY["http_json"].label == "HTTP JSON endpoint"


# --- GitHub: parsing --------------------------------------------------------------------


def test_github_reads_the_latest_run_and_the_protection_rules_from_recorded_responses() -> None:
    facts = github_facts(
        repository="hub4j-test-org/GHWorkflowRunTest",
        branch="main",
        files_present={"RUNBOOK.md": True, ".github/CODEOWNERS": False},
        workflow="artifacts-workflow.yml",
        runs_payload=recorded(RUNS),
        protection=recorded(PROTECTION),
    )
    assert facts.metrics == {
        "required_files_present": 1.0,
        "required_files_missing": 1.0,
        "workflow_success": 1.0,
        "branch_protected": 1.0,
        "required_reviews": 2.0,
        "status_checks_required": 1.0,
    }
    assert facts.details["required_files_missing"] == [".github/CODEOWNERS"]
    assert facts.details["workflow_run"] == {
        "id": 7890467516,
        "run_number": 47,
        "conclusion": "success",
        "html_url": "https://github.com/hub4j-test-org/GHWorkflowRunTest/actions/runs/7890467516",
        "time": "2024-02-13T17:32:32Z",
        "head_sha": "22e72d028675d6b32e2fcc72299163dbbabd80b4",
        "path": ".github/workflows/artifacts-workflow.yml",
    }
    assert facts.details["protection"]["required_status_checks"] == ["test-status-check"]
    assert facts.details["protection"]["enforce_admins"] is True


def test_github_counts_an_unprotected_branch_as_zero_not_an_error() -> None:
    metrics, details = github_protection_facts(None)
    assert metrics == {"branch_protected": 0.0, "required_reviews": 0.0, "status_checks_required": 0.0}
    assert details == {"protection": None}


def test_github_workflow_without_a_completed_run_is_not_a_success() -> None:
    facts = github_facts(
        repository="a/b",
        branch="main",
        files_present={},
        workflow="evals.yml",
        runs_payload={"total_count": 0, "workflow_runs": []},
        protection=None,
    )
    assert facts.metrics["workflow_success"] == 0.0
    assert facts.details["workflow_run"] is None


def test_github_failed_latest_run_is_zero() -> None:
    runs = recorded(RUNS)
    runs["workflow_runs"][0]["conclusion"] = "failure"
    facts = github_facts(
        repository="a/b", branch="main", files_present={}, workflow="x.yml", runs_payload=runs, protection=None
    )
    assert facts.metrics["workflow_success"] == 0.0
    assert facts.details["workflow_run"]["conclusion"] == "failure"


# --- Prometheus: parsing ----------------------------------------------------------------


def test_prometheus_matches_alert_rules_by_name_and_by_expression_on_the_documented_answer() -> None:
    metrics, details = prometheus_rules_facts(
        recorded(RULES),
        # A recording rule's name is not an alert: it must come out missing.
        alerts=["HighRequestLatency", "HighErrorRate", "job:http_inprogress_requests:sum"],
        expressions=["job:request_latency_seconds:mean5m"],
    )
    assert metrics == {
        "alert_rules_matched": 2.0,
        "alert_rules_missing": 2.0,
        "alert_rules_unhealthy": 0.0,
        "alert_rules_firing": 1.0,
    }
    assert details["alert_rules_missing"] == ["HighErrorRate", "job:http_inprogress_requests:sum"]
    first = details["alert_rules_matched"][0]
    assert first["wanted"] == "HighRequestLatency"
    assert first["rules"] == [
        {
            "name": "HighRequestLatency",
            "query": 'job:request_latency_seconds:mean5m{job="myjob"} > 0.5',
            "state": "firing",
            "health": "ok",
            "last_error": None,
            "group": "example",
            "file": "/rules.yaml",
        }
    ]


def test_prometheus_refuses_to_pick_one_of_several_series_unless_told_how() -> None:
    with pytest.raises(ConnectorError, match=r"returned 2 series .*instance='localhost:9090'.*set aggregate"):
        prometheus_query_value(recorded(QUERY))
    assert prometheus_query_value(recorded(QUERY), aggregate="max")[0] == 1.0
    assert prometheus_query_value(recorded(QUERY), aggregate="min")[0] == 0.0
    assert prometheus_query_value(recorded(QUERY), aggregate="sum")[0] == 1.0


def test_prometheus_reads_a_scalar_and_a_single_series() -> None:
    scalar = {"status": "success", "data": {"resultType": "scalar", "result": [1435781451.781, "0.25"]}}
    assert prometheus_query_value(scalar)[0] == 0.25
    one = recorded(QUERY)
    one["data"]["result"] = one["data"]["result"][1:]
    value, details = prometheus_query_value(one)
    assert value == 0.0
    assert details["labels"] == [{"__name__": "up", "job": "node", "instance": "localhost:9100"}]


def test_prometheus_error_answers_come_back_in_its_own_words() -> None:
    with pytest.raises(ConnectorError, match=r"\(bad_data\): 1:5: parse error") as caught:
        prometheus_query_value({"status": "error", "errorType": "bad_data", "error": "1:5: parse error"})
    assert caught.value.transient is False
    with pytest.raises(ConnectorError) as caught:
        prometheus_query_value({"status": "error", "errorType": "timeout", "error": "query timed out"})
    assert caught.value.transient is True


def test_prometheus_empty_and_nan_results_are_readable_errors() -> None:
    with pytest.raises(ConnectorError, match="no series"):
        prometheus_query_value({"status": "success", "data": {"resultType": "vector", "result": []}})
    with pytest.raises(ConnectorError, match=r"value is nan"):
        prometheus_query_value({"status": "success", "data": {"resultType": "scalar", "result": [1, "NaN"]}})


# --- PagerDuty: parsing -----------------------------------------------------------------


def test_pagerduty_reads_the_documented_oncalls_and_schedule_examples() -> None:
    people, more = pagerduty_oncall_people(recorded(ONCALLS))
    assert people == [{"id": "PT23IWX", "name": "Tim Wright"}]
    assert more is False
    people, schedule = pagerduty_schedule_people(recorded(SCHEDULE))
    assert people == [{"id": "PXPGF42", "name": "Regina Phalange"}]
    assert schedule["name"] == "Daily Engineering Rotation"


def test_pagerduty_counts_levels_and_distinct_targets_of_a_recorded_policy() -> None:
    policies = recorded(POLICIES)
    metrics, details = pagerduty_policy_facts(policies[0])
    assert metrics == {"escalation_levels": 3.0, "escalation_targets": 4.0}
    assert details["escalation_policy"]["name"] == "Alexis demo EP"
    assert details["escalation_policy"]["levels"][2] == {
        "delay_minutes": 30,
        "targets": ["Alli Rubach", "After Hours "],
    }
    # Every captured policy parses, and a target named on two levels is counted once.
    for policy in policies:
        metrics, _ = pagerduty_policy_facts(policy)
        assert metrics["escalation_levels"] == len(policy["escalation_rules"])
        assert metrics["escalation_targets"] <= sum(len(rule["targets"]) for rule in policy["escalation_rules"])


# --- JSON paths -------------------------------------------------------------------------


def test_json_path_finds_numbers_in_recorded_documents() -> None:
    assert json_path_number(recorded(RUNS), "total_count") == 77
    assert json_path_number(recorded(RUNS), "$.workflow_runs[0].run_number") == 47
    assert json_path_number(recorded(SCHEDULE), "schedule.schedule_layers[-1].rendered_coverage_percentage") == 37.5
    assert json_path_number({"a.b": [1, 2.5]}, "$['a.b'][1]") == 2.5


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("$.workflow_runs[0].conclusion", r"the value there is the string \"success\", not a number"),
        ("$.workflow_runs[0].nope", r"\$\.workflow_runs\[0\] has no key 'nope'; it is an object with keys id, name"),
        ("$.workflow_runs[5].id", r"\$\.workflow_runs has no item \[5\]; it is a list of 1 item"),
        ("total_count.value", r"expected an object at \$\.total_count, found the number 77"),
        ("$.workflow_runs[0].pull_requests", r"a list of 0 items, not a number"),
        ("data..x", r"cannot be read at character 6"),
    ],
)
def test_json_path_errors_name_the_path_and_what_was_found(path: str, message: str) -> None:
    with pytest.raises(ConnectorError, match=message):
        json_path_number(recorded(RUNS), path)


# --- Over HTTP: each connector against the replayed recordings --------------------------


def github_routes(server: ReplayServer, *, protection: Reply | None = None) -> None:
    server.route(REPO, wiremock_reply("github-api/repository_1-r_h_ghworkflowruntest.mapping.json"))
    server.route(
        f"{REPO}/contents/RUNBOOK.md?ref=main",
        wiremock_reply("github-api/contents_4-r_h_g_contents_ghcontent-ro_a-file-with-content.mapping.json"),
    )
    server.route(
        f"{REPO}/contents/.github/CODEOWNERS?ref=main",
        wiremock_reply(
            "github-api/contents-404_20-r_h_g_contents_testdirectory-50_test-file-tocreate-1txt.mapping.json"
        ),
    )
    server.route(
        f"{REPO}/actions/workflows/artifacts-workflow.yml/runs?branch=main&status=completed&per_page=1",
        wiremock_reply("github-api/actions-runs_3-r_h_g_actions_runs.mapping.json"),
    )
    server.route(
        f"{REPO}/branches/main/protection",
        protection or wiremock_reply("github-api/branch-protection_6-r_h_t_branches_main_protection.mapping.json"),
    )


def github_source(server: ReplayServer, **configuration: Any) -> Source:
    return Source(
        configuration={
            "repository": "hub4j-test-org/GHWorkflowRunTest",
            "api_url": server.url,
            "workflow": "artifacts-workflow.yml",
            "required_files": ["RUNBOOK.md", ".github/CODEOWNERS"],
            **configuration,
        },
        secrets={"token": "ghp-test-token"},
    )


def test_github_fetch_over_http_gives_the_recorded_facts_and_sends_the_token(server: ReplayServer) -> None:
    github_routes(server)
    fetched = GitHubConnector().fetch(github_source(server))
    assert fetched.facts.metrics == {
        "required_files_present": 1.0,
        "required_files_missing": 1.0,
        "workflow_success": 1.0,
        "branch_protected": 1.0,
        "required_reviews": 2.0,
        "status_checks_required": 1.0,
    }
    assert fetched.facts.details["branch"] == "main"  # the repository's default, as recorded
    assert fetched.facts.details["workflow_run"]["id"] == 7890467516
    assert fetched.facts.summary == (
        "hub4j-test-org/GHWorkflowRunTest@main: 1 of 2 required files present; "
        "last artifacts-workflow.yml run: success; branch protected (2 approving reviews, 1 required status checks)."
    )
    assert interop_bytes(RUNS) in fetched.payload
    assert [request.path for request in server.received] == [
        REPO,
        f"{REPO}/contents/RUNBOOK.md",
        f"{REPO}/contents/.github/CODEOWNERS",
        f"{REPO}/actions/workflows/artifacts-workflow.yml/runs",
        f"{REPO}/branches/main/protection",
    ]
    for request in server.received:
        assert request.headers["Authorization"] == "Bearer ghp-test-token"
        assert request.headers["Accept"] == "application/vnd.github+json"
        assert request.headers["X-GitHub-Api-Version"] == "2022-11-28"


def test_github_branch_not_protected_is_zero_over_http(server: ReplayServer) -> None:
    github_routes(server, protection=NOT_PROTECTED)
    metrics = GitHubConnector().fetch(github_source(server)).facts.metrics
    assert (metrics["branch_protected"], metrics["required_reviews"], metrics["status_checks_required"]) == (0, 0, 0)


def test_github_unknown_branch_is_an_error_not_an_unprotected_branch(server: ReplayServer) -> None:
    github_routes(server)
    with pytest.raises(ConnectorError, match="branch 'nope'") as caught:
        GitHubConnector().fetch(github_source(server, branch="nope", required_files=[], workflow=None))
    assert caught.value.transient is False


def test_github_test_connection_names_the_repository(server: ReplayServer) -> None:
    github_routes(server)
    assert GitHubConnector().test_connection(github_source(server)) == (
        "Reached hub4j-test-org/GHWorkflowRunTest (public, default branch main)."
    )


def test_github_recorded_bad_credentials_say_the_token_was_rejected(server: ReplayServer) -> None:
    server.route(REPO, wiremock_reply("github-api/bad-credentials-401_3-rate_limit.mapping.json"))
    with pytest.raises(ConnectorError, match=r"GitHub rejected the token \(401 Bad credentials\)") as caught:
        GitHubConnector().fetch(github_source(server))
    assert caught.value.transient is False


def test_github_spent_rate_limit_is_transient_and_says_until_when(server: ReplayServer) -> None:
    # GitHub's documented primary rate limit answer: 403, remaining 0, reset as epoch seconds.
    server.route(
        REPO,
        Reply(
            403,
            b'{"message":"API rate limit exceeded for user ID 1.","documentation_url":"https://docs.github.com/rest"}',
            {"Content-Type": "application/json", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1707861343"},
        ),
    )
    with pytest.raises(ConnectorError, match="rate limit is spent until 2024-02-13 21:55 UTC") as caught:
        GitHubConnector().fetch(github_source(server))
    assert caught.value.transient is True


def test_github_forbidden_without_rate_limit_says_the_token_lacks_a_scope(server: ReplayServer) -> None:
    github_routes(server)
    server.route(
        f"{REPO}/branches/main/protection",
        Reply(
            403,
            b'{"message":"Resource not accessible by personal access token","status":"403"}',
            {"Content-Type": "application/json", "X-RateLimit-Remaining": "4999"},
        ),
    )
    with pytest.raises(ConnectorError, match="lacks a scope or permission") as caught:
        GitHubConnector().fetch(github_source(server))
    assert caught.value.transient is False


def prometheus_source(server: ReplayServer, **configuration: Any) -> Source:
    return Source(configuration={"url": server.url, **configuration}, secrets={"token": "prom-token"})


def test_prometheus_fetch_over_http_gives_the_documented_facts(server: ReplayServer) -> None:
    server.route("/api/v1/rules?type=alert", json_reply(RULES))
    server.route("/api/v1/query?query=up", json_reply(QUERY))
    fetched = PrometheusConnector().fetch(
        prometheus_source(
            server,
            alerts=["HighRequestLatency", "HighErrorRate"],
            query="up",
            query_label="targets up",
            aggregate="max",
        )
    )
    assert fetched.facts.metrics == {
        "alert_rules_matched": 1.0,
        "alert_rules_missing": 1.0,
        "alert_rules_unhealthy": 0.0,
        "alert_rules_firing": 1.0,
        "value": 1.0,
    }
    assert fetched.facts.summary == "1 of 2 alert rules loaded (missing: HighErrorRate); targets up = 1."
    assert fetched.payload == interop_bytes(RULES) + b"\n" + interop_bytes(QUERY)
    assert {request.headers["Authorization"] for request in server.received} == {"Bearer prom-token"}


def test_prometheus_error_status_with_its_json_error_is_read_out(server: ReplayServer) -> None:
    server.route(
        "/api/v1/query",
        Reply(
            400,
            b'{"status":"error","errorType":"bad_data","error":"invalid parameter \\"query\\": 1:4: parse error"}',
            {"Content-Type": "application/json"},
        ),
    )
    with pytest.raises(ConnectorError, match=r"Prometheus answered an error \(bad_data\): invalid parameter") as caught:
        PrometheusConnector().fetch(prometheus_source(server, query="up{"))
    assert caught.value.transient is False


def test_prometheus_with_nothing_to_check_says_so() -> None:
    with pytest.raises(ConnectorError, match="Nothing to check"):
        PrometheusConnector().fetch(Source(configuration={"url": "https://prometheus.example"}))


def pagerduty_source(server: ReplayServer) -> Source:
    return Source(
        configuration={"api_url": server.url, "schedule_id": "PI7DH85", "escalation_policy_id": "PWCQTOV"},
        secrets={"token": "pd-token"},
    )


def policy_reply() -> Reply:
    # The list's first captured policy, in the envelope GET /escalation_policies/{id} documents.
    body = json.dumps({"escalation_policy": recorded(POLICIES)[0]}).encode()
    return Reply(200, body, {"Content-Type": "application/json"})


def test_pagerduty_fetch_over_http_counts_people_levels_and_targets(server: ReplayServer) -> None:
    server.route("/oncalls?schedule_ids[]=PI7DH85", json_reply(ONCALLS))
    server.route("/escalation_policies/PWCQTOV", policy_reply())
    fetched = PagerDutyConnector().fetch(pagerduty_source(server))
    assert fetched.facts.metrics == {"oncall_people": 1.0, "escalation_levels": 3.0, "escalation_targets": 4.0}
    assert fetched.facts.details["oncall"] == {
        "schedule_id": "PI7DH85",
        "people": [{"id": "PT23IWX", "name": "Tim Wright"}],
        "via": "oncalls",
    }
    assert fetched.facts.summary == (
        "on call now for PI7DH85: Tim Wright; escalation policy 'Alexis demo EP': 3 levels, 4 targets."
    )
    for request in server.received:
        assert request.headers["Authorization"] == "Token token=pd-token"
        assert request.headers["Accept"] == "application/vnd.pagerduty+json;version=2"


def test_pagerduty_falls_back_to_the_schedules_final_layer_when_oncalls_is_empty(server: ReplayServer) -> None:
    server.route(
        "/oncalls?schedule_ids[]=PI7DH85",
        Reply(200, b'{"oncalls": [], "limit": 100, "offset": 0, "more": false, "total": null}'),
    )
    server.route("/schedules/PI7DH85", json_reply(SCHEDULE))
    server.route("/escalation_policies/PWCQTOV", policy_reply())
    fetched = PagerDutyConnector().fetch(pagerduty_source(server))
    assert fetched.facts.metrics["oncall_people"] == 1.0
    assert fetched.facts.details["oncall"]["via"] == "schedule final layer"
    assert fetched.facts.details["oncall"]["people"] == [{"id": "PXPGF42", "name": "Regina Phalange"}]


def test_pagerduty_unknown_policy_says_which_id(server: ReplayServer) -> None:
    server.route("/oncalls", json_reply(ONCALLS))
    server.route(
        "/escalation_policies/PWCQTOV",
        Reply(404, b'{"error":{"message":"Not Found","code":2100}}', {"Content-Type": "application/json"}),
    )
    with pytest.raises(ConnectorError, match=r"PagerDuty has no escalation policy PWCQTOV \(404\)") as caught:
        PagerDutyConnector().fetch(pagerduty_source(server))
    assert caught.value.transient is False


def test_pagerduty_test_connection_names_schedule_and_policy(server: ReplayServer) -> None:
    server.route("/schedules/PI7DH85", json_reply(SCHEDULE))
    server.route("/escalation_policies/PWCQTOV", policy_reply())
    assert PagerDutyConnector().test_connection(pagerduty_source(server)) == (
        "Reached PagerDuty: schedule 'Daily Engineering Rotation' and escalation policy 'Alexis demo EP'."
    )


def test_http_json_fetch_over_http_reads_the_number_and_sends_the_header(server: ReplayServer) -> None:
    server.route("/summary", json_reply(SCHEDULE))
    source = Source(
        configuration={
            "url": f"{server.url}/summary",
            "json_path": "$.schedule.final_schedule.rendered_coverage_percentage",
            "metric_name": "coverage",
            "header_name": "X-Api-Key",
        },
        secrets={"header_value": "k-123"},
    )
    fetched = HttpJsonConnector().fetch(source)
    assert fetched.facts.metrics == {"coverage": 37.5}
    assert fetched.facts.summary == "coverage = 37.5 (from $.schedule.final_schedule.rendered_coverage_percentage)"
    assert fetched.payload == interop_bytes(SCHEDULE)
    assert server.received[0].headers["X-Api-Key"] == "k-123"


# --- Bad answers: every connector fails with words and the right transient flag ----------

BAD_ANSWERS: dict[str, tuple[Reply, bool, str]] = {
    "truncated JSON": (
        Reply(200, interop_bytes(ONCALLS)[:300], {"Content-Type": "application/json"}),
        False,
        "JSON that does not parse",
    ),
    "HTML error page with 200": (
        Reply(200, b"<!DOCTYPE html><html><body><h1>Sign in</h1></body></html>", {"Content-Type": "text/html"}),
        False,
        "HTML page, not JSON",
    ),
    "500": (Reply(500, b"Internal Server Error", {"Content-Type": "text/plain"}), True, "500"),
    "401": (Reply(401, b'{"message":"Unauthorized"}', {"Content-Type": "application/json"}), False, "401"),
}

CONNECTORS: dict[str, tuple[Any, dict[str, Any], str]] = {
    "github": (GitHubConnector(), {"repository": "acme/claims", "required_files": ["RUNBOOK.md"]}, "api_url"),
    "prometheus": (PrometheusConnector(), {"alerts": ["HighErrorRate"], "query": "up"}, "url"),
    "pagerduty": (PagerDutyConnector(), {"schedule_id": "PI7DH85"}, "api_url"),
    "http_json": (HttpJsonConnector(), {"json_path": "data.value"}, "url"),
}


def source_for(kind: str, url: str) -> tuple[Any, Source]:
    connector, configuration, url_key = CONNECTORS[kind]
    return connector, Source(configuration={**configuration, url_key: url}, secrets={"token": "t"})


@pytest.mark.parametrize("kind", CONNECTORS)
@pytest.mark.parametrize("answer", BAD_ANSWERS)
def test_a_bad_answer_fails_the_fetch_with_a_readable_message(settings, kind: str, answer: str) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    reply, transient, words = BAD_ANSWERS[answer]
    with replay_server(fallback=reply) as server:
        connector, source = source_for(kind, server.url)
        with pytest.raises(ConnectorError) as caught:
            connector.fetch(source)
    assert words in caught.value.message
    assert caught.value.transient is transient


WRONG_SHAPE = {
    "github": "unexpected shape: the repository answer is a list of 1 item",
    "prometheus": "unexpected shape: the API answer is a list of 1 item",
    "pagerduty": "unexpected shape: the on-calls answer is a list of 1 item",
    "http_json": "expected an object at $, found a list of 1 item",
}


@pytest.mark.parametrize("kind", CONNECTORS)
def test_a_wrong_schema_fails_the_fetch_naming_what_was_found(settings, kind: str) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    with replay_server(fallback=Reply(200, b'["unexpected"]', {"Content-Type": "application/json"})) as server:
        connector, source = source_for(kind, server.url)
        with pytest.raises(ConnectorError) as caught:
            connector.fetch(source)
    assert WRONG_SHAPE[kind] in caught.value.message
    assert caught.value.transient is False


@pytest.mark.parametrize("kind", CONNECTORS)
def test_a_timeout_fails_the_fetch_as_transient(settings, kind: str) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.OUTBOUND_TIMEOUT_SECONDS = 0.5
    with replay_server(fallback=Reply(200, b"{}", delay=2.0)) as server:
        connector, source = source_for(kind, server.url)
        with pytest.raises(ConnectorError) as caught:
            connector.fetch(source)
    assert caught.value.transient is True
    assert server.url in caught.value.message


@pytest.mark.parametrize("kind", CONNECTORS)
def test_ten_megabytes_of_garbage_is_refused_not_parsed(settings, kind: str) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    garbage = bytes(range(256)) * (10 * 1024 * 1024 // 256)
    with replay_server(fallback=Reply(200, garbage, {"Content-Type": "application/octet-stream"})) as server:
        connector, source = source_for(kind, server.url)
        with pytest.raises(ConnectorError) as caught:
            connector.fetch(source)
    assert caught.value.transient is False
    assert server.url in caught.value.message


@pytest.mark.parametrize("kind", CONNECTORS)
def test_a_redirect_loop_fails_the_fetch(settings, kind: str) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    with replay_server(fallback=Reply(302, b"", {"Location": "/loop"})) as server:
        connector, source = source_for(kind, server.url)
        with pytest.raises(ConnectorError) as caught:
            connector.fetch(source)
    assert caught.value.transient is False
    assert "redirect" in caught.value.message.lower()


@pytest.mark.parametrize(
    ("header_name", "sent_as", "sent"),
    [(None, "Authorization", "Bearer t-9"), ("X-Api-Key", "X-Api-Key", "t-9")],
)
def test_http_json_sends_the_pages_token_as_a_bearer_or_in_the_named_header(
    server: ReplayServer, header_name: str | None, sent_as: str, sent: str
) -> None:
    server.route("/score", Reply(200, b'{"data": {"value": 0.5}}', {"Content-Type": "application/json"}))
    configuration = {"url": f"{server.url}/score", "json_path": "data.value"}
    if header_name:
        configuration["header_name"] = header_name
    HttpJsonConnector().fetch(Source(configuration=configuration, secrets={"token": "t-9"}))
    assert server.received[0].headers[sent_as] == sent
