"""Every outbound HTTP request Preflight makes goes through ``outbound_get`` (SSRF-safe).

People type URLs into Preflight (a Prometheus address, an eval-result link, a GitHub
Enterprise API), and a worker then fetches them from inside our network. Without care that
is a way to make the worker read cloud metadata credentials or poke internal services, so:

* Only ``http`` and ``https``; no credentials in the URL (``http://good@127.0.0.1``), no
  percent-encoding, zone ids, backslashes, whitespace or non-ASCII in the host (IDN names are
  accepted in their ``xn--`` form only, so confusables never reach the resolver).
* IPv4 literals are decoded the way resolvers and browsers decode them (``2130706433``,
  ``0x7f000001``, ``0177.0.0.1``, ``127.1``); anything but plain dotted decimal is refused,
  and the message names the address it really means.
* Names are resolved once, every resolved address is checked (one bad record refuses the
  request) and the connection goes to exactly the checked address: urllib3 is handed the IP,
  and the original name travels as the Host header, the TLS SNI and the name the certificate
  must match. There is no second lookup, so DNS rebinding cannot swap the address.
* Addresses are checked after unwrapping IPv4 hidden in IPv6 (mapped ``::ffff:0:0/96``,
  NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``); Teredo, IPv4-compatible and local NAT64
  addresses are refused outright. IPv6 outside ``2000::/3`` is refused.
* Redirects are followed by hand, each hop checked like the first; only to http/https, never
  from https down to http, at most ``max_redirects`` hops, loops named as loops. Headers the
  caller set (tokens) are dropped when a redirect leaves the original origin.
* One wall-time budget covers DNS, every hop and the body; the body stops at ``max_bytes``.
* No proxy from the environment (urllib3 pools are built directly), and no cookies.

``OUTBOUND_ALLOWED_HOSTS`` lists exact host names and IP addresses/CIDR ranges that may be
private (on-premise Prometheus, GitHub Enterprise). It never opens cloud metadata, the
unspecified address, multicast, broadcast or the IPv6-tunnel forms above.

A library was considered first: ``requests-hardened`` pins the resolved IP the same way but
checks only the first DNS answer, has no allowlist by name or range, no size or wall-time
cap and no reasons in its errors; ``advocate`` has been unmaintained since 2020. The rules
here are small enough to own.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit

import certifi
import urllib3
from django.conf import settings
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.util.connection import allowed_gai_family

from assessments.evidence.connectors.base import ConnectorError

type IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
type IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
type Resolver = Callable[[str, int], Sequence[str]]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Statuses a later attempt may well get past; everything else 4xx is the request's fault.
TRANSIENT_STATUSES = frozenset({408, 425, 429})
# Headers that carry no secret, kept when a redirect goes to another origin.
CROSS_ORIGIN_SAFE_HEADERS = frozenset({"accept", "accept-language", "user-agent"})
USER_AGENT = "Preflight (readiness evidence fetcher)"
CHUNK_BYTES = 64 * 1024
ALLOWLIST_HINT = " Preflight only contacts public addresses; an administrator can allow it in OUTBOUND_ALLOWED_HOSTS."
NEVER_HINT = " Preflight never contacts it, whatever OUTBOUND_ALLOWED_HOSTS says."

# Names that mean cloud metadata on some provider; refused before any lookup, even if allowlisted.
METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.internal",
        "metadata.tencentyun.com",
    }
)
HOST_NAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$"
)
# A host whose last label is a number is an IPv4 literal to resolvers and browsers (WHATWG URL).
NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
IPV4_PART = re.compile(r"^(0x[0-9a-f]*|0[0-7]*|[1-9][0-9]*)$")


@dataclass(frozen=True)
class OutboundResponse:
    """The final answer after redirects: any status (callers word 4xx/5xx for their service),
    headers as the server sent them (repeated headers joined with ", "), the whole body, and the
    URL that answered."""

    status: int
    headers: dict[str, str]
    body: bytes
    url: str


class OutboundError(ConnectorError):
    """A request refused or failed; the message says why in words.

    ``transient`` is true when trying again later may work (timeouts, refused or broken
    connections, DNS hiccups, and with ``raise_for_status`` 5xx/408/429); refusals, 4xx, bodies
    that are too large and redirect loops are not. ``status`` is the HTTP status when there was one.
    """

    def __init__(self, message: str, *, transient: bool = False, status: int | None = None) -> None:
        super().__init__(message, transient=transient)
        self.status = status


# --- Address rules --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    network: IPNetwork
    what: str
    allowlistable: bool = True


def _rules(*rows: tuple[str, str, bool]) -> tuple[_Rule, ...]:
    return tuple(_Rule(ipaddress.ip_network(cidr), what, allowlistable) for cidr, what, allowlistable in rows)


# Order matters: the first match names the reason, so the narrow metadata entries come first.
IPV4_RULES = _rules(
    ("169.254.169.254/32", "a cloud metadata endpoint", False),
    ("169.254.170.2/32", "a cloud metadata endpoint (ECS task credentials)", False),
    ("169.254.169.253/32", "a cloud DNS endpoint", False),
    ("100.100.100.200/32", "a cloud metadata endpoint (Alibaba)", False),
    ("255.255.255.255/32", "the broadcast address", False),
    ("0.0.0.0/8", "an unspecified ('this network') address", False),
    ("224.0.0.0/4", "a multicast address", False),
    ("240.0.0.0/4", "a reserved address", False),
    ("127.0.0.0/8", "a loopback address", True),
    ("10.0.0.0/8", "a private address", True),
    ("172.16.0.0/12", "a private address", True),
    ("192.168.0.0/16", "a private address", True),
    ("100.64.0.0/10", "a shared (carrier-grade NAT) address", True),
    ("169.254.0.0/16", "a link-local address", True),
    ("192.0.0.0/24", "an IETF protocol address", True),
    ("192.0.2.0/24", "a documentation address", True),
    ("198.51.100.0/24", "a documentation address", True),
    ("203.0.113.0/24", "a documentation address", True),
    ("192.88.99.0/24", "a 6to4 relay address", True),
    ("198.18.0.0/15", "a benchmarking address", True),
)
IPV6_RULES = _rules(
    ("fd00:ec2::254/128", "a cloud metadata endpoint", False),
    ("::/128", "the unspecified address", False),
    ("ff00::/8", "a multicast address", False),
    ("2001::/32", "a Teredo tunnel address", False),
    ("64:ff9b:1::/48", "a local-use NAT64 address", False),
    ("::1/128", "a loopback address", True),
    ("::/96", "a deprecated IPv4-compatible address", False),
    ("fc00::/7", "a unique-local (private) address", True),
    ("fe80::/10", "a link-local address", True),
    ("fec0::/10", "a site-local address", True),
    ("100::/64", "a discard-only address", True),
    ("2001:db8::/32", "a documentation address", True),
    ("3fff::/20", "a documentation address", True),
    ("2001::/23", "an IETF protocol address", True),
    ("5f00::/16", "a segment-routing address", True),
)
IPV6_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True)
class _Allowlist:
    names: frozenset[str]
    networks: tuple[IPNetwork, ...]

    @classmethod
    def from_settings(cls) -> _Allowlist:
        names: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in getattr(settings, "OUTBOUND_ALLOWED_HOSTS", []) or []:
            text = str(entry).strip().lower()
            if not text:
                continue
            try:
                networks.append(ipaddress.ip_network(text.strip("[]"), strict=False))
            except ValueError:
                names.add(text.rstrip("."))
        return cls(frozenset(names), tuple(networks))

    def covers(self, address: IPAddress) -> bool:
        return any(address.version == net.version and address in net for net in self.networks)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 form carries to, and how, when the IPv4 rules must judge it."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped, "IPv4-mapped"
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "NAT64"
    if address.sixtofour is not None:
        return address.sixtofour, "6to4"
    return None


def _refusal(address: IPAddress, allowlist: _Allowlist, *, name_allowed: bool) -> tuple[str, bool] | None:
    """Why this address may not be contacted, and whether the allowlist could have opened it."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            inner, form = embedded
            # An allowlist entry for this exact IPv6 form opens what it carries, as far as any entry can.
            opened = name_allowed or allowlist.covers(address)
            inner_refusal = _refusal(inner, allowlist, name_allowed=opened)
            if inner_refusal is None:
                return None
            what, allowlistable = inner_refusal
            return f"the {form} form of {inner}, {what}", allowlistable
        rules = IPV6_RULES
    else:
        rules = IPV4_RULES
    opened = name_allowed or allowlist.covers(address)
    for rule in rules:
        if address in rule.network:
            if rule.allowlistable and opened:
                return None
            return rule.what, rule.allowlistable
    if isinstance(address, ipaddress.IPv6Address) and address not in IPV6_GLOBAL_UNICAST:
        return ("an address reserved by the IETF", True) if not opened else None
    if not address.is_global and not opened:
        return "a special-purpose address", True
    return None


