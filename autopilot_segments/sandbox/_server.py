"""HTTP plumbing: a threading HTTP/1.1 server with keep-alive that hands each request to the app."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, runtime_checkable

from ._reply import Reply

__all__ = ["SandboxHTTPServer", "ServedApp"]


class ServedApp(Protocol):
    """What the server needs of an app: the header carrying the key, and one reply per request."""

    @property
    def key_header(self) -> str: ...

    def handle(self, method: str, raw_path: str, api_key: str | None, raw_body: bytes) -> Reply: ...


@runtime_checkable
class _TimedApp(Protocol):
    """An app that records when each request arrived (its request line), on its own clock."""

    def arrival(self) -> float: ...

    def handle(
        self, method: str, raw_path: str, api_key: str | None, raw_body: bytes, *, at: float | None = None
    ) -> Reply: ...


_log = logging.getLogger("autopilot_segments.sandbox")
_IDLE_TIMEOUT = 120.0  # seconds an idle keep-alive connection is kept open


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SandboxHTTPServer
    timeout = _IDLE_TIMEOUT
    # Headers and body leave in one segment (flushed per request by the stdlib), and Nagle is off:
    # otherwise delayed ACKs add ~40 ms to every answer.
    wbufsize = 1 << 16
    arrived_at: float | None = None

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines hold emails (personal data): DEBUG only, and the key is in a header, never logged.
        _log.debug("sandbox: " + format, *args)

    def parse_request(self) -> bool:
        # A request starts when its request line arrives, not once its body has been read and parsed.
        app = self.server.app
        self.arrived_at = app.arrival() if isinstance(app, _TimedApp) else None
        return super().parse_request()

    def _read_body(self) -> bytes | None:
        """The request body, or None when its framing is broken (the connection cannot be reused)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size_line = self.rfile.readline(1024)
                try:
                    size = int(size_line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    return None
                if size == 0:
                    while self.rfile.readline(1024).strip():  # trailers, then the blank line
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)  # the CRLF after each chunk
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        raw_body = self._read_body()
        if raw_body is None:
            self.close_connection = True
            self.send_error(400, "Bad Request", "The request body framing is invalid.")
            return
        app, key = self.server.app, self.headers.get(self.server.app.key_header)
        if isinstance(app, _TimedApp) and self.arrived_at is not None:
            reply = app.handle(self.command, self.path, key, raw_body, at=self.arrived_at)
        else:
            reply = app.handle(self.command, self.path, key, raw_body)
        if reply.drop:
            self.close_connection = True
            return
        self.send_response(reply.status)
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if reply.body:
            self.wfile.write(reply.body)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve


class SandboxHTTPServer(ThreadingHTTPServer):
    """Daemon handler threads, a large backlog, and a way to cut every open connection on stop."""

    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: ServedApp) -> None:
        self.app = app
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """Unblock handler threads waiting on idle keep-alive connections."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-answer is normal under fault tests; never print tracebacks to stderr.
        _log.debug("sandbox: connection error", exc_info=True)
