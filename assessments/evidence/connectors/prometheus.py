"""Prometheus: are the alert rules a pilot promised loaded, and what does one PromQL query say now.

Reads the HTTP API's /api/v1/rules and /api/v1/query. The parsing is pure functions over the
decoded JSON, so it is tested on the API's documented examples and on a real Prometheus.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar
from urllib.parse import urlencode

from assessments.evidence.connectors.base import ConnectorError, Facts, Fetched, Source, register
from assessments.evidence.connectors.http_json import (
    decode_json,
    describe,
    expect_dict,
    expect_list,
    joined_payload,
    snippet,
    status_error,
)
from assessments.evidence.outbound import OutboundResponse, outbound_get

SERVICE = "Prometheus"
AGGREGATES = ("max", "min", "sum")
# Prometheus's errorType values that say "the server was busy", not "the request was wrong".
TRANSIENT_ERROR_TYPES = frozenset({"timeout", "canceled", "unavailable"})


# --- Parsing (pure) ---------------------------------------------------------------------


def prometheus_data(payload: Any, *, status: int = 200) -> Any:
    """The ``data`` of a Prometheus API envelope, or Prometheus's own error in words."""
    envelope = expect_dict(payload, "the API answer", service=SERVICE)
    if envelope.get("status") == "error":
        error_type = str(envelope.get("errorType") or "error")
        message = snippet(str(envelope.get("error") or "no message"), 300)
        raise ConnectorError(
            f"Prometheus answered an error ({error_type}): {message}",
            transient=error_type in TRANSIENT_ERROR_TYPES or status >= 500,
        )
    if envelope.get("status") != "success":
        raise ConnectorError(
            f"Prometheus answered in an unexpected shape: status is {describe(envelope.get('status'))}, "
            f'not "success" or "error".'
        )
    return envelope.get("data")


def _state_from_alerts(alerts: Any) -> str | None:
    """A rule's state from its active alerts, for servers that do not send the rule's own ``state``."""
    if not isinstance(alerts, list):
        return None
    states = {alert.get("state") for alert in alerts if isinstance(alert, dict)}
    for state in ("firing", "pending"):
        if state in states:
            return state
    return "inactive"


def prometheus_rules_facts(
    payload: Any, *, alerts: list[str], expressions: list[str]
) -> tuple[dict[str, float], dict[str, Any]]:
    """Which wanted alert rules are loaded: by exact ``alert`` name, or by a substring of the rule's query.

    Each wanted name or expression counts once, matched or missing; the matched rules' state
    (inactive, pending, firing) and health (ok, err, unknown) go in the details, since a rule
    that fails to evaluate protects nobody.
    """
    data = expect_dict(prometheus_data(payload), "data", service=SERVICE)
    groups = expect_list(data.get("groups"), "data.groups", service=SERVICE)
    loaded: list[dict[str, Any]] = []
    for group in groups:
        group = expect_dict(group, "a rule group", service=SERVICE)
        for rule in expect_list(group.get("rules"), f"group {group.get('name')!r} rules", service=SERVICE):
            if isinstance(rule, dict) and rule.get("type") == "alerting":
                loaded.append(
                    {
                        "name": rule.get("name"),
                        "query": rule.get("query") or "",
                        "state": rule.get("state") or _state_from_alerts(rule.get("alerts")),
                        "health": rule.get("health"),
                        "last_error": rule.get("lastError") or None,
                        "group": group.get("name"),
                        "file": group.get("file"),
                    }
                )

    matched: list[dict[str, Any]] = []
    missing: list[str] = []
    wanted = [("alert", name) for name in alerts] + [("expression", text) for text in expressions]
    for kind, text in wanted:
        if kind == "alert":
            hits = [rule for rule in loaded if rule["name"] == text]
        else:
            hits = [rule for rule in loaded if text in str(rule["query"])]
        if hits:
            matched.append({"wanted": text, "by": kind, "rules": hits})
        else:
            missing.append(text)
    # A rule wanted both by name and by expression is still one rule.
    matched_rules = list(
        {
            (rule["file"], rule["group"], rule["name"], rule["query"]): rule
            for entry in matched
            for rule in entry["rules"]
        }.values()
    )
    metrics = {
        "alert_rules_matched": float(len(matched)),
        "alert_rules_missing": float(len(missing)),
        "alert_rules_unhealthy": float(sum(1 for rule in matched_rules if rule["health"] != "ok")),
        "alert_rules_firing": float(sum(1 for rule in matched_rules if rule["state"] == "firing")),
    }
    details = {"alert_rules_matched": matched, "alert_rules_missing": missing, "alert_rules_loaded": len(loaded)}
    return metrics, details


