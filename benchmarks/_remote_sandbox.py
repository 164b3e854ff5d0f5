"""A sandbox in its own process, for benchmarks: the server's clock and threads do not share the client's GIL.

In one process the sandbox's handler threads wait for the interpreter lock behind the client's threads,
so the arrival times it records carry the client's scheduling noise. Autopilot is another machine; a
child process is the closest a benchmark gets. `RemoteSandbox` starts `python _remote_sandbox.py` with
the switches as JSON, and asks it over a pipe (one JSON line each way) for what a benchmark reads.

In the child, a request's arrival is the kernel's receive timestamp of its first byte (`SO_TIMESTAMPNS`,
read with a peek before the request line is parsed), not the moment a handler thread got round to it:
on a loaded machine that thread may run milliseconds late, and a late timestamp can put one request
too many into a second that never held it.
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import time
from types import TracebackType
from typing import Any

from autopilot_segments.sandbox import Sandbox
from autopilot_segments.sandbox._recording import busiest_window


class RecordedStart:
    """What a benchmark reads of a recorded request."""

    def __init__(self, at: float, method: str, path: str, status: int | None) -> None:
        self.at, self.method, self.path, self.status = at, method, path, status


class RemoteSandbox:
    def __init__(self, **switches: Any) -> None:
        self._process = subprocess.Popen(
            [sys.executable, __file__, json.dumps(switches)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        hello = self._read()
        self.url: str = hello["url"]
        self.api_key: str = hello["api_key"]

    def _read(self) -> Any:
        assert self._process.stdout is not None
        return json.loads(self._process.stdout.readline())

    def _ask(self, *command: str) -> Any:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(command) + "\n")
        self._process.stdin.flush()
        return self._read()

    @property
    def requests(self) -> list[RecordedStart]:
        return [RecordedStart(*r) for r in self._ask("requests")]

    def list_members(self, list_id: str) -> set[str]:
        return set(self._ask("members", list_id))

    def busiest_second(self) -> int:
        return busiest_window([r.at for r in self.requests])

    def __enter__(self) -> RemoteSandbox:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._ask("quit")
        self._process.wait(timeout=30)


_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux


def _use_kernel_arrival_times() -> None:
    """Make the sandbox's HTTP handler record the kernel's receive time of each request's first byte."""
    from autopilot_segments.sandbox import _server

    handler: Any = _server._Handler
    setup, handle_one, parse = handler.setup, handler.handle_one_request, handler.parse_request
    offset = time.time() - time.monotonic()  # the kernel stamps CLOCK_REALTIME; the sandbox's is monotonic

    def timed_setup(self: Any) -> None:
        setup(self)
        self.connection.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)

    def timed_handle_one_request(self: Any) -> None:
        # The client sends one request at a time on a connection (no pipelining), so nothing of the next
        # request is buffered yet: peek at its first byte on the socket itself.
        self.kernel_at = None
        try:
            _, ancillary, _, _ = self.connection.recvmsg(1, socket.CMSG_SPACE(16), socket.MSG_PEEK)
        except OSError:
            ancillary = []
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= 16:
                seconds, nanoseconds = struct.unpack("qq", data[:16])
                self.kernel_at = seconds + nanoseconds / 1e9 - offset
        handle_one(self)

    def timed_parse_request(self: Any) -> bool:
        ok: bool = parse(self)
        if getattr(self, "kernel_at", None) is not None:
            self.arrived_at = self.kernel_at
        return ok

    handler.setup = timed_setup
    handler.handle_one_request = timed_handle_one_request
    handler.parse_request = timed_parse_request


def _serve(switches: dict[str, Any]) -> None:
    _use_kernel_arrival_times()
    with Sandbox(**switches) as sb:
        print(json.dumps({"url": sb.url, "api_key": sb.api_key}), flush=True)
        for line in sys.stdin:
            command = json.loads(line)
            if command[0] == "requests":
                answer: Any = [[r.at, r.method, r.path, r.status] for r in sb.requests]
            elif command[0] == "members":
                answer = sorted(sb.list_members(command[1]))
            else:
                print("null", flush=True)
                return
            print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    _serve(json.loads(sys.argv[1]))
