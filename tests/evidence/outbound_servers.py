"""Real local listeners for the outbound client's tests: a canary that records every connection
it is offered, an HTTP server with the awkward behaviours (redirects, loops, huge and slow
bodies), and a per-thread record of every socket connect the process attempts."""

from __future__ import annotations

import contextlib
import datetime
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class Canary:
    """Listens on one port of every local address (dual-stack wildcard when the machine has IPv6,
    so 127.0.0.1, 127.0.0.2, 127.x, 0.0.0.0 and ::1 all land here) and records who knocked."""

    def __init__(self) -> None:
        self.connections: list[Any] = []
        self.addresses: list[str] = []
        try:
            listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            listener.bind(("::", 0))
            self.dual_stack = True
        except OSError:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.bind(("127.0.0.1", 0))
            self.dual_stack = False
        listener.listen(64)
        listener.settimeout(0.1)
        self.port: int = listener.getsockname()[1]
        self._listener = listener
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="canary", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, peer = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections.append(peer)
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._listener.close()


class ConnectRecorder:
    """Every ``socket.connect`` this thread attempts while recording, seen through Python's audit
    hooks: the real calls, not a mock, so an address the canary cannot listen on (169.254.169.254)
    is still caught if the client ever tries it."""

    _installed = False
    _local = threading.local()

    @classmethod
    def _hook(cls, event: str, args: tuple[Any, ...]) -> None:
        if event == "socket.connect":
            seen = getattr(cls._local, "seen", None)
            if seen is not None:
                seen.append(args[1])

    @classmethod
    @contextlib.contextmanager
    def recording(cls) -> Iterator[list[Any]]:
        if not cls._installed:
            sys.addaudithook(cls._hook)
            cls._installed = True
        seen: list[Any] = []
        cls._local.seen = seen
        try:
            yield seen
        finally:
            cls._local.seen = None


class _Handler(BaseHTTPRequestHandler):
    server: LocalServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests assert on what matters."""

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.requests.append((self.path, dict(self.headers.items())))
        parts = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        route = parts.path
        if route == "/ok":
            self._send(200, b'{"ok": true}', {"Content-Type": "application/json", "X-Seen-Host": self.headers["Host"]})
        elif route == "/redirect":
            self._send(int(query.get("status", "302")), headers={"Location": query["to"]})
        elif route == "/loop":
            self._send(302, headers={"Location": "/loop"})
        elif route in {"/ping", "/pong"}:
            self._send(302, headers={"Location": "/pong" if route == "/ping" else "/ping"})
        elif route.startswith("/chain/"):
            left = int(route.rsplit("/", 1)[1])
            self._send(302, headers={"Location": f"/chain/{left - 1}" if left else "/ok"})
        elif route == "/status":
            self._send(int(query["code"]), b"status body")
        elif route == "/big":
            self._stream_big(int(query["bytes"]), declare=query.get("declare") == "1")
        elif route == "/slow":
            time.sleep(float(query["seconds"]))
            self._send(200, b"late")
        elif route == "/drip":
            self._drip()
        else:
            self._send(404, b"no such route")

    def _stream_big(self, total: int, *, declare: bool) -> None:
        self.send_response(200)
        if declare:
            self.send_header("Content-Length", str(total))
        self.send_header("Connection", "close")
        self.end_headers()
        chunk = b"x" * 65536
        try:
            while self.server.sent < total:
                self.wfile.write(chunk)
                self.server.sent += len(chunk)
        except OSError:
            self.server.broken = True

    def _drip(self) -> None:
        self.send_response(200)
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            for _ in range(200):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.1)
        except OSError:
            self.server.broken = True


class LocalServer(ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 with the routes above; ``requests`` lists (path, headers)."""

    daemon_threads = True

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.port: int = self.server_address[1]
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.sent = 0
        self.broken = False
        self.scheme = "https" if tls else "http"
        self.server_names: list[str | None] = []
        if tls is not None:
            tls.sni_callback = lambda _socket, name, _context: self.server_names.append(name)
            # The handshake happens in the handler's thread, so a client that rejects the
            # certificate cannot stall the accept loop.
            self.socket = tls.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: a client refusing our test certificate is the point of some tests, not an error."""

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(2)


def tls_context_for(name: str, directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context with a certificate for ``name`` signed by a throwaway CA, and the path
    of that CA's certificate for the client to trust."""
    now = datetime.datetime.now(datetime.UTC)

    def certificate(
        subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, signer: ec.EllipticCurvePrivateKey, *, ca: bool
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        else:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = certificate("Preflight test CA", ca_key, "Preflight test CA", ca_key, ca=True)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf_cert = certificate(name, leaf_key, "Preflight test CA", ca_key, ca=False)
    ca_path, chain_path, key_path = directory / "ca.pem", directory / "chain.pem", directory / "key.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    chain_path.write_bytes(leaf_cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain_path, key_path)
    return context, ca_path
