"""The outbound client against real sockets on this machine: a canary listening on every local
address must hear nothing while a corpus of SSRF tricks is refused, and local servers show the
redirect, size, time and allowlist rules doing what the module docstring says."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator

import pytest

from assessments.evidence.outbound import OutboundError, outbound_get
from tests.evidence.outbound_servers import Canary, ConnectRecorder, LocalServer, tls_context_for


@pytest.fixture
def canary() -> Iterator[Canary]:
    listener = Canary()
    yield listener
    listener.close()


@pytest.fixture
def server() -> Iterator[LocalServer]:
    local = LocalServer()
    yield local
    local.close()


@pytest.fixture
def allow_local(settings) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]


def table_resolver(table: dict[str, list[str]]):
    """A resolver that answers from ``table`` and falls back to the system for other names, so a
    test can make a name mean any address without touching /etc/hosts or DNS."""
    calls: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        if host in table:
            return table[host]
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return [str(info[4][0]) for info in infos]

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


# Names a hostile user could point at internal addresses; the corpus resolves them through this.
HOSTILE_NAMES = {
    "rebind.attacker.example": ["127.0.0.1"],
    "mixed.attacker.example": ["93.184.215.14", "10.0.0.7"],
    "v6loop.attacker.example": ["::1"],
    "metadata.attacker.example": ["169.254.169.254"],
    "mapped.attacker.example": ["::ffff:127.0.0.1"],
    "ula.attacker.example": ["fd00::1"],
    "cgnat.attacker.example": ["100.64.1.1"],
    "nat64.attacker.example": ["64:ff9b::7f00:1"],
    "zero.attacker.example": ["0.0.0.0"],
    "scoped.attacker.example": ["fe80::1%lo"],
}


def corpus(port: int) -> list[tuple[str, str]]:
    """(URL, a word the refusal must contain). Every URL aims at this machine's canary port or at
    an address the canary cannot listen on; none may be contacted."""
    p = port
    loopback = "loopback"
    nonstandard = "non-standard form"
    entries = [
        # IPv4 loopback in every encoding resolvers and browsers accept.
        (f"http://127.0.0.1:{p}/", loopback),
        (f"http://127.0.0.2:{p}/", loopback),
        (f"http://127.1.2.3:{p}/", loopback),
        (f"http://127.255.255.254:{p}/", loopback),
        (f"http://127.0.0.1.:{p}/", loopback),
        (f"HTTP://127.0.0.1:{p}/", loopback),
        (f"https://127.0.0.1:{p}/", loopback),
        (f"http://127.0.0.1:{p}/?next=http://example.com/", loopback),
        (f"http://127.1:{p}/", nonstandard),
        (f"http://127.0.1:{p}/", nonstandard),
        (f"http://2130706433:{p}/", nonstandard),
        (f"http://0x7f000001:{p}/", nonstandard),
        (f"http://0X7F000001:{p}/", nonstandard),
        (f"http://0x7f.0x0.0x0.0x1:{p}/", nonstandard),
        (f"http://0x7f.1:{p}/", nonstandard),
        (f"http://0177.0.0.1:{p}/", nonstandard),
        (f"http://0177.0.0.01:{p}/", nonstandard),
        (f"http://017700000001:{p}/", nonstandard),
        (f"http://127.000.000.001:{p}/", nonstandard),
        (f"http://0x7f.0.0.1.:{p}/", nonstandard),
        (f"http://2130706434:{p}/", nonstandard),
        (f"http://127.0.0.1.1:{p}/", "not a valid one"),
        (f"http://256.0.0.1:{p}/", "not a valid one"),
        (f"http://0x7g.0.0.1:{p}/", "not a valid one"),
        (f"http://4294967296:{p}/", "not a valid one"),
        (f"http://127.0.0.08:{p}/", "not a valid one"),
        # IPv6 loopback and IPv4 hidden inside IPv6.
        (f"http://[::1]:{p}/", loopback),
        (f"http://[0:0:0:0:0:0:0:1]:{p}/", loopback),
        (f"http://[0000::0001]:{p}/", loopback),
        (f"http://[::ffff:127.0.0.1]:{p}/", "IPv4-mapped"),
        (f"http://[::ffff:7f00:1]:{p}/", "IPv4-mapped"),
        (f"http://[0:0:0:0:0:ffff:127.0.0.1]:{p}/", "IPv4-mapped"),
        (f"http://[::FFFF:127.0.0.2]:{p}/", "IPv4-mapped"),
        (f"http://[::127.0.0.1]:{p}/", "IPv4-compatible"),
        (f"http://[::7f00:1]:{p}/", "IPv4-compatible"),
        (f"http://[64:ff9b::127.0.0.1]:{p}/", "NAT64"),
        (f"http://[64:ff9b::7f00:1]:{p}/", "NAT64"),
        (f"http://[64:ff9b::a00:1]:{p}/", "NAT64"),
        (f"http://[64:ff9b:1::7f00:1]:{p}/", "local-use NAT64"),
        (f"http://[2002:7f00:1::1]:{p}/", "6to4"),
        (f"http://[2002:a00:1::]:{p}/", "6to4"),
        (f"http://[2002:c0a8:101::1]:{p}/", "6to4"),
        (f"http://[2001:0:4136:e378:8000:63bf:80ff:fffe]:{p}/", "Teredo"),
        (f"http://[2001::1]:{p}/", "Teredo"),
        (f"http://[::ffff:0:7f00:1]:{p}/", "reserved"),
        # Unspecified addresses (Linux connects 0.0.0.0 and :: to this machine).
        (f"http://0.0.0.0:{p}/", "unspecified"),
        (f"http://0:{p}/", nonstandard),
        (f"http://0x0:{p}/", nonstandard),
        (f"http://00000:{p}/", nonstandard),
        (f"http://0.0.0.0.:{p}/", "unspecified"),
        (f"http://[::]:{p}/", "unspecified"),
        (f"http://[::ffff:0.0.0.0]:{p}/", "unspecified"),
        # Private, shared, link-local.
        ("http://10.0.0.1/", "private"),
        ("http://10.255.255.255/", "private"),
        ("http://012.0.0.1/", nonstandard),
        ("http://167772161/", nonstandard),
        ("http://172.16.0.1/", "private"),
        ("http://172.31.255.255/", "private"),
        ("http://192.168.0.1/", "private"),
        ("http://192.168.1.1./", "private"),
        ("http://0xc0a80001/", nonstandard),
        ("http://3232235521/", nonstandard),
        ("http://[::ffff:10.0.0.1]/", "private"),
        ("http://[::ffff:192.168.0.1]/", "private"),
        ("http://100.64.0.1/", "shared"),
        ("http://100.127.255.254/", "shared"),
        ("http://169.254.0.1/", "link-local"),
        ("http://169.254.1.1/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://[fe80::1%25eth0]/", "zone id"),
        ("http://[fe80::1%25lo]:{p}/", "zone id"),
        ("http://[fc00::1]/", "unique-local"),
        ("http://[fd12:3456:789a::1]/", "unique-local"),
        ("http://[fec0::1]/", "site-local"),
        # Cloud metadata, however written; never openable.
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://169.254.169.254./latest/meta-data/", "metadata"),
        ("http://2852039166/latest/meta-data/", "metadata"),
        ("http://0xa9fea9fe/", "metadata"),
        ("http://0251.0376.0251.0376/", "metadata"),
        ("http://169.254.43518/", "metadata"),
        ("http://[::ffff:169.254.169.254]/", "metadata"),
        ("http://[::ffff:a9fe:a9fe]/", "metadata"),
        ("http://[64:ff9b::169.254.169.254]/", "metadata"),
        ("http://[2002:a9fe:a9fe::1]/", "metadata"),
        ("http://[fd00:ec2::254]/", "metadata"),
        ("http://169.254.170.2/v2/credentials", "metadata"),
        ("http://100.100.100.200/latest/meta-data/", "metadata"),
        ("http://metadata.google.internal/computeMetadata/v1/", "metadata"),
        ("http://metadata.google.internal./computeMetadata/v1/", "metadata"),
        ("http://METADATA.Google.Internal/computeMetadata/v1/", "metadata"),
        ("http://metadata/computeMetadata/v1/", "metadata"),
        ("http://metadata.goog/", "metadata"),
        ("http://instance-data/latest/", "metadata"),
        ("http://instance-data.ec2.internal/latest/", "metadata"),
        # Multicast, broadcast, reserved and other special-purpose ranges.
        ("http://224.0.0.1/", "multicast"),
        ("http://239.255.255.250:1900/", "multicast"),
        ("http://[ff02::1]/", "multicast"),
        ("http://[ff05::1:3]/", "multicast"),
        ("http://[::ffff:224.0.0.1]/", "multicast"),
        ("http://255.255.255.255/", "broadcast"),
        ("http://4294967295/", "broadcast"),
        ("http://0xffffffff/", "broadcast"),
        ("http://240.0.0.1/", "reserved"),
        ("http://250.1.2.3/", "reserved"),
        ("http://198.18.0.1/", "benchmarking"),
        ("http://198.19.255.255/", "benchmarking"),
        ("http://192.0.2.1/", "documentation"),
        ("http://198.51.100.7/", "documentation"),
        ("http://203.0.113.9/", "documentation"),
        ("http://[2001:db8::1]/", "documentation"),
        ("http://[3fff::1]/", "documentation"),
        ("http://192.0.0.170/", "IETF"),
        ("http://192.88.99.1/", "6to4 relay"),
        ("http://[100::1]/", "discard"),
        ("http://[2001:10::1]/", "IETF"),
        ("http://[5f00::1]/", "segment-routing"),
        ("http://[4000::1]/", "reserved"),
        # Names that mean this machine, by rule or by resolution.
        (f"http://localhost:{p}/", loopback),
        (f"http://LocalHost:{p}/", loopback),
        (f"http://localhost.:{p}/", loopback),
        (f"http://api.localhost:{p}/", loopback),
        (f"http://localhost..:{p}/", "not a valid host name"),
        (f"http://rebind.attacker.example:{p}/", "resolves to 127.0.0.1"),
        (f"http://REBIND.attacker.example.:{p}/", "resolves to 127.0.0.1"),
        (f"http://mixed.attacker.example:{p}/", "resolves to 10.0.0.7"),
        (f"http://v6loop.attacker.example:{p}/", "resolves to ::1"),
        ("http://metadata.attacker.example/", "metadata"),
        (f"http://mapped.attacker.example:{p}/", "IPv4-mapped"),
        ("http://ula.attacker.example/", "unique-local"),
        ("http://cgnat.attacker.example/", "shared"),
        (f"http://nat64.attacker.example:{p}/", "NAT64"),
        (f"http://zero.attacker.example:{p}/", "unspecified"),
        ("http://scoped.attacker.example/", "link-local"),
        # Userinfo and parser-differential tricks.
        (f"http://good.example@127.0.0.1:{p}/", "user name or password"),
        (f"http://user:pass@127.0.0.1:{p}/", "user name or password"),
        (f"http://example.com:80@127.0.0.1:{p}/", "user name or password"),
        (f"http://example.com@localhost:{p}/", "user name or password"),
        (f"http://127.0.0.1:{p}@example.com/", "user name or password"),
        (f"http://127.0.0.1:{p}\\@example.com/", "backslashes"),
        (f"http://example.com\\@127.0.0.1:{p}/", "backslashes"),
        (f"http://127.0.0.1 :{p}/", "whitespace"),
        (f"http://127.0.0.1\t:{p}/", "whitespace"),
        (f"http://127.0.0.1%00.example.com:{p}/", "percent"),
        (f"http://%31%32%37.0.0.1:{p}/", "percent"),
        (f"http://127.0.0.1:{p}\r\nX-Injected: 1/", "control"),
        # Look-alikes that Unicode normalisation (NFKC / IDNA mapping) turns into loopback or localhost:
        # fullwidth digits and letters, ideographic full stops, circled digits, a Cyrillic es, a zero-width space.
        (f"http://\uff11\uff12\uff17.\uff10.\uff10.\uff11:{p}/", "non-ASCII"),
        (f"http://127\u30020\u30020\u30021:{p}/", "non-ASCII"),
        (f"http://\u2460\u2461\u2466.\u24ea.\u24ea.\u2460:{p}/", "non-ASCII"),
        (f"http://\u24db\u24de\u24d2\u24d0\u24db\u24d7\u24de\u24e2\u24e3:{p}/", "non-ASCII"),
        (f"http://lo\u0441alhost:{p}/", "non-ASCII"),
        (f"http://127.0.0.1\u200b:{p}/", "non-ASCII"),
        (f"http://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54:{p}/", "non-ASCII"),
        (f"http://[::\uff46\uff46\uff46\uff46:127.0.0.1]:{p}/", "valid URL"),
        # Schemes other than http(s), and URLs without a host.
        ("file:///etc/passwd", "only http and https"),
        (f"gopher://127.0.0.1:{p}/_GET%20/", "only http and https"),
        (f"ftp://127.0.0.1:{p}/", "only http and https"),
        (f"dict://127.0.0.1:{p}/info", "only http and https"),
        (f"ldap://127.0.0.1:{p}/", "only http and https"),
        (f"ws://127.0.0.1:{p}/", "only http and https"),
        ("jar:http://127.0.0.1/x.jar!/", "only http and https"),
        (f"//127.0.0.1:{p}/", "without a scheme"),
        (f"127.0.0.1:{p}", "only http and https"),
        (f"http:/127.0.0.1:{p}/", "no host"),
        ("http:///", "no host"),
        (f"http://:{p}/", "no host"),
        ("http://127.0.0.1:99999/", "valid URL"),
        ("http://127.0.0.1:0/", "port 0"),
        (f"http://[127.0.0.1]:{p}/", "valid URL"),
        (f"http://[::1:{p}/", "valid URL"),
        (f"http://-localhost:{p}/", "not a valid host name"),
        (f"http://under_score..example:{p}/", "not a valid host name"),
    ]
    return [(url.replace("{p}", str(p)), why) for url, why in entries]


def _refusals(urls: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """Fetch every URL; return (url, expected word, message) for each that was refused wrongly."""
    resolve = table_resolver(HOSTILE_NAMES)
    wrong = []
    for url, why in urls:
        try:
            outbound_get(url, timeout=2, resolver=resolve)
        except OutboundError as error:
            if why.lower() not in error.message.lower() or error.transient:
                wrong.append((url, why, error.message))
        else:
            wrong.append((url, why, "was fetched"))
    return wrong


@pytest.mark.parametrize(
    "allowed",
    [[], ["10.99.0.0/16", "build.corp.example", "fd00:abcd::/32"]],
    ids=["no-allowlist", "unrelated-allowlist"],
)
def test_it_refuses_every_trick_in_the_corpus_and_the_canary_hears_nothing(canary, settings, allowed):
    settings.OUTBOUND_ALLOWED_HOSTS = allowed
    urls = corpus(canary.port)
    assert len(urls) >= 100
    with ConnectRecorder.recording() as connects:
        wrong = _refusals(urls)
    time.sleep(0.2)  # let the canary's accept loop see any connection still in flight
    assert wrong == []
    assert connects == []
    assert canary.connections == []


def test_the_canary_does_hear_a_fetch_the_allowlist_opens(canary, settings):
    """Without this the corpus test could pass against a deaf canary."""
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.0/8", "::1"]
    targets = [f"http://127.0.0.1:{canary.port}/", f"http://127.0.0.2:{canary.port}/"]
    if canary.dual_stack:
        targets.append(f"http://[::1]:{canary.port}/")
    for url in targets:
        with ConnectRecorder.recording() as connects, pytest.raises(OutboundError):
            outbound_get(url, timeout=1)
        assert len(connects) == 1
    time.sleep(0.2)
    assert len(canary.connections) == len(targets)


def test_it_refuses_a_real_name_that_resolves_to_loopback_when_asked_by_the_system_resolver(canary, settings):
    """The production resolver, not a table: ``localhost`` is refused by name, and so is the
    machine's own host name whenever it resolves to a loopback address."""
    settings.OUTBOUND_ALLOWED_HOSTS = []
    with ConnectRecorder.recording() as connects, pytest.raises(OutboundError, match="loopback"):
        outbound_get(f"http://localhost:{canary.port}/")
    own = socket.gethostname().lower()
    try:
        own_addresses = {info[4][0] for info in socket.getaddrinfo(own, None)}
    except OSError:
        own_addresses = set()
    if own_addresses and all(a.startswith("127.") or a == "::1" for a in own_addresses):
        with ConnectRecorder.recording() as more, pytest.raises(OutboundError, match="loopback"):
            outbound_get(f"http://{own}:{canary.port}/")
        connects += more
    assert connects == []
    assert canary.connections == []


