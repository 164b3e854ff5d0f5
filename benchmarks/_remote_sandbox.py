"""A sandbox in its own process, for benchmarks: the server's clock and threads do not share the client's GIL.

In one process the sandbox's handler threads wait for the interpreter lock behind the client's threads,
so the arrival times it records carry the client's scheduling noise. Autopilot is another machine; a
child process is the closest a benchmark gets. `RemoteSandbox` starts `python _remote_sandbox.py` with
the switches as JSON, and asks it over a pipe (one JSON line each way) for what a benchmark reads.
"""

from __future__ import annotations

import json
import subprocess
import sys
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


def _serve(switches: dict[str, Any]) -> None:
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
