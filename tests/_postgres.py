"""A throwaway PostgreSQL server for the tests and the benchmark: initdb into a temporary folder, start it
on a free port on 127.0.0.1 (and a unix socket in that folder), stop it and delete everything afterwards.

PostgreSQL refuses to run as root, so when the tests run as root (as in CI) the server runs as the
`postgres` user that the system package creates (else `nobody`), in a folder that user owns.
The binaries are found on PATH, then in /usr/lib/postgresql/<version>/bin (Debian, Ubuntu), newest first.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

# The superuser's password: real password authentication over TCP, so tests can check that the
# password never shows up in output, errors or reports.
USER = "autopilot"
PASSWORD = "pg-s3cret-Zq7x"
DATABASE = "segments"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binary on this machine."""


def find_bin_dir() -> Path:
    """The folder holding `postgres`, `initdb` and `pg_ctl`: PATH first, then /usr/lib/postgresql/*/bin."""
    candidates: list[Path] = []
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(os.path.realpath(on_path)).parent)

    def version(folder: str) -> tuple[int, ...]:
        name = Path(folder).parent.name
        return tuple(int(part) for part in name.split(".") if part.isdigit())

    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)]
    for folder in candidates:
        if all((folder / name).is_file() for name in ("postgres", "initdb", "pg_ctl")):
            return folder
    raise PostgresUnavailable(
        "no PostgreSQL server binaries (postgres, initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin; "
        "install them, e.g. apt-get install postgresql"
    )


def require_server_binaries(
    environ: Mapping[str, str] = os.environ, find: Callable[[], Path] = find_bin_dir
) -> Path:
    """The binaries' folder; without one, skip the test, or fail it when `CI` is set (never skip in CI)."""
    try:
        return find()
    except PostgresUnavailable as exc:
        if environ.get("CI"):
            pytest.fail(f"CI is set but PostgreSQL is not installed: {exc}", pytrace=False)
        pytest.skip(str(exc))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresServer:
    """A started server; `url` is an SQLAlchemy URL (psycopg 3) for the `segments` database."""

    def __init__(self, bin_dir: Path, root: Path, port: int, run_as: dict[str, Any]) -> None:
        self.bin_dir, self.root, self.port, self._run_as = bin_dir, root, port, run_as
        self.host = "127.0.0.1"
        self.user, self.password, self.database = USER, PASSWORD, DATABASE

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    def url_without_password(self) -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{self.database}"

    @property
    def conninfo(self) -> str:
        """A libpq connection string for psycopg.connect (and psycopg2.connect)."""
        return (
            f"host={self.host} port={self.port} dbname={self.database} user={self.user} "
            f"password={self.password}"
        )

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"},
            cwd=self.root,
            **self._run_as,
        )


def _owner() -> tuple[dict[str, Any], int | None, int | None]:
    """subprocess keyword arguments running the server as an unprivileged user when we are root."""
    if os.geteuid() != 0:
        return {}, None, None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return (
                {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []},
                entry.pw_uid,
                entry.pw_gid,
            )
    raise PostgresUnavailable(
        "running as root and there is no 'postgres' or 'nobody' user to run the server as"
    )


def _die_with_parent() -> None:
    """In the server's process, before exec: ask Linux to stop it (SIGQUIT, the immediate shutdown) when
    the test process dies, so a killed test run leaves no server behind."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGQUIT)  # PR_SET_PDEATHSIG; set after the user switch, which would clear it


def _start(server: PostgresServer) -> subprocess.Popen[bytes]:
    """Run `postgres` as a child of this process and wait until it accepts connections."""
    import psycopg

    for _attempt in range(3):  # the free port may be taken between probing and starting
        log = open(server.root / "log", "ab")  # noqa: SIM115 - the server writes it until it stops
        process = subprocess.Popen(
            [str(server.bin_dir / "postgres"), "-D", str(server.root / "data"), "-p", str(server.port),
             "-k", str(server.root), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
             "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=20"],
            stdout=log, stderr=subprocess.STDOUT, cwd=server.root, preexec_fn=_die_with_parent,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"},
            **server._run_as,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            try:
                psycopg.connect(
                    host=server.host, port=server.port, user=USER, password=PASSWORD, dbname="postgres",
                    connect_timeout=2,
                ).close()  # fmt: skip
                return process
            except psycopg.OperationalError:
                time.sleep(0.05)
        process.kill()
        process.wait()
        server.port = _free_port()
    log_text = (server.root / "log").read_text(errors="replace")
    raise RuntimeError(f"PostgreSQL did not start:\n{log_text}")


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a fresh server (initdb, then postgres as a child process), yield it, stop it and remove its
    folder."""
    bin_dir = find_bin_dir()
    run_as, uid, gid = _owner()
    # Under /tmp (world-traversable), not pytest's tmp_path: that is private to root, and the server user
    # must reach its data folder. Short, too: a unix socket path is limited to ~100 bytes.
    root = Path(tempfile.mkdtemp(prefix="aps-pg-"))
    try:
        if uid is not None and gid is not None:
            os.chown(root, uid, gid)
        server = PostgresServer(bin_dir, root, _free_port(), run_as)
        pwfile = root / "pwfile"
        pwfile.write_text(PASSWORD + "\n")
        if uid is not None and gid is not None:
            os.chown(pwfile, uid, gid)
        server.run(
            "initdb",
            "-D",
            str(root / "data"),
            "-U",
            USER,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        )

        process = _start(server)
        try:
            import psycopg

            with psycopg.connect(
                host=server.host, port=server.port, user=USER, password=PASSWORD, dbname="postgres",
                autocommit=True,
            ) as conn:  # fmt: skip
                conn.execute(f"CREATE DATABASE {DATABASE}")
            yield server
        finally:
            process.send_signal(signal.SIGINT)  # "fast" shutdown: disconnect the sessions, stop
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    finally:
        shutil.rmtree(root, ignore_errors=True)
