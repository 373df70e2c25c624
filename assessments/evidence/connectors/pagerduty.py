"""PagerDuty: is someone on call for the pilot's schedule now, and how deep is the escalation.

Reads REST API v2 (/oncalls, /schedules/{id}, /escalation_policies/{id}) with an API token.
The parsing is pure functions over the decoded JSON, tested on PagerDuty's documented examples
and on escalation policies captured from its demo account.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

from assessments.evidence.connectors.base import ConnectorError, Facts, Fetched, Source, register
from assessments.evidence.connectors.http_json import (
    decode_json,
    expect_dict,
    expect_list,
    joined_payload,
    snippet,
    status_error,
)
from assessments.evidence.outbound import OutboundResponse, outbound_get

SERVICE = "PagerDuty"
DEFAULT_API_URL = "https://api.pagerduty.com"
PAGE_SIZE = 100
# Enough for any real schedule's on-call entries; a server that always says "more" stops here.
MAX_PAGES = 10


# --- Parsing (pure) ---------------------------------------------------------------------


def _people(entries: list[Any], where: str) -> list[dict[str, Any]]:
    """Distinct users (by id, first seen first) from entries that each carry a ``user`` reference."""
    people: dict[str, dict[str, Any]] = {}
    for index, entry in enumerate(entries):
        entry = expect_dict(entry, f"{where}[{index}]", service=SERVICE)
        user = expect_dict(entry.get("user"), f"{where}[{index}].user", service=SERVICE)
        user_id = user.get("id")
        if isinstance(user_id, str) and user_id not in people:
            people[user_id] = {"id": user_id, "name": user.get("summary") or user.get("name")}
    return list(people.values())


def pagerduty_oncall_people(payload: Any) -> tuple[list[dict[str, Any]], bool]:
    """The people in one page of GET /oncalls, and whether PagerDuty says there are more pages."""
    page = expect_dict(payload, "the on-calls answer", service=SERVICE)
    entries = expect_list(page.get("oncalls"), "oncalls", service=SERVICE)
    return _people(entries, "oncalls"), bool(page.get("more"))


def pagerduty_schedule_people(payload: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The people in a schedule's final (rendered) layer, with the schedule's name and id.

    The final layer is what PagerDuty pages from, overrides included; the individual layers
    are not, so they are not counted.
    """
    body = expect_dict(payload, "the schedule answer", service=SERVICE)
    schedule = expect_dict(body.get("schedule"), "schedule", service=SERVICE)
    final = expect_dict(schedule.get("final_schedule"), "schedule.final_schedule", service=SERVICE)
    entries = expect_list(
        final.get("rendered_schedule_entries"), "schedule.final_schedule.rendered_schedule_entries", service=SERVICE
    )
    return _people(entries, "final_schedule.rendered_schedule_entries"), {
        "id": schedule.get("id"),
        "name": schedule.get("name") or schedule.get("summary"),
        "html_url": schedule.get("html_url"),
    }


def pagerduty_policy_facts(policy: Any) -> tuple[dict[str, float], dict[str, Any]]:
    """``escalation_levels`` (rules) and ``escalation_targets`` (distinct users and schedules) of a policy.

    ``policy`` is the escalation policy object itself (the value of GET /escalation_policies/{id}'s
    ``escalation_policy``, or one item of the list endpoint).
    """
    policy = expect_dict(policy, "escalation_policy", service=SERVICE)
    rules = expect_list(policy.get("escalation_rules"), "escalation_policy.escalation_rules", service=SERVICE)
    targets: dict[tuple[str, str], dict[str, Any]] = {}
    levels = []
    for index, rule in enumerate(rules):
        rule = expect_dict(rule, f"escalation_rules[{index}]", service=SERVICE)
        rule_targets = expect_list(rule.get("targets"), f"escalation_rules[{index}].targets", service=SERVICE)
        names = []
        for target in rule_targets:
            if not isinstance(target, dict):
                continue
            # A user and a schedule never share an id, but the type keeps the key honest.
            key = (str(target.get("type")), str(target.get("id")))
            targets.setdefault(key, {"id": target.get("id"), "type": target.get("type"), "name": target.get("summary")})
            names.append(target.get("summary") or target.get("id"))
        levels.append({"delay_minutes": rule.get("escalation_delay_in_minutes"), "targets": names})
    return (
        {"escalation_levels": float(len(rules)), "escalation_targets": float(len(targets))},
        {
            "escalation_policy": {
                "id": policy.get("id"),
                "name": policy.get("name") or policy.get("summary"),
                "num_loops": policy.get("num_loops"),
                "levels": levels,
                "targets": list(targets.values()),
            }
        },
    )


# --- HTTP -------------------------------------------------------------------------------


def _pagerduty_error(response: OutboundResponse, what: str) -> ConnectorError:
    """PagerDuty's statuses in words, with its own ``error.message`` when it sent one."""
    message = ""
    try:
        body = decode_json(response, service=SERVICE)
    except ConnectorError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        message = snippet(str(body["error"].get("message") or ""), 120)
    if response.status == 401:
        return ConnectorError(
            f"PagerDuty rejected the API token (401{' ' + message if message else ''}): "
            f"check it is a REST API key that has not been revoked."
        )
    if response.status == 404:
        return ConnectorError(f"PagerDuty has no {what} (404): check the id (it looks like PXXXXXX).")
    return status_error(response, service=SERVICE, what=what, detail=message)