def test_an_allowlisted_name_may_resolve_to_loopback_through_the_system_resolver(server, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["LOCALHOST."]
    response = outbound_get(server.url("/ok", host="localhost"))
    assert response.status == 200
    assert response.headers["X-Seen-Host"] == f"localhost:{server.port}"


def test_it_resolves_once_and_connects_to_the_checked_address_keeping_the_name_as_host(server, settings):
    """DNS rebinding needs a second lookup; there is none. The name below exists only in the
    table, so any lookup past the check would fail rather than reach the server."""
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    resolve = table_resolver({"evals.corp.example": ["127.0.0.1"]})
    response = outbound_get(f"http://evals.corp.example:{server.port}/ok", resolver=resolve)
    assert response.status == 200
    assert resolve.calls == ["evals.corp.example"]
    assert response.headers["X-Seen-Host"] == f"evals.corp.example:{server.port}"


def test_one_private_answer_among_public_ones_refuses_the_name(settings):
    settings.OUTBOUND_ALLOWED_HOSTS = []
    resolve = table_resolver({"split.example": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "10.1.2.3"]})
    with (
        ConnectRecorder.recording() as connects,
        pytest.raises(OutboundError, match=re.escape("resolves to 10.1.2.3, a private")),
    ):
        outbound_get("http://split.example/", resolver=resolve)
    assert connects == []