def _parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """Decode an IPv4 literal in any form inet_aton() and browsers accept (WHATWG URL rules)."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or any(not IPV4_PART.match(part) for part in parts):
        return None
    numbers = []
    for part in parts:
        if part.startswith("0x"):
            numbers.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part.startswith("0"):
            numbers.append(int(part, 8))
        else:
            numbers.append(int(part))
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for index, number in enumerate(leading):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


# --- One hop: parse, check, resolve ---------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    url: str
    scheme: str
    host: str  # lower case, ASCII, no trailing dot, IPv6 without brackets
    port: int
    request_target: str
    addresses: tuple[IPAddress, ...]

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host, self.port


def shown(url: str) -> str:
    """The URL for messages and logs: no credentials, query or fragment (they may hold tokens),
    and control characters escaped so a hostile URL cannot forge lines in a log."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
        text = f"{parts.scheme}://{netloc}{parts.path}" if parts.scheme and netloc else url.split("?")[0]
    except ValueError:
        text = url.split("?")[0]
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text[:200])


def _refuse(url: str, why: str) -> OutboundError:
    return OutboundError(f"Refused to fetch {shown(url)}: {why}")


def _split(url: str) -> tuple[str, str, int, str]:
    """Scheme, normalised host, port and request target, or an error naming what is wrong."""
    if any(ord(char) <= 0x20 or char in "\\\x7f" for char in url):
        raise _refuse(url, "the URL contains whitespace, control characters or backslashes.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise _refuse(url, f"it is not a valid URL ({error}).") from None
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"}:
        raise _refuse(url, f"only http and https URLs are fetched, not {scheme or 'a URL without a scheme'}.")
    if "@" in parts.netloc:
        raise _refuse(url, "URLs with a user name or password in them are refused; send credentials as headers.")
    if not parts.netloc.isascii():
        raise _refuse(url, "the host name has non-ASCII characters; write international names in their xn-- form.")
    host = (parts.hostname or "").lower()
    if not host:
        raise _refuse(url, "the URL has no host.")
    if "%" in host:
        raise _refuse(url, "the host has percent-encoding or an IPv6 zone id.")
    if port is None:
        port = 443 if scheme == "https" else 80
    if not 0 < port < 65536:
        raise _refuse(url, f"port {port} is not a usable port.")
    if host.endswith(".") and ":" not in host:
        host = host[:-1]
    target = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    if parts.query:
        target += "?" + quote(parts.query, safe="/?%:@!$&'()*+,;=-._~")
    return scheme, host, port, target


def _literal(url: str, host: str) -> IPAddress | None:
    """The address a host literal means, refusing IPv4 written in anything but dotted decimal."""
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            raise _refuse(url, f"{host} is not a valid IPv6 address.") from None
    if not NUMERIC_LABEL.match(host.rsplit(".", 1)[-1]):
        return None
    address = _parse_ipv4(host)
    if address is None:
        raise _refuse(url, f"{host} looks like an IP address but is not a valid one.")
    if str(address) != host:
        refusal = _refusal(address, _Allowlist(frozenset(), ()), name_allowed=False)
        meaning = f", {refusal[0]}" if refusal else f"; write it as {address}"
        raise _refuse(url, f"{host} is {address} written in a non-standard form{meaning}.")
    return address


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, allowed_gai_family(), socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _resolve(url: str, host: str, port: int, resolver: Resolver | None, deadline: float) -> list[IPAddress]:
    """Resolve once, within the time left. getaddrinfo() has no timeout of its own, so it runs in
    a daemon thread that is abandoned (not waited for) when the budget runs out."""
    lookup = resolver or _system_resolver
    outcome: list[Sequence[str] | BaseException] = []

    def run() -> None:
        try:
            outcome.append(lookup(host, port))
        except BaseException as error:
            outcome.append(error)

    worker = threading.Thread(target=run, name=f"resolve {host}", daemon=True)
    worker.start()
    worker.join(_remaining(url, deadline))
    if not outcome:
        raise OutboundError(f"Looking up {host} took too long for {shown(url)}.", transient=True)
    result = outcome[0]
    if isinstance(result, socket.gaierror):
        temporary = result.errno in {socket.EAI_AGAIN, getattr(socket, "EAI_SYSTEM", None)}
        raise OutboundError(
            f"Could not look up {host} for {shown(url)} ({result.strerror}): check the host name.", transient=temporary
        )
    if isinstance(result, BaseException):
        raise OutboundError(f"Could not look up {host} for {shown(url)} ({result}).", transient=True)
    addresses: list[IPAddress] = []
    for text in result:
        try:
            addresses.append(ipaddress.ip_address(text.split("%", 1)[0]))
        except ValueError:
            raise _refuse(url, f"{host} resolved to {text!r}, which is not an IP address.") from None
    if not addresses:
        raise OutboundError(f"{host} has no addresses, for {shown(url)}.")
    return addresses


def _check(url: str, resolver: Resolver | None, allowlist: _Allowlist, deadline: float) -> _Target:
    scheme, host, port, request_target = _split(url)
    name_allowed = host in allowlist.names
    literal = _literal(url, host)
    if literal is not None:
        addresses = [literal]
    else:
        if not HOST_NAME.match(host):
            raise _refuse(url, f"{host!r} is not a valid host name.")
        if host in METADATA_NAMES:
            raise _refuse(url, f"{host} is a cloud metadata endpoint." + NEVER_HINT)
        if (host == "localhost" or host.endswith(".localhost")) and not name_allowed:
            raise _refuse(url, f"{host} always means this machine (loopback)." + ALLOWLIST_HINT)
        addresses = _resolve(url, host, port, resolver, deadline)
    for address in addresses:
        refusal = _refusal(address, allowlist, name_allowed=name_allowed)
        if refusal is None:
            continue
        what, allowlistable = refusal
        said = f"{address} is {what}." if literal is not None else f"{host} resolves to {address}, {what}."
        raise _refuse(url, said + (ALLOWLIST_HINT if allowlistable else NEVER_HINT))
    return _Target(url, scheme, host, port, request_target, tuple(addresses))


# --- The exchange ---------------------------------------------------------------------------


def _remaining(url: str, deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise OutboundError(f"{shown(url)} took longer than the time allowed; will try again later.", transient=True)
    return left


@dataclass
class _Answer:
    status: int
    headers: dict[str, str]
    location: str | None
    body: bytes


def _pool(target: _Target, address: IPAddress, ca_certs: str | None) -> urllib3.HTTPConnectionPool:
    """A pool that connects to ``address`` and nowhere else, speaking for ``target.host``."""
    common = {"port": target.port, "maxsize": 1, "retries": False}
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            str(address),
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_certs or certifi.where(),
            assert_hostname=target.host,
            server_hostname=target.host,
            **common,  # type: ignore[arg-type]
        )
    return urllib3.HTTPConnectionPool(str(address), **common)  # type: ignore[arg-type]


def _exchange(
    target: _Target,
    headers: Mapping[str, str],
    deadline: float,
    max_bytes: int,
    ca_certs: str | None,
    *,
    method: str = "GET",
    body: bytes | None = None,
) -> _Answer:
    failure: OutboundError | None = None
    for address in target.addresses:
        pool = _pool(target, address, ca_certs)
        try:
            return _exchange_with(pool, target, address, headers, deadline, max_bytes, method=method, body=body)
        except _ConnectFailed as error:
            # Another checked address of the same name may answer (IPv6 without a route, say).
            failure = error.error
        finally:
            pool.close()
    assert failure is not None
    raise failure


class _ConnectFailed(Exception):
    def __init__(self, error: OutboundError) -> None:
        self.error = error


def _exchange_with(
    pool: urllib3.HTTPConnectionPool,
    target: _Target,
    address: IPAddress,
    headers: Mapping[str, str],
    deadline: float,
    max_bytes: int,
    *,
    method: str,
    body: bytes | None,
) -> _Answer:
    where = shown(target.url)
    via = f"{target.host} ({address})" if target.host != str(address) else target.host
    left = _remaining(target.url, deadline)
    try:
        response = pool.urlopen(
            method,
            target.request_target,
            body=body,
            headers={**headers, "Host": target.host_header},
            redirect=False,
            retries=False,
            preload_content=False,
            release_conn=False,
            assert_same_host=False,
            timeout=urllib3.Timeout(connect=left, read=left),
        )
    except NewConnectionError as error:
        reason = "connection refused" if isinstance(error.__cause__, ConnectionRefusedError) else str(error.__cause__)
        raise _ConnectFailed(
            OutboundError(f"Could not connect to {via} for {where}: {reason}; will try again later.", transient=True)
        ) from None
    except ConnectTimeoutError:
        raise _ConnectFailed(
            OutboundError(f"Connecting to {via} for {where} timed out; will try again later.", transient=True)
        ) from None
    except ReadTimeoutError:
        raise OutboundError(
            f"{via} did not answer in time for {where}; will try again later.", transient=True
        ) from None
    except SSLError as error:
        raise OutboundError(
            f"The TLS connection to {via} for {where} failed its checks: {error.__cause__ or error}."
        ) from None
    except ValueError as error:
        raise OutboundError(f"Could not send the request for {where}: {error}.") from None
    except HTTPError as error:
        raise OutboundError(
            f"The connection to {via} for {where} broke: {error}; will try again later.", transient=True
        ) from None
    try:
        status = response.status
        answer_headers = dict(response.headers.items())
        location = response.headers.get("Location")
        if status in REDIRECT_STATUSES and location:
            return _Answer(status, answer_headers, location, b"")
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise OutboundError(
                f"{where} is {int(declared):,} bytes, more than the {max_bytes:,} allowed; nothing was read.",
                status=status,
            )
        return _Answer(status, answer_headers, None, _read_body(response, target.url, via, deadline, max_bytes))
    finally:
        response.close()


def _read_body(response: urllib3.BaseHTTPResponse, url: str, via: str, deadline: float, max_bytes: int) -> bytes:
    """Read at most ``max_bytes`` (after decompression), keeping to the wall-time budget: each
    read waits no longer than the time left, and returns as soon as any bytes arrive."""
    chunks: list[bytes] = []
    size = 0
    while True:
        left = _remaining(url, deadline)
        sock = getattr(response.connection, "sock", None)
        if sock is not None:
            sock.settimeout(left)
        try:
            chunk = response.read1(CHUNK_BYTES)
        except ReadTimeoutError:
            raise OutboundError(
                f"{via} stopped sending in the middle of {shown(url)}; will try again later.", transient=True
            ) from None
        except HTTPError as error:
            raise OutboundError(
                f"The answer from {via} for {shown(url)} broke off: {error}; will try again later.", transient=True
            ) from None
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            raise OutboundError(
                f"{shown(url)} sent more than the {max_bytes:,} bytes allowed; stopped reading.",
                status=response.status,
            )
        chunks.append(chunk)


def _redirect(current: _Target, location: str, hops: int, max_redirects: int, seen: Iterable[str]) -> str:
    following = urljoin(current.url, location)
    scheme = urlsplit(following).scheme.lower() if following else ""
    if scheme not in {"http", "https"}:
        raise _refuse(
            following,
            f"{shown(current.url)} redirected to a {scheme or 'scheme-less'} URL; only http and https are followed.",
        )
    if current.scheme == "https" and scheme == "http":
        raise _refuse(following, f"{shown(current.url)} redirected from https down to plain http.")
    if following.split("#")[0] in seen:
        raise OutboundError(f"{shown(current.url)} redirects in a loop (back to {shown(following)}).")
    if hops >= max_redirects:
        raise OutboundError(
            f"{shown(current.url)} redirected more than {max_redirects} times (next: {shown(following)}); "
            "check the URL."
        )
    return following


def outbound_get(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
    max_bytes: int | None = None,
    max_redirects: int = 3,
    raise_for_status: bool = False,
    resolver: Resolver | None = None,
    ca_certs: str | None = None,
) -> OutboundResponse:
    """GET ``url`` under the rules in this module's docstring.

    ``timeout`` (default ``OUTBOUND_TIMEOUT_SECONDS``) bounds the whole call: DNS, every hop,
    connecting, waiting and reading. ``max_bytes`` (default ``OUTBOUND_MAX_BYTES``) bounds the body.
    Any status comes back as a response unless ``raise_for_status``: then 4xx and 5xx raise
    ``OutboundError`` (transient for 5xx, 408, 425 and 429).
    ``resolver`` replaces the system resolver (tests; it returns address strings for a host and
    port). ``ca_certs`` is a CA bundle path for private certificate authorities.
    """
    allowlist = _Allowlist.from_settings()
    budget = float(timeout if timeout is not None else settings.OUTBOUND_TIMEOUT_SECONDS)
    limit = int(max_bytes if max_bytes is not None else settings.OUTBOUND_MAX_BYTES)
    deadline = time.monotonic() + budget
    sent = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    sent.update({key: value for key, value in (headers or {}).items() if key.lower() != "host"})
    target = _check(url, resolver, allowlist, deadline)
    first_origin = target.origin
    seen = [url.split("#")[0]]
    hops = 0
    while True:
        if target.origin != first_origin:
            sent = {key: value for key, value in sent.items() if key.lower() in CROSS_ORIGIN_SAFE_HEADERS}
        answer = _exchange(target, sent, deadline, limit, ca_certs)
        if answer.location is None:
            break
        following = _redirect(target, answer.location, hops, max_redirects, seen)
        seen.append(following.split("#")[0])
        hops += 1
        target = _check(following, resolver, allowlist, deadline)
    response = OutboundResponse(answer.status, answer.headers, answer.body, target.url)
    if raise_for_status and answer.status >= 400:
        transient = answer.status >= 500 or answer.status in TRANSIENT_STATUSES
        later = "; will try again later" if transient else ""
        raise OutboundError(
            f"{shown(target.url)} answered {answer.status}{later}.", transient=transient, status=answer.status
        )
    return response


def outbound_post_json(
    url: str,
    payload: Mapping[str, object],
    *,
    timeout: float | None = None,
    resolver: Resolver | None = None,
    ca_certs: str | None = None,
) -> OutboundResponse:
    """POST ``payload`` as JSON to ``url`` (an incoming webhook) under the same address rules.

    A redirect is not followed (a webhook that moved is reported, not chased with the
    body), and a 4xx or 5xx answer raises ``OutboundError``. At most 64 kB of answer is read.
    """
    allowlist = _Allowlist.from_settings()
    deadline = time.monotonic() + float(timeout if timeout is not None else settings.OUTBOUND_TIMEOUT_SECONDS)
    body = json.dumps(payload).encode()
    headers = {"User-Agent": USER_AGENT, "Content-Type": "application/json", "Accept-Encoding": "identity"}
    target = _check(url, resolver, allowlist, deadline)
    answer = _exchange(target, headers, deadline, 64 * 1024, ca_certs, method="POST", body=body)
    where = f"{target.scheme}://{target.host}"  # a webhook's path is its secret: name only the host
    if answer.location is not None:
        raise OutboundError(f"The webhook at {where} redirected elsewhere; a moved webhook is not followed.")
    if answer.status >= 400:
        transient = answer.status >= 500 or answer.status in TRANSIENT_STATUSES
        raise OutboundError(
            f"The webhook at {where} answered {answer.status}.", transient=transient, status=answer.status
        )
    return OutboundResponse(answer.status, answer.headers, answer.body, target.url)