@register
class PagerDutyConnector:
    """On-call coverage and escalation depth for a pilot's schedule and escalation policy.

    Configuration: ``api_url`` (default api.pagerduty.com), ``schedule_id``,
    ``escalation_policy_id`` (at least one). Secret: ``token`` (a REST API key).
    """

    kind: ClassVar[str] = "pagerduty"
    label: ClassVar[str] = "PagerDuty"

    def _settings(self, source: Source) -> tuple[str, str | None, str | None, dict[str, str]]:
        configuration = source.configuration
        api_url = configuration.get("api_url") or DEFAULT_API_URL
        schedule_id = configuration.get("schedule_id") or None
        policy_id = configuration.get("escalation_policy_id") or None
        if not isinstance(api_url, str):
            raise ConnectorError("api_url must be PagerDuty's API address, e.g. https://api.pagerduty.com.")
        for name, value in (("schedule_id", schedule_id), ("escalation_policy_id", policy_id)):
            if value is not None and not isinstance(value, str):
                raise ConnectorError(f"{name} must be a PagerDuty id such as PI7DH85.")
        if schedule_id is None and policy_id is None:
            raise ConnectorError("Nothing to check: give a schedule_id, an escalation_policy_id, or both.")
        headers = {"Accept": "application/vnd.pagerduty+json;version=2"}
        if source.secrets.get("token"):
            headers["Authorization"] = f"Token token={source.secrets['token']}"
        return api_url.rstrip("/"), schedule_id, policy_id, headers

    def _get(self, url: str, headers: dict[str, str], what: str, seen: list[OutboundResponse]) -> Any:
        response = outbound_get(url, headers=headers)
        seen.append(response)
        if not 200 <= response.status < 300:
            raise _pagerduty_error(response, what)
        return decode_json(response, service=SERVICE)

    def _schedule(self, api: str, schedule_id: str, headers: dict[str, str], seen: list[OutboundResponse]) -> Any:
        # since/until of a minute around now: the final layer then holds who is on call now.
        now = datetime.now(tz=UTC).replace(microsecond=0)
        window = urlencode({"since": now.isoformat(), "until": (now + timedelta(minutes=1)).isoformat()})
        return self._get(
            f"{api}/schedules/{quote(schedule_id, safe='')}?{window}", headers, f"schedule {schedule_id}", seen
        )

    def _policy(self, api: str, policy_id: str, headers: dict[str, str], seen: list[OutboundResponse]) -> Any:
        body = self._get(
            f"{api}/escalation_policies/{quote(policy_id, safe='')}", headers, f"escalation policy {policy_id}", seen
        )
        return expect_dict(body, "the escalation policy answer", service=SERVICE).get("escalation_policy")

    def test_connection(self, source: Source) -> str:
        api, schedule_id, policy_id, headers = self._settings(source)
        reached = []
        if schedule_id:
            _, schedule = pagerduty_schedule_people(self._schedule(api, schedule_id, headers, []))
            reached.append(f"schedule {schedule['name']!r}")
        if policy_id:
            _, details = pagerduty_policy_facts(self._policy(api, policy_id, headers, []))
            reached.append(f"escalation policy {details['escalation_policy']['name']!r}")
        return f"Reached PagerDuty: {' and '.join(reached)}."

    def fetch(self, source: Source) -> Fetched:
        api, schedule_id, policy_id, headers = self._settings(source)
        metrics: dict[str, float] = {}
        details: dict[str, Any] = {}
        parts: list[str] = []
        seen: list[OutboundResponse] = []
        if schedule_id:
            people: dict[str, dict[str, Any]] = {}
            for page in range(MAX_PAGES):
                query = urlencode(
                    {"schedule_ids[]": schedule_id, "limit": PAGE_SIZE, "offset": page * PAGE_SIZE, "time_zone": "UTC"}
                )
                found, more = pagerduty_oncall_people(
                    self._get(f"{api}/oncalls?{query}", headers, f"on-calls for schedule {schedule_id}", seen)
                )
                for person in found:
                    people.setdefault(person["id"], person)
                if not more:
                    break
            via = "oncalls"
            if not people:
                # /oncalls lists a schedule only when an escalation policy uses it; the schedule's
                # own final layer still says who is on call.
                found, _ = pagerduty_schedule_people(self._schedule(api, schedule_id, headers, seen))
                people = {person["id"]: person for person in found}
                via = "schedule final layer"
            metrics["oncall_people"] = float(len(people))
            details["oncall"] = {"schedule_id": schedule_id, "people": list(people.values()), "via": via}
            names = ", ".join(str(person["name"]) for person in people.values()) or "nobody"
            parts.append(f"on call now for {schedule_id}: {names}")
        if policy_id:
            policy_metrics, policy_details = pagerduty_policy_facts(self._policy(api, policy_id, headers, seen))
            metrics |= policy_metrics
            details |= policy_details
            parts.append(
                f"escalation policy {policy_details['escalation_policy']['name']!r}: "
                f"{int(policy_metrics['escalation_levels'])} levels, "
                f"{int(policy_metrics['escalation_targets'])} targets"
            )
        return Fetched(
            facts=Facts(metrics=metrics, details=details, summary="; ".join(parts) + "."),
            payload=joined_payload(seen),
        )
