"""Read one number out of any HTTP endpoint that answers JSON (an eval dashboard, a CI summary).

Also home to the small HTTP-and-JSON helpers the GitHub, Prometheus and PagerDuty connectors
share: every one of them must turn "the server said something unexpected" into a sentence a
person can act on, and must decide whether trying again later could help (``transient``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from assessments.evidence.connectors.base import ConnectorError, Facts, Fetched, Source, register
from assessments.evidence.outbound import OutboundResponse, outbound_get

SNIPPET_CHARS = 160

# Statuses where the same request may well succeed later: the server was busy or broken, not
# the configuration.
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def snippet(value: bytes | str, limit: int = SNIPPET_CHARS) -> str:
    """A short, single-line quotation of what a server sent, for error messages."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(value: Any) -> str:
    """Say what a JSON value is in a few words, so an error names what was found instead."""
    if isinstance(value, dict):
        keys = ", ".join(list(map(str, value))[:8])
        more = ", …" if len(value) > 8 else ""
        return f"an object with keys {keys}{more}" if value else "an empty object"
    if isinstance(value, list):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the string {snippet(json.dumps(value), 60)}"
    return f"the number {value!r}"


def header(response: OutboundResponse, name: str) -> str:
    """A response header by case-insensitive name ('' when absent)."""
    wanted = name.lower()
    for key, value in response.headers.items():
        if key.lower() == wanted:
            return value
    return ""


def decode_json(response: OutboundResponse, *, service: str) -> Any:
    """The body as JSON, or an error that says what came back instead.

    A proxy's or a sign-in page's HTML with status 200 is the usual way a wrong URL shows up;
    naming it as HTML tells the person to check the address rather than the service.
    Retrying cannot fix a body that is not JSON, so these errors are not transient.
    """
    body = response.body
    if not body.strip():
        raise ConnectorError(f"{service} answered {response.status} with an empty body at {response.url}, not JSON.")
    content_type = header(response, "Content-Type").lower()
    if "html" in content_type or body.lstrip()[:1] == b"<":
        raise ConnectorError(
            f"{service} answered {response.status} with an HTML page, not JSON, at {response.url}: "
            f"{snippet(body)!r}. Check the URL: it may point at a sign-in page, a proxy or the web interface."
        )
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise ConnectorError(f"{service} answered with bytes that are not UTF-8 text at {response.url}.") from None
    except json.JSONDecodeError as error:
        raise ConnectorError(
            f"{service} answered with JSON that does not parse at {response.url} "
            f"({error.msg} at line {error.lineno}, column {error.colno}; {len(body)} bytes): {snippet(body)!r}"
        ) from None


def status_error(response: OutboundResponse, *, service: str, what: str, detail: str = "") -> ConnectorError:
    """The error for a status that is not 2xx, worded by what a person should do about it."""
    status = response.status
    said = f" ({detail})" if detail else ""
    if status == 401:
        return ConnectorError(
            f"{service} rejected the credentials (401){said} for {what}: check the token is right and not expired."
        )
    if status == 403:
        return ConnectorError(
            f"{service} refused access (403){said} to {what}: the token lacks the permission or scope it needs."
        )
    if status == 404:
        return ConnectorError(f"{service} answered 404 (not found){said} for {what}: check the name or id.")
    if 300 <= status < 400:
        return ConnectorError(
            f"{service} answered a redirect ({status}) for {what} that was not followed: "
            f"check the URL (it may point at a sign-in page)."
        )
    if status in TRANSIENT_STATUSES:
        return ConnectorError(f"{service} answered {status}{said} for {what}; will try again later.", transient=True)
    return ConnectorError(f"{service} answered {status}{said} for {what}: {snippet(response.body)!r}")


def get_json(url: str, *, headers: Mapping[str, str], service: str, what: str) -> tuple[Any, OutboundResponse]:
    """GET a JSON document that must answer 2xx; any other status is a worded error."""
    response = outbound_get(url, headers=headers)
    if not 200 <= response.status < 300:
        raise status_error(response, service=service, what=what)
    return decode_json(response, service=service), response


