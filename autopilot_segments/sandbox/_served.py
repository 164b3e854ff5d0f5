"""What both sandboxes do alike: serve an app on 127.0.0.1 in a thread, inject faults, show requests."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Protocol

from typing_extensions import Self

from ._faults import FaultSchedule
from ._recording import RecordedRequest, RequestLog
from ._reply import Reply
from ._server import SandboxHTTPServer

__all__ = ["ServedSandbox"]


class _App(Protocol):
    faults: FaultSchedule
    log: RequestLog

    @property
    def key_header(self) -> str: ...

    def handle(self, method: str, raw_path: str, api_key: str | None, raw_body: bytes) -> Reply: ...

    def reset(self) -> None: ...


class ServedSandbox:
    """The lifecycle, address, key, fault injection and request log of a sandbox; subclasses bring the app."""

    _thread_name = "sandbox"

    def __init__(self, *, app: _App, api_key: str, host: str, port: int) -> None:
        self._app_served = app
        self._api_key = api_key
        self._host = host
        self._requested_port = port
        self._server: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lifecycle = threading.Lock()

    def __repr__(self) -> str:
        state = self.url if self._server else "stopped"
        return f"<{type(self).__name__} {state}>"

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> Self:
        """Bind and serve in a daemon thread; returns self. Starting a running sandbox is an error."""
        with self._lifecycle:
            if self._server is not None:
                raise RuntimeError("the sandbox is already running")
            server = SandboxHTTPServer((self._host, self._requested_port), self._app_served)
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.01},
                name=self._thread_name,
                daemon=True,
            )
            thread.start()
            self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection. Safe to call twice."""
        with self._lifecycle:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        """The bound port (the requested one until started)."""
        server = self._server
        return int(server.server_address[1]) if server else self._requested_port

    @property
    def url(self) -> str:
        """Base URL, e.g. `http://127.0.0.1:54321/v1`."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}/v1"

    @property
    def api_key(self) -> str:
        """The one key this sandbox accepts (keep it out of logs)."""
        return self._api_key

    # -- faults and requests ------------------------------------------------------------------
    def inject(
        self, kind: str, *, times: int = 1, method: str | None = None, path_prefix: str | None = None
    ) -> None:
        """Play fault `kind` on the next `times` requests matching `method` and `path_prefix` (no `/v1`).

        Kinds: "500", "502", "503", "429", "drop_before", "drop_after", "delay:<seconds>". Injected faults
        take precedence over the FaultPlan and apply only to requests that passed auth and the rate limit.
        """
        self._app_served.faults.inject(kind, times=times, method=method, path_prefix=path_prefix)

    @property
    def pending_faults(self) -> int:
        """Injected faults not played yet."""
        return self._app_served.faults.pending

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order."""
        return self._app_served.log.snapshot()
