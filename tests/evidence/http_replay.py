"""A real HTTP server on 127.0.0.1 that replays recorded responses, for the HTTP connectors' tests.

It speaks real HTTP (status lines, headers, Content-Length) so the connectors run through the
real outbound client; only the far end is recorded. Requests it receives are kept, so a test
can check what a connector sent (paths, query parameters, auth headers).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

INTEROP = Path(__file__).parent / "interop"

# Hop-by-hop and framing headers from a recording describe the original connection, not the
# replayed body; the server sets its own.
_SKIP_HEADERS = {"content-length", "transfer-encoding", "content-encoding", "connection"}


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Received:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


def interop_bytes(relative: str) -> bytes:
    return (INTEROP / relative).read_bytes()


def json_reply(relative: str, *, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    """A recorded JSON body file served as the service serves it (JSON content type unless told)."""
    return Reply(
        status=status, body=interop_bytes(relative), headers={"Content-Type": "application/json", **(headers or {})}
    )


def wiremock_reply(mapping: str) -> Reply:
    """A WireMock recording (hub4j/github-api's): status, headers and body exactly as captured."""
    recorded: dict[str, Any] = json.loads(interop_bytes(mapping))["response"]
    if "bodyFileName" in recorded:
        # The body files sit beside their mappings, named <kind>_<recorded file name>.
        kind = Path(mapping).name.split("_", 1)[0]
        body = interop_bytes(str(Path(mapping).parent / f"{kind}_{recorded['bodyFileName']}"))
    else:
        body = str(recorded.get("body", "")).encode()
    headers = {}
    for name, value in recorded.get("headers", {}).items():
        if name.lower() not in _SKIP_HEADERS:
            headers[name] = ", ".join(value) if isinstance(value, list) else str(value)
    return Reply(status=int(recorded["status"]), body=body, headers=headers)


class ReplayServer:
    """Routes are ``/path?param=value``: a request matches when its path is equal and it carries
    at least the route's parameters. Anything else gets ``fallback``."""

    def __init__(self, fallback: Reply) -> None:
        self.routes: list[tuple[str, dict[str, list[str]], Reply]] = []
        self.received: list[Received] = []
        self.fallback = fallback
        self.url = ""

    def route(self, target: str, reply: Reply) -> None:
        parts = urlsplit(target)
        self.routes.append((parts.path, parse_qs(parts.query), reply))

    def reply_for(self, path: str, query: dict[str, list[str]]) -> Reply:
        # Most parameters wins; on a tie the route added last, so a test can override one route.
        candidates = [
            (len(wanted), order, reply)
            for order, (route_path, wanted, reply) in enumerate(self.routes)
            if route_path == path and all(query.get(key) == values for key, values in wanted.items())
        ]
        if not candidates:
            return self.fallback
        return max(candidates, key=lambda candidate: candidate[:2])[2]


def _handler(server: ReplayServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            server.received.append(Received(parts.path, query, dict(self.headers.items())))
            reply = server.reply_for(parts.path, query)
            if reply.delay:
                time.sleep(reply.delay)
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                # The client gave up (a timeout or a size limit): that is what the test wanted.
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def replay_server(fallback: Reply | None = None) -> Iterator[ReplayServer]:
    """A ReplayServer listening on a free port of 127.0.0.1 for the duration of the block."""
    server = ReplayServer(fallback or Reply(404, b'{"message": "Not Found"}', {"Content-Type": "application/json"}))
    http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    http.daemon_threads = True
    http.block_on_close = False
    server.url = f"http://127.0.0.1:{http.server_address[1]}"
    thread = threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        http.shutdown()
        http.server_close()
