"""The Prometheus connector against a real Prometheus server (the Debian package ``prometheus``).

The server runs on 127.0.0.1 with a temporary store, scrapes itself under two job names (so
``up`` has two series) and loads a real alerting rules file from the interop corpus
(samber/awesome-prometheus-alerts' self-monitoring rules). The documented examples in
test_http_connectors.py show the format; this shows the connector reads what Prometheus
really answers.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from assessments.evidence.connectors.base import ConnectorError, Source
from assessments.evidence.connectors.prometheus import PrometheusConnector
from tests.evidence.http_replay import INTEROP

PROMETHEUS = shutil.which("prometheus")
RULES_FILE = INTEROP / "prometheus" / "embedded-exporter.yml"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
MISSING = "the prometheus binary is not installed (make system-deps, or apt-get install prometheus)"

# Locally a missing server skips; in CI the fixture fails instead, so the check cannot vanish.
pytestmark = pytest.mark.skipif(PROMETHEUS is None and not IN_CI, reason=MISSING)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bytes(response.read())


def _rule_state(url: str, name: str) -> str | None:
    groups = json.loads(_get(f"{url}/api/v1/rules"))["data"]["groups"]
    return next((rule.get("state") for group in groups for rule in group["rules"] if rule["name"] == name), None)


@pytest.fixture(scope="module")
def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if PROMETHEUS is None:
        pytest.fail(f"CI=true but {MISSING}")
    home: Path = tmp_path_factory.mktemp("prometheus")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    (home / "prometheus.yml").write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  evaluation_interval: 1s\n"
        "rule_files:\n"
        f"  - {RULES_FILE}\n"
        "scrape_configs:\n"
        "  - job_name: prometheus\n"
        f"    static_configs: [{{targets: ['{address}']}}]\n"
        "  - job_name: prometheus-again\n"
        f"    static_configs: [{{targets: ['{address}']}}]\n"
    )
    log = (home / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={home / 'prometheus.yml'}",
            f"--storage.tsdb.path={home / 'data'}",
            f"--web.listen-address={address}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    url = f"http://{address}"
    try:
        # Ready, then wait for both scrapes, and for the rules to be evaluated after them:
        # PrometheusJobMissing (absent(up{job="prometheus"})) fires until the first scrape lands.
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"prometheus exited with {process.returncode}: {(home / 'prometheus.log').read_text()}")
            try:
                scraped = b'"value"' in _get(f"{url}/api/v1/query?query=count(up)%3D%3D2")
                if scraped and _rule_state(url, "PrometheusJobMissing") == "inactive":
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"prometheus was not ready in 30 s: {(home / 'prometheus.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
def allow_localhost(settings) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]


@pytest.mark.usefixtures("allow_localhost")
def test_real_prometheus_reports_loaded_and_missing_alert_rules_and_a_query_value(prometheus_url: str) -> None:
    fetched = PrometheusConnector().fetch(
        Source(
            configuration={
                "url": prometheus_url,
                # The dead man's switch (vector(1)) always fires: the one firing rule.
                "alerts": [
                    "PrometheusJobMissing",
                    "PrometheusTargetMissing",
                    "PrometheusAlertmanagerE2eDeadManSwitch",
                    "HighErrorRate",
                ],
                "expressions": ["prometheus_tsdb_compactions_failed_total"],
                "query": 'up{job="prometheus"}',
                "query_label": "Prometheus scraping itself",
            }
        )
    )
    metrics = fetched.facts.metrics
    assert metrics["alert_rules_matched"] == 4.0
    assert metrics["alert_rules_missing"] == 1.0
    assert metrics["alert_rules_unhealthy"] == 0.0
    assert metrics["alert_rules_firing"] == 1.0
    assert metrics["value"] == 1.0
    details = fetched.facts.details
    assert details["alert_rules_missing"] == ["HighErrorRate"]
    assert details["alert_rules_loaded"] == 28
    by_name = {entry["wanted"]: entry["rules"][0] for entry in details["alert_rules_matched"]}
    assert by_name["PrometheusJobMissing"]["query"] == 'absent(up{job="prometheus"})'
    assert by_name["PrometheusJobMissing"]["group"] == "EmbeddedExporter"
    assert by_name["PrometheusJobMissing"]["file"] == str(RULES_FILE)
    assert by_name["PrometheusJobMissing"]["health"] == "ok"
    assert by_name["PrometheusJobMissing"]["state"] == "inactive"
    assert by_name["PrometheusAlertmanagerE2eDeadManSwitch"]["state"] == "firing"
    assert by_name["prometheus_tsdb_compactions_failed_total"]["name"] == "PrometheusTsdbCompactionsFailed"
    assert details["labels"] == [
        {"__name__": "up", "instance": prometheus_url.removeprefix("http://"), "job": "prometheus"}
    ]
    assert (
        fetched.facts.summary == "4 of 5 alert rules loaded (missing: HighErrorRate); Prometheus scraping itself = 1."
    )


@pytest.mark.usefixtures("allow_localhost")
def test_real_prometheus_two_series_need_an_aggregate(prometheus_url: str) -> None:
    source = Source(configuration={"url": prometheus_url, "query": "up"})
    with pytest.raises(ConnectorError, match=r"returned 2 series .*job='prometheus'.*set aggregate") as caught:
        PrometheusConnector().fetch(source)
    assert caught.value.transient is False
    summed = PrometheusConnector().fetch(
        Source(configuration={"url": prometheus_url, "query": "up", "aggregate": "sum"})
    )
    assert summed.facts.metrics == {"value": 2.0}
    assert summed.facts.details["series"] == 2


@pytest.mark.usefixtures("allow_localhost")
def test_real_prometheus_parse_error_comes_back_in_its_words(prometheus_url: str) -> None:
    with pytest.raises(ConnectorError, match=r"Prometheus answered an error \(bad_data\): .*parse error") as caught:
        PrometheusConnector().fetch(Source(configuration={"url": prometheus_url, "query": "sum(up"}))
    assert caught.value.transient is False


@pytest.mark.usefixtures("allow_localhost")
def test_real_prometheus_empty_result_is_a_readable_error(prometheus_url: str) -> None:
    with pytest.raises(ConnectorError, match="no series"):
        PrometheusConnector().fetch(Source(configuration={"url": prometheus_url, "query": "no_such_metric_total"}))


@pytest.mark.usefixtures("allow_localhost")
def test_real_prometheus_test_connection_names_its_version(prometheus_url: str) -> None:
    answer = PrometheusConnector().test_connection(Source(configuration={"url": prometheus_url}))
    assert answer.startswith("Reached Prometheus 2.")
    assert answer.endswith(f"at {prometheus_url}.")