def test_a_redirect_from_an_allowed_server_to_loopback_elsewhere_is_refused_at_the_hop(server, canary, allow_local):
    with (
        ConnectRecorder.recording() as connects,
        pytest.raises(OutboundError, match=re.escape("127.0.0.2 is a loopback")) as e,
    ):
        outbound_get(server.url(f"/redirect?to=http://127.0.0.2:{canary.port}/"))
    assert not e.value.transient
    assert connects == [("127.0.0.1", server.port)]
    time.sleep(0.2)
    assert canary.connections == []


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://2852039166/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://metadata.google.internal/computeMetadata/v1/",
    ],
)
def test_a_redirect_to_cloud_metadata_is_refused_and_metadata_is_never_contacted(server, settings, location):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1", "0.0.0.0/0", "::/0"]
    with ConnectRecorder.recording() as connects, pytest.raises(OutboundError, match="metadata") as e:
        outbound_get(server.url(f"/redirect?status=307&to={location}"))
    assert not e.value.transient
    assert connects == [("127.0.0.1", server.port)]


def test_a_redirect_to_another_scheme_is_refused(server, allow_local):
    with pytest.raises(OutboundError, match="redirected to a gopher URL"):
        outbound_get(server.url("/redirect?to=gopher://127.0.0.1:70/_x"))