def _sample_value(sample: Any, where: str) -> float:
    pair = expect_list(sample, where, service=SERVICE)
    if len(pair) != 2:
        raise ConnectorError(
            f"Prometheus answered in an unexpected shape: {where} is {describe(pair)}, not [time, value]."
        )
    try:
        value = float(pair[1])
    except (TypeError, ValueError):
        raise ConnectorError(
            f"Prometheus answered a value that is not a number at {where}: {describe(pair[1])}."
        ) from None
    return value


def prometheus_query_value(payload: Any, *, aggregate: str | None = None) -> tuple[float, dict[str, Any]]:
    """One number from an instant query: a scalar, or a vector of one series (or aggregated).

    Several series without ``aggregate`` is an error rather than a guess: which pod's error
    rate a check compares must be decided by the person who wrote the query.
    """
    data = expect_dict(prometheus_data(payload), "data", service=SERVICE)
    result_type = data.get("resultType")
    result = data.get("result")
    labels: list[dict[str, Any]] = []
    if result_type == "scalar":
        value = _sample_value(result, "the scalar result")
    elif result_type == "vector":
        series = expect_list(result, "data.result", service=SERVICE)
        if not series:
            raise ConnectorError(
                "The Prometheus query returned no series (an empty result): check the metric name and labels, "
                "and that the target is being scraped."
            )
        values: list[float] = []
        for index, item in enumerate(series):
            item = expect_dict(item, f"data.result[{index}]", service=SERVICE)
            metric = item.get("metric")
            labels.append(metric if isinstance(metric, dict) else {})
            values.append(_sample_value(item.get("value"), f"data.result[{index}].value"))
        if len(values) == 1:
            value = values[0]
        elif aggregate == "max":
            value = max(values)
        elif aggregate == "min":
            value = min(values)
        elif aggregate == "sum":
            value = sum(values)
        else:
            shown = "; ".join("{" + ", ".join(f"{k}={v!r}" for k, v in sorted(one.items())) + "}" for one in labels[:3])
            more = f" and {len(labels) - 3} more" if len(labels) > 3 else ""
            raise ConnectorError(
                f"The Prometheus query returned {len(values)} series ({shown}{more}), so there is no single value: "
                f"aggregate in the query (e.g. max(...)) or set aggregate to max, min or sum."
            )
    elif result_type in {"matrix", "string"}:
        raise ConnectorError(
            f"The Prometheus query returned a {result_type}, not a number: write an instant query "
            f"without a [range] selector."
        )
    else:
        raise ConnectorError(f"Prometheus answered in an unexpected shape: resultType is {describe(result_type)}.")
    if not math.isfinite(value):
        raise ConnectorError(f"The Prometheus query's value is {value}, which a check cannot compare.")
    return value, {"result_type": result_type, "series": len(labels) or 1, "labels": labels[:10]}


# --- HTTP -------------------------------------------------------------------------------


