"""The total deadline of a call: a server trickling its answer cannot hold a call past it."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from autopilot_segments import APITimeoutError, AutopilotClient, ConfigurationError

KEY = "0123456789abcdef0123456789abcdef"


def _answer(body: bytes) -> tuple[bytes, bytes]:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    return head, body


SHORT = _answer(b'{"lists": []}')
UNAVAILABLE = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0.4\r\nContent-Length: 0\r\n\r\n"
LONG = _answer(b'{"lists": [' + b" " * 2000 + b"]}")


class TricklingServer:
    """A raw-socket HTTP server: reads a request, then sends its answer one byte every `pause` seconds.

    `phase` says where the trickle starts: "headers" (from the status line) or "body" (headers at once).
    """

    def __init__(self, phase: str, pause: float = 0.05) -> None:
        self.phase = phase
        self.pause = pause
        self.requests = 0
        self._stop = threading.Event()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}/v1"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            self.requests += 1
            head, body = SHORT if self.phase == "headers" else LONG
            answer = head + body
            if self.phase == "body":
                conn.sendall(head)
                answer = body
            for byte in answer:
                if self._stop.is_set():
                    return
                conn.sendall(bytes([byte]))
                time.sleep(self.pause)

    def close(self) -> None:
        self._stop.set()
        self._sock.close()


@pytest.fixture(params=["headers", "body"])
def trickling(request: pytest.FixtureRequest) -> Iterator[TricklingServer]:
    server = TricklingServer(request.param)
    yield server
    server.close()


def test_a_trickled_answer_fails_at_the_deadline_not_long_after(trickling: TricklingServer) -> None:
    # Each byte comes well within the read timeout, so only a total deadline can end the call.
    with AutopilotClient(
        KEY, base_url=trickling.url, timeout=(1.0, 1.0), deadline=0.5, requests_per_second=1000
    ) as client:
        started = time.monotonic()
        with pytest.raises(APITimeoutError, match="deadline") as info:
            client.lists()
        elapsed = time.monotonic() - started
    assert elapsed < 1.5  # 3x the deadline: a correctness bound, not a performance figure
    assert KEY not in repr(info.value) + str(info.value)
    assert trickling.requests == 1  # a read that passed the deadline is not retried


def test_the_deadline_covers_retries_and_their_waits() -> None:
    # A server that always answers 503 with Retry-After 0.4: retries would take 5 x 0.4 s; the
    # deadline of 0.5 s ends the call before a retry that could not finish in time.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    stop = threading.Event()
    count = []

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn, contextlib.suppress(OSError):
                while not stop.is_set():
                    data = conn.recv(65536)
                    if not data:
                        break
                    count.append(1)
                    conn.sendall(
                        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0.4\r\nContent-Length: 0\r\n\r\n"
                    )

    threading.Thread(target=serve, daemon=True).start()
    try:
        with AutopilotClient(
            KEY,
            base_url=f"http://127.0.0.1:{server.getsockname()[1]}/v1",
            deadline=0.5,
            max_retries=5,
            requests_per_second=1000,
        ) as client:
            started = time.monotonic()
            with pytest.raises(APITimeoutError, match="deadline"):
                client.lists()
            elapsed = time.monotonic() - started
    finally:
        stop.set()
        server.close()
    assert elapsed < 1.5
    # The first attempt and one retry at most: a further one would start past the deadline. (On a busy
    # machine the first attempt can take long enough that even the one retry no longer fits.)
    assert 1 <= len(count) <= 2


def test_a_call_within_its_deadline_is_untouched(trickling: TricklingServer) -> None:
    trickling.pause = 0.0
    with AutopilotClient(KEY, base_url=trickling.url, deadline=5.0) as client:
        assert client.lists() == []


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "10", True])
def test_a_bad_deadline_is_refused(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="deadline"):
        AutopilotClient(KEY, deadline=bad)  # type: ignore[arg-type]


def test_the_deadline_can_be_turned_off() -> None:
    with AutopilotClient(KEY, deadline=None) as client:
        assert client.deadline is None
    with AutopilotClient(KEY) as client:
        assert client.deadline == 120.0