def test_it_follows_redirects_within_the_cap_and_reports_the_final_url(server, allow_local):
    response = outbound_get(server.url("/chain/2"), max_redirects=3)
    assert response.status == 200
    assert response.url == server.url("/ok")


def test_too_many_redirects_is_a_permanent_error(server, allow_local):
    with pytest.raises(OutboundError, match="redirected more than 3 times") as e:
        outbound_get(server.url("/chain/9"))
    assert not e.value.transient
    assert len(server.requests) == 4


@pytest.mark.parametrize("path", ["/loop", "/ping"])
def test_a_redirect_loop_is_named_as_a_loop(server, allow_local, path):
    with pytest.raises(OutboundError, match="redirects in a loop") as e:
        outbound_get(server.url(path), max_redirects=10)
    assert not e.value.transient
    assert len(server.requests) <= 2


def test_secret_headers_are_dropped_when_a_redirect_leaves_the_origin(server, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    headers = {"Authorization": "Bearer secret", "X-Api-Key": "k", "Accept": "application/json"}
    outbound_get(server.url(f"/redirect?to=http://localhost:{server.port}/ok"), headers=headers)
    (_, first), (_, second) = server.requests
    assert first["Authorization"] == "Bearer secret"
    assert "Authorization" not in second
    assert "X-Api-Key" not in second
    assert second["Accept"] == "application/json"


def test_a_streamed_body_past_the_cap_stops_reading_early(server, allow_local):
    ten_mb = 10 * 1024 * 1024
    with pytest.raises(OutboundError, match="more than the 1,048,576 bytes allowed; stopped reading") as e:
        outbound_get(server.url(f"/big?bytes={ten_mb}"), max_bytes=1024 * 1024)
    assert not e.value.transient
    deadline = time.monotonic() + 5
    while not server.broken and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.broken
    assert server.sent < ten_mb


def test_a_declared_body_past_the_cap_is_refused_before_reading(server, allow_local):
    with pytest.raises(OutboundError, match="10,485,760 bytes, more than the 1,048,576 allowed") as e:
        outbound_get(server.url(f"/big?bytes={10 * 1024 * 1024}&declare=1"), max_bytes=1024 * 1024)
    assert not e.value.transient


def test_a_slow_server_times_out_as_transient(server, allow_local):
    started = time.monotonic()
    with pytest.raises(OutboundError, match="did not answer in time") as e:
        outbound_get(server.url("/slow?seconds=3"), timeout=0.5)
    assert e.value.transient
    assert time.monotonic() - started < 1.5


def test_a_trickling_body_is_cut_off_at_the_wall_time_budget(server, allow_local):
    """Each byte arrives well inside any per-read timeout; only a whole-call budget stops it."""
    started = time.monotonic()
    with pytest.raises(OutboundError, match="took longer than the time allowed") as e:
        outbound_get(server.url("/drip"), timeout=1)
    assert e.value.transient
    assert time.monotonic() - started < 2


def test_a_refused_connection_is_transient(allow_local):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(OutboundError, match="connection refused") as e:
        outbound_get(f"http://127.0.0.1:{port}/")
    assert e.value.transient


@pytest.mark.parametrize(("code", "transient"), [(500, True), (503, True), (429, True), (404, False), (403, False)])
def test_error_statuses_raise_with_the_retry_flag_when_asked(server, allow_local, code, transient):
    with pytest.raises(OutboundError, match=f"answered {code}") as e:
        outbound_get(server.url(f"/status?code={code}"), raise_for_status=True)
    assert e.value.transient is transient
    assert e.value.status == code


def test_error_statuses_come_back_as_responses_by_default(server, allow_local):
    """Connectors word statuses for their own service (GitHub's 404, Prometheus's error body)."""
    response = outbound_get(server.url("/status?code=500"))
    assert (response.status, response.body) == (500, b"status body")


def test_the_allowlist_opens_a_cidr_and_only_that_cidr(server, canary, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.0/31"]
    assert outbound_get(server.url("/ok")).status == 200
    with pytest.raises(OutboundError, match=re.escape("127.0.0.2 is a loopback")):
        outbound_get(f"http://127.0.0.2:{canary.port}/")
    with pytest.raises(OutboundError, match="::1 is a loopback"):
        outbound_get(f"http://[::1]:{canary.port}/")
    time.sleep(0.2)
    assert canary.connections == []


def test_the_allowlist_opens_a_name_exactly_and_nothing_that_merely_resembles_it(server, canary, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["Prometheus.Corp.Example."]
    resolve = table_resolver(
        {
            "prometheus.corp.example": ["127.0.0.1"],
            "other.corp.example": ["127.0.0.1"],
            "x.prometheus.corp.example": ["127.0.0.1"],
            "prometheus.corp.example.attacker.example": ["127.0.0.1"],
        }
    )
    response = outbound_get(f"http://prometheus.corp.example.:{server.port}/ok", resolver=resolve)
    assert response.status == 200
    for name in ("other.corp.example", "x.prometheus.corp.example", "prometheus.corp.example.attacker.example"):
        with pytest.raises(OutboundError, match=re.escape(f"{name} resolves to 127.0.0.1, a loopback")):
            outbound_get(f"http://{name}:{canary.port}/", resolver=resolve)
    with pytest.raises(OutboundError, match="loopback"):
        outbound_get(f"http://127.0.0.1:{canary.port}/", resolver=resolve)
    time.sleep(0.2)
    assert canary.connections == []


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://169.254.169.254/", "metadata"),
        ("http://metadata.google.internal/", "metadata"),
        ("http://[fd00:ec2::254]/", "metadata"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://224.0.0.251/", "multicast"),
        ("http://255.255.255.255/", "broadcast"),
        ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", "Teredo"),
    ],
)
def test_no_allowlist_entry_opens_metadata_unspecified_multicast_or_broadcast(settings, url, why):
    settings.OUTBOUND_ALLOWED_HOSTS = [
        "0.0.0.0/0",
        "::/0",
        "169.254.169.254",
        "metadata.google.internal",
        "fd00:ec2::254",
    ]
    with ConnectRecorder.recording() as connects, pytest.raises(OutboundError, match=why):
        outbound_get(url, timeout=1)
    assert connects == []


def test_refusal_messages_do_not_repeat_query_strings_or_credentials():
    with pytest.raises(OutboundError) as e:
        outbound_get("http://user:hunter2@127.0.0.1/x?token=abc123")
    assert "hunter2" not in e.value.message
    assert "abc123" not in e.value.message


@pytest.fixture
def tls_server(tmp_path) -> Iterator[tuple[LocalServer, str]]:
    context, ca_path = tls_context_for("evals.corp.example", tmp_path)
    local = LocalServer(tls=context)
    yield local, str(ca_path)
    local.close()


def test_https_to_a_pinned_address_sends_the_name_as_sni_and_verifies_the_certificate_for_it(tls_server, allow_local):
    server, ca_path = tls_server
    resolve = table_resolver({"evals.corp.example": ["127.0.0.1"]})
    response = outbound_get(server.url("/ok", host="evals.corp.example"), resolver=resolve, ca_certs=ca_path)
    assert response.status == 200
    assert server.server_names == ["evals.corp.example"]
    assert response.headers["X-Seen-Host"] == f"evals.corp.example:{server.port}"
    assert resolve.calls == ["evals.corp.example"]


def test_https_refuses_a_certificate_for_another_name(tls_server, allow_local):
    server, ca_path = tls_server
    resolve = table_resolver({"impostor.corp.example": ["127.0.0.1"]})
    with pytest.raises(OutboundError, match="TLS") as e:
        outbound_get(server.url("/ok", host="impostor.corp.example"), resolver=resolve, ca_certs=ca_path)
    assert not e.value.transient
    assert server.requests == []


def test_https_refuses_a_certificate_from_an_untrusted_authority(tls_server, allow_local):
    server, _ = tls_server
    resolve = table_resolver({"evals.corp.example": ["127.0.0.1"]})
    with pytest.raises(OutboundError, match="TLS") as e:
        outbound_get(server.url("/ok", host="evals.corp.example"), resolver=resolve)
    assert not e.value.transient
    assert server.requests == []