def _strings(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise ConnectorError(f"{name} must be a list of names, e.g. HighErrorRate.")
    return [item.strip() for item in value]


@register
class PrometheusConnector:
    """Alert rules present and healthy, and one instant query's value.

    Configuration: ``url`` (the server's base address), ``alerts`` (alert names) and/or
    ``expressions`` (substrings of rule queries), ``query`` (PromQL), ``query_label``,
    ``aggregate`` (max, min or sum over several series). Secret: ``token`` (bearer), optional.
    """

    kind: ClassVar[str] = "prometheus"
    label: ClassVar[str] = "Prometheus"

    def _settings(self, source: Source) -> tuple[str, dict[str, str]]:
        url = source.configuration.get("url")
        if not isinstance(url, str) or not url.strip():
            raise ConnectorError("This Prometheus has no url: give its base address, e.g. https://prometheus.example.")
        headers = {"Accept": "application/json"}
        if source.secrets.get("token"):
            headers["Authorization"] = f"Bearer {source.secrets['token']}"
        return url.strip().rstrip("/"), headers

    def _api(self, url: str, headers: dict[str, str], what: str) -> tuple[Any, OutboundResponse]:
        response = outbound_get(url, headers=headers)
        if 200 <= response.status < 300:
            return decode_json(response, service=SERVICE), response
        # Prometheus answers 400/422/503 with a JSON error envelope; its words beat a bare status.
        try:
            body = decode_json(response, service=SERVICE)
        except ConnectorError:
            raise status_error(response, service=SERVICE, what=what) from None
        if isinstance(body, dict) and body.get("status") == "error":
            prometheus_data(body, status=response.status)
        raise status_error(response, service=SERVICE, what=what)

    def test_connection(self, source: Source) -> str:
        base, headers = self._settings(source)
        payload, _ = self._api(f"{base}/api/v1/status/buildinfo", headers, "its build information")
        data = prometheus_data(payload)
        version = data.get("version") if isinstance(data, dict) else None
        return f"Reached Prometheus {version or '(version not given)'} at {base}."

    def fetch(self, source: Source) -> Fetched:
        base, headers = self._settings(source)
        configuration = source.configuration
        alerts = _strings(configuration.get("alerts"), "alerts")
        expressions = _strings(configuration.get("expressions"), "expressions")
        query = configuration.get("query")
        aggregate = configuration.get("aggregate")
        if query is not None and (not isinstance(query, str) or not query.strip()):
            raise ConnectorError("query must be a PromQL expression, e.g. sum(rate(http_errors_total[5m])).")
        if aggregate is not None and aggregate not in AGGREGATES:
            raise ConnectorError(f"aggregate must be one of max, min or sum, not {aggregate!r}.")
        if not alerts and not expressions and not query:
            raise ConnectorError("Nothing to check: name alert rules (alerts or expressions) or a query.")

        metrics: dict[str, float] = {}
        details: dict[str, Any] = {"url": base}
        parts: list[str] = []
        seen: list[OutboundResponse] = []
        if alerts or expressions:
            payload, response = self._api(f"{base}/api/v1/rules?type=alert", headers, "its rules")
            seen.append(response)
            rule_metrics, rule_details = prometheus_rules_facts(payload, alerts=alerts, expressions=expressions)
            metrics |= rule_metrics
            details |= rule_details
            wanted = len(alerts) + len(expressions)
            missing = rule_details["alert_rules_missing"]
            parts.append(
                f"{int(rule_metrics['alert_rules_matched'])} of {wanted} alert rules loaded"
                + (f" (missing: {', '.join(missing)})" if missing else "")
            )
        if query:
            payload, response = self._api(f"{base}/api/v1/query?{urlencode({'query': query})}", headers, "the query")
            seen.append(response)
            value, query_details = prometheus_query_value(payload, aggregate=aggregate)
            metrics["value"] = value
            label = configuration.get("query_label") or query
            details |= {"query": query, "query_label": label, "aggregate": aggregate} | query_details
            parts.append(f"{label} = {value:g}")
        return Fetched(
            facts=Facts(metrics=metrics, details=details, summary="; ".join(parts) + "."),
            payload=joined_payload(seen),
        )
