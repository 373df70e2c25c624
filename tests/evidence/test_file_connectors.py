"""The eval-results and usage connectors: an uploaded file, or a URL fetched for real from a
local server through outbound_get (loopback allowed only for these tests)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from assessments.evidence.connectors import eval_results, usage  # noqa: F401  (registers the kinds)
from assessments.evidence.connectors.base import ConnectorError, Source, connector_for
from assessments.evidence.formats import FormatError

INTEROP = Path(__file__).parent / "interop"
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "evidence"
PAGES: dict[str, tuple[int, bytes]] = {
    "/promptfoo.json": (200, (INTEROP / "promptfoo/french-greeting-test_output.json").read_bytes()),
    "/usage.csv": (200, (FIXTURES / "usage-requests.csv").read_bytes()),
    "/login": (200, b"<!doctype html><html><head><title>Sign in</title></head><body></body></html>"),
    "/gone": (404, b"not found"),
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, body = PAGES.get(self.path, (404, b""))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def base_url(settings) -> Iterator[str]:
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_both_kinds_are_registered_with_their_labels() -> None:
    assert connector_for("eval_results").label == "Eval results (file or URL)"
    assert connector_for("usage_cost").label == "Usage and cost export"


def test_eval_results_reads_the_uploaded_file_and_keeps_the_raw_bytes() -> None:
    data = (FIXTURES / "junit-goldenset-regression.xml").read_bytes()
    fetched = connector_for("eval_results").fetch(Source(configuration={}, file=data))
    assert fetched.payload == data
    assert fetched.facts.metrics["passed"] == 11
    assert fetched.facts.metrics["failed"] == 5


def test_eval_results_test_connection_says_what_it_found() -> None:
    data = (INTEROP / "promptfoo/french-greeting-test_output.json").read_bytes()
    said = connector_for("eval_results").test_connection(Source(configuration={}, file=data))
    assert said == "Reached the uploaded file (12 kB): promptfoo results, 1 case."


def test_the_file_wins_over_the_url() -> None:
    data = (FIXTURES / "garak-test_with_ci.report.jsonl").read_bytes()
    fetched = connector_for("eval_results").fetch(Source(configuration={"url": "http://10.0.0.1/x"}, file=data))
    assert fetched.facts.details["format"] == "garak"


def test_neither_file_nor_url_is_a_readable_error() -> None:
    with pytest.raises(ConnectorError, match="Neither a file nor a URL"):
        connector_for("eval_results").fetch(Source(configuration={}))


def test_eval_results_fetches_the_url(base_url: str) -> None:
    source = Source(configuration={"url": f"{base_url}/promptfoo.json"})
    fetched = connector_for("eval_results").fetch(source)
    assert fetched.facts.details["tool_version"] == "0.120.16"
    assert fetched.payload == PAGES["/promptfoo.json"][1]
    said = connector_for("eval_results").test_connection(source)
    assert said == f"Reached {base_url}/promptfoo.json (200, 12 kB): promptfoo results, 1 case."


def test_a_sign_in_page_at_the_url_is_named_as_html(base_url: str) -> None:
    with pytest.raises(FormatError, match="HTML web page titled 'Sign in'"):
        connector_for("eval_results").fetch(Source(configuration={"url": f"{base_url}/login"}))


def test_a_404_at_the_url_is_a_permanent_error(base_url: str) -> None:
    with pytest.raises(ConnectorError) as caught:
        connector_for("eval_results").fetch(Source(configuration={"url": f"{base_url}/gone"}))
    assert "answered 404" in caught.value.message
    assert caught.value.transient is False


def test_a_refused_address_never_reaches_the_parser() -> None:
    with pytest.raises(ConnectorError):
        connector_for("eval_results").fetch(Source(configuration={"url": "http://169.254.169.254/latest/meta-data"}))


def test_usage_projects_against_the_pilots_volume_and_envelope() -> None:
    data = (FIXTURES / "usage-requests.csv").read_bytes()
    source = Source(
        configuration={}, file=data, context={"expected_monthly_volume": 2000, "cost_envelope_per_task": "0.01"}
    )
    fetched = connector_for("usage_cost").fetch(source)
    per_task = fetched.facts.metrics["cost_per_task"]
    assert fetched.facts.metrics["monthly_projection"] == pytest.approx(per_task * 2000)
    assert fetched.facts.metrics["envelope_ratio"] == pytest.approx(per_task / 0.01)
    assert fetched.payload == data


def test_usage_without_pilot_figures_makes_no_projection() -> None:
    data = (FIXTURES / "usage-requests.csv").read_bytes()
    facts = connector_for("usage_cost").fetch(Source(configuration={}, file=data)).facts
    assert "monthly_projection" not in facts.metrics
    assert "envelope_ratio" not in facts.metrics


def test_usage_with_a_nonsense_pilot_figure_says_so() -> None:
    data = (FIXTURES / "usage-requests.csv").read_bytes()
    with pytest.raises(ConnectorError, match="expected monthly volume"):
        connector_for("usage_cost").fetch(
            Source(configuration={}, file=data, context={"expected_monthly_volume": "lots"})
        )


def test_usage_fetches_the_url_and_says_what_it_found(base_url: str) -> None:
    source = Source(configuration={"url": f"{base_url}/usage.csv"})
    said = connector_for("usage_cost").test_connection(source)
    assert said.startswith(f"Reached {base_url}/usage.csv (200, ")
    assert said.endswith("CSV request log, 727 tasks.")


def test_eval_results_at_a_url_sends_the_token_as_a_bearer(settings) -> None:
    from tests.evidence.http_replay import Reply, replay_server

    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    data = (INTEROP / "promptfoo/french-greeting-test_output.json").read_bytes()
    with replay_server(fallback=Reply(200, data, {"Content-Type": "application/json"})) as server:
        connector_for("eval_results").fetch(
            Source(configuration={"url": f"{server.url}/r.json"}, secrets={"token": "s"})
        )
    assert server.received[0].headers["Authorization"] == "Bearer s"
