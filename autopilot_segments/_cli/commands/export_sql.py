"""`export --sql QUERY --db URL`: a query's rows as the segment, the database password kept out of sight."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from ...sources import SourceError
from ..console import _Console
from ..exit_codes import _UsageError

DB_URL_ENV = "AUTOPILOT_SEGMENTS_DB_URL"

# Flags that only describe a SOURCE file, refused with --sql.
_FILE_FLAGS = ("entity", "format", "encoding", "delimiter", "sheet")


def _add_sql_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--sql",
        metavar="QUERY",
        help="export the rows of this SQL query instead of a SOURCE file (with --db)",
    )
    group.add_argument("--sql-file", metavar="FILE", help="the same, with the query read from FILE")
    group.add_argument(
        "--db",
        metavar="URL",
        help=f"the database to query: an SQLAlchemy URL, e.g. postgresql://user@host/db "
        f"(default: ${DB_URL_ENV}); no password here, see --db-password-env",
    )
    group.add_argument(
        "--db-password-env",
        metavar="NAME",
        help="read the database password from the environment variable NAME "
        "(PostgreSQL also reads PGPASSWORD and ~/.pgpass by itself)",
    )


@attrs.frozen
class _SqlSource:
    """The query and the database to run it on; the URL's repr hides its password."""

    query: str
    url: Any = attrs.field(repr=lambda url: url.render_as_string(hide_password=True))

    def rows(self) -> Iterator[Mapping[str, Any]]:
        from ...sources import read_sql

        return read_sql(self.query, self.url)


def _sql_source(args: argparse.Namespace, console: _Console) -> _SqlSource | None:
    """The query source the flags ask for, or None when they name a SOURCE file.

    The password never goes on the command line (it would land in shell history and in the process
    list): it comes with the URL from the environment, from --db-password-env, or from the driver's
    own files and variables.
    """
    query = _query(args)
    if query is None:
        for flag in ("db", "db_password_env"):
            if getattr(args, flag, None) is not None:
                raise _UsageError(f"--{flag.replace('_', '-')} goes with --sql or --sql-file")
        if args.source is None:
            raise _UsageError("say what to export: a SOURCE file, or --sql QUERY with --db URL")
        return None
    if args.source is not None:
        raise _UsageError("give a SOURCE file or --sql/--sql-file, not both")
    for flag in _FILE_FLAGS:
        if getattr(args, flag, None) is not None:
            raise _UsageError(f"--{flag} describes a SOURCE file; it does not apply to --sql")
    url = _database_url(args, console)
    return _SqlSource(query, url)


def _query(args: argparse.Namespace) -> str | None:
    if args.sql is not None and args.sql_file is not None:
        raise _UsageError("give the query once: --sql QUERY or --sql-file FILE")
    if args.sql_file is not None:
        try:
            text = Path(args.sql_file).read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise _UsageError(f"--sql-file {args.sql_file}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise _UsageError(f"--sql-file {args.sql_file}: not UTF-8 text") from None
    elif args.sql is not None:
        text = args.sql
    else:
        return None
    text = text.strip().rstrip(";").strip()
    if not text:
        raise _UsageError("the SQL query is empty")
    return text


def _database_url(args: argparse.Namespace, console: _Console) -> Any:
    try:
        from sqlalchemy.engine import make_url
    except ImportError:
        raise SourceError(
            "--sql needs SQLAlchemy, which is not installed: pip install 'autopilot-segments[sql]' "
            "(and the database's driver, e.g. autopilot-segments[postgres])"
        ) from None
    from_flag = args.db is not None
    text = args.db if from_flag else os.environ.get(DB_URL_ENV, "").strip()
    if not text:
        raise _UsageError(f"--sql needs the database: --db URL, or the {DB_URL_ENV} environment variable")
    where = "--db" if from_flag else DB_URL_ENV
    try:
        url = make_url(text)
    except Exception:  # ArgumentError; the text is not echoed: it may hold a password
        raise _UsageError(
            f"{where} is not a database URL (expected e.g. postgresql://user@host/db or sqlite:///file.db)"
        ) from None
    if url.password is not None:
        console.add_secret(str(url.password))
        if from_flag:
            raise _UsageError(
                "--db holds a password, which would land in shell history and the process list: put the "
                f"URL in the {DB_URL_ENV} environment variable, or the password in a variable named by "
                "--db-password-env (for PostgreSQL, PGPASSWORD or ~/.pgpass also work)"
            )
    if args.db_password_env is not None:
        password = os.environ.get(args.db_password_env, "")
        if not password:
            raise _UsageError(
                f"--db-password-env {args.db_password_env}: that environment variable is not set"
            )
        if url.password is not None:
            raise _UsageError(f"{where} holds a password already; drop it or --db-password-env")
        console.add_secret(password)
        url = url.set(password=password)
    return url