def expect_dict(value: Any, where: str, *, service: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConnectorError(f"{service} answered in an unexpected shape: {where} is {describe(value)}, not an object.")
    return value


def expect_list(value: Any, where: str, *, service: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConnectorError(f"{service} answered in an unexpected shape: {where} is {describe(value)}, not a list.")
    return value


def joined_payload(responses: list[OutboundResponse]) -> bytes:
    """The raw bodies a fetch read, in order, one per line: what the run's record hashes and sizes."""
    return b"\n".join(response.body for response in responses)


# --- JSON paths -------------------------------------------------------------------------

_PATH_STEP = re.compile(
    r"""\.?(?P<name>[^.\[\]'"\s]+)|\[(?P<index>-?\d+)\]|\[(?P<quote>['"])(?P<key>.*?)(?P=quote)\]"""
)


def json_path_parse(path: str) -> list[str | int]:
    """``data.summary.pass_rate``, ``$.items[0].value`` or ``$['odd.key'][-1]`` as steps.

    Only plain steps: keys and list indexes. Filters and wildcards would make "the number at
    that path" ambiguous, which a check cannot compare against a threshold.
    """
    text = path.strip()
    if text.startswith("$"):
        text = text[1:]
    steps: list[str | int] = []
    position = 0
    while position < len(text):
        match = _PATH_STEP.match(text, position)
        if match is None:
            # Point past a dot: in "data..x" the second dot is the mistake, not the first.
            at = position + (1 if text[position] == "." else 0) + 1 + (len(path) - len(text))
            raise ConnectorError(
                f"The JSON path {path!r} cannot be read at character {at}: "
                f"use keys separated by dots and [n] for list items, e.g. data.results[0].score."
            )
        if match.group("index") is not None:
            steps.append(int(match.group("index")))
        else:
            steps.append(match.group("name") if match.group("name") is not None else match.group("key"))
        position = match.end()
    if not steps:
        raise ConnectorError(f"The JSON path {path!r} names nothing: give e.g. data.summary.pass_rate.")
    return steps


def json_path_number(document: Any, path: str) -> float:
    """The finite number at ``path`` in ``document``, or an error naming the path and what was found."""
    steps = json_path_parse(path)
    value = document
    walked = "$"
    for step in steps:
        if isinstance(step, int):
            if not isinstance(value, list):
                raise ConnectorError(f"JSON path {path!r}: expected a list at {walked}, found {describe(value)}.")
            if not -len(value) <= step < len(value):
                raise ConnectorError(f"JSON path {path!r}: {walked} has no item [{step}]; it is {describe(value)}.")
            value = value[step]
            walked += f"[{step}]"
        else:
            if not isinstance(value, dict):
                raise ConnectorError(f"JSON path {path!r}: expected an object at {walked}, found {describe(value)}.")
            if step not in value:
                raise ConnectorError(f"JSON path {path!r}: {walked} has no key {step!r}; it is {describe(value)}.")
            value = value[step]
            walked += f".{step}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConnectorError(f"JSON path {path!r}: the value there is {describe(value)}, not a number.")
    number = float(value)
    if not math.isfinite(number):
        raise ConnectorError(f"JSON path {path!r}: the value there is {number}, not a finite number.")
    return number


@register
class HttpJsonConnector:
    """Any URL that answers JSON; the metric is the number at a configured path.

    Configuration: ``url``, ``json_path``, ``metric_name`` (default ``value``), ``header_name``
    (default ``Authorization``) for the optional secret ``header_value`` (e.g. "Bearer …").
    """

    kind: ClassVar[str] = "http_json"
    label: ClassVar[str] = "HTTP JSON endpoint"

    def _settings(self, source: Source) -> tuple[str, str, str, dict[str, str]]:
        configuration = source.configuration
        url = configuration.get("url")
        path = configuration.get("json_path")
        if not isinstance(url, str) or not url.strip():
            raise ConnectorError("This HTTP JSON endpoint has no URL: set url to the address that answers JSON.")
        if not isinstance(path, str) or not path.strip():
            raise ConnectorError("This HTTP JSON endpoint has no json_path: say where the number is, e.g. data.score.")
        json_path_parse(path)
        metric = configuration.get("metric_name") or "value"
        if not isinstance(metric, str):
            raise ConnectorError("metric_name must be text, e.g. pass_rate.")
        headers = {"Accept": "application/json"}
        header_name = configuration.get("header_name")
        if source.secrets.get("header_value"):
            headers[str(header_name or "Authorization")] = source.secrets["header_value"]
        elif source.secrets.get("token"):  # the page's token field: a bearer token unless a header is named
            token = source.secrets["token"]
            headers[str(header_name or "Authorization")] = token if header_name else f"Bearer {token}"
        return url.strip(), path.strip(), metric, headers

    def test_connection(self, source: Source) -> str:
        url, path, _metric, headers = self._settings(source)
        document, response = get_json(url, headers=headers, service="The endpoint", what=url)
        value = json_path_number(document, path)
        return f"Reached {response.url}: it answered JSON, and {path} is {value:g}."

    def fetch(self, source: Source) -> Fetched:
        url, path, metric, headers = self._settings(source)
        document, response = get_json(url, headers=headers, service="The endpoint", what=url)
        value = json_path_number(document, path)
        return Fetched(
            facts=Facts(
                metrics={metric: value},
                details={"url": response.url, "json_path": path, "status": response.status},
                summary=f"{metric} = {value:g} (from {path})",
            ),
            payload=response.body,
        )
