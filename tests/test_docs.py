"""Docs that run: every ```python block of README.md and docs/*.md is executed against a sandbox.

Per Markdown file, the blocks run in order in one shared namespace, in a fresh temporary working
directory holding the files the docs read (`vip.csv`, `mapping.json`, ...), with `AUTOPILOT_API_KEY` and
`AUTOPILOT_BASE_URL` pointing at a sandbox started for that file. A block preceded by the line
`<!-- fragment -->` is a deliberate fragment: it is compiled (so its syntax is checked) but not run.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import itertools
import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import attrs
import pyarrow
import pyarrow.parquet
import pytest

from autopilot_segments import AutopilotClient
from autopilot_segments.sandbox import Sandbox
from autopilot_segments.sources import sample_mapping_path, sample_segment_path

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
FRAGMENT_MARK = "<!-- fragment -->"
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`\n]*)$")


@attrs.frozen
class Block:
    """One fenced ```python block: where it starts, whether it is a fragment, its source."""

    path: Path
    line: int  # 1-based line of the first line of code
    fragment: bool
    source: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def python_blocks(path: Path) -> list[Block]:
    """The ```python blocks of a Markdown file, in order (other fences are skipped whole)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        language = opening["info"].strip().split(" ")[0].lower()
        body_start = index + 1
        end = body_start
        while end < len(lines) and not re.match(rf"^[ \t]*{re.escape(fence)}[`~]*[ \t]*$", lines[end]):
            end += 1
        if language in ("python", "py"):
            previous = next((lines[i].strip() for i in range(index - 1, -1, -1) if lines[i].strip()), "")
            body = "\n".join(line[indent:] for line in lines[body_start:end])
            blocks.append(Block(path, body_start + 1, previous == FRAGMENT_MARK, body + "\n"))
        index = end + 1
    return blocks


VIP_CSV = """\
email,first_name,last_name,points
ada@example.com,Ada,Lovelace,120
grace@example.com,Grace,Hopper,80
alan@example.com,Alan,Turing,15
not-an-email,Nobody,Atall,1
"""


def _prepare_working_directory(directory: Path) -> None:
    """The files the docs read, as a reader following them would have them."""
    (directory / "vip.csv").write_text(VIP_CSV, encoding="utf-8")
    (directory / "customers.csv").write_text(VIP_CSV, encoding="utf-8")
    shutil.copy(sample_segment_path(), directory / "sample_segment.csv")
    shutil.copy(sample_mapping_path(), directory / "sample_mapping.json")
    mapping = {
        "email": "email",
        "fields": {"FirstName": "first_name", "LastName": "last_name"},
        "custom": [{"name": "Loyalty Points", "type": "integer", "source": "points"}],
    }
    (directory / "mapping.json").write_text(json.dumps(mapping), encoding="utf-8")
    _write_source_examples(directory)
    _write_saved_export_examples(directory)


def _write_saved_export_examples(directory: Path) -> None:
    """docs/saved-exports.md runs the export file it shows (its first ```toml block), over tiers.csv."""
    page = (ROOT / "docs" / "saved-exports.md").read_text(encoding="utf-8")
    shown = re.search(r"^```toml\n(.*?)^```", page, re.S | re.M)
    assert shown is not None, "docs/saved-exports.md shows no export file"
    (directory / "exports.toml").write_text(shown.group(1), encoding="utf-8")
    (directory / "tiers.csv").write_text(
        "email,first_name,tier\nada@example.com,Ada,gold\ngrace@example.com,Grace,silver\n"
        "alan@example.com,Alan,bronze\nlin@example.com,Lin,\n",
        encoding="utf-8",
    )


def _write_source_examples(directory: Path) -> None:
    """The files docs/sources.md reads: every format, a CDM lake folder, a SQLite database."""
    rows = list(csv.DictReader(io.StringIO(VIP_CSV)))
    (directory / "export.csv").write_text(VIP_CSV.replace(",", ";"), encoding="cp1252")
    (directory / "no_header.csv").write_text(VIP_CSV.split("\n", 1)[1], encoding="utf-8")
    (directory / "vip.tsv").write_text(VIP_CSV.replace(",", "\t"), encoding="utf-8")
    for name in ("export.csv.gz", "vip.csv.gz"):
        (directory / name).write_bytes(gzip.compress(VIP_CSV.encode()))
    for name in ("contacts.jsonl", "vip.jsonl"):
        (directory / name).write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    table = pyarrow.Table.from_pylist(rows)
    for name in ("segment.parquet", "vip.parquet"):
        pyarrow.parquet.write_table(table, directory / name)
    for folder, entities in (("Sales", ("Contact", "Account")), ("Single", ("Contact",))):
        root = directory / "lake" / folder
        model = {"name": folder, "entities": []}
        for entity in entities:
            (root / entity).mkdir(parents=True)
            (root / entity / f"{entity}-part1.csv").write_text(VIP_CSV.split("\n", 1)[1], encoding="utf-8")
            model["entities"].append(
                {
                    "$type": "LocalEntity",
                    "name": entity,
                    "attributes": [{"name": column, "dataType": "string"} for column in rows[0]],
                    "partitions": [
                        {
                            "name": f"{entity}-part1",
                            "location": f"https://lake.dfs.core.windows.net/{folder}/{entity}/{entity}-part1.csv",
                        }
                    ],
                }
            )
        (root / "model.json").write_text(json.dumps(model), encoding="utf-8")
    with contextlib.closing(sqlite3.connect(directory / "shop.db")) as db, db:
        db.execute("CREATE TABLE vip_customers (email TEXT, first_name TEXT, last_name TEXT, points INTEGER)")
        db.executemany("INSERT INTO vip_customers VALUES (:email, :first_name, :last_name, :points)", rows)


class _VirtualClock:
    """Sleeping advances the clock instead of waiting: the docs keep their 5 requests/s, in no time."""

    def __init__(self) -> None:
        self._now = 0.0
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._now += max(0.0, seconds)


@pytest.fixture
def docs_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    _prepare_working_directory(tmp_path)
    monkeypatch.chdir(tmp_path)
    # Clients the docs build without a clock get a virtual one (what `clock=`/`sleep=` are for).
    clock = _VirtualClock()
    defaults = dict(AutopilotClient.__init__.__kwdefaults__ or {})
    defaults.update(clock=clock.monotonic, sleep=clock.sleep)
    monkeypatch.setattr(AutopilotClient.__init__, "__kwdefaults__", defaults)
    with Sandbox() as sandbox:
        # Something for the docs' loops over smart segments and journeys to find.
        sandbox.add_smart_segment("Engaged last 30 days", ["ada@example.com"])
        sandbox.add_trigger("Welcome journey")
        monkeypatch.setenv("AUTOPILOT_API_KEY", sandbox.api_key)
        monkeypatch.setenv("AUTOPILOT_BASE_URL", sandbox.url)
        yield sandbox


def test_every_markdown_file_is_collected() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in DOC_FILES}
    assert {"README.md", "docs/README.md", "docs/mapping.md", "docs/exporter.md", "docs/sandbox.md"} <= names


def test_the_block_extractor_sees_fences_fragments_and_other_languages(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n```python\nx = 1\n```\n\n```bash\necho no\n```\n\n"
        f"{FRAGMENT_MARK}\n```python\n...  # a fragment\n```\n\n"
        "- a list item:\n\n  ```python\n  y = x + 1\n  ```\n",
        encoding="utf-8",
    )
    blocks = python_blocks(page)
    assert [(b.line, b.fragment, b.source) for b in blocks] == [
        (4, False, "x = 1\n"),
        (13, True, "...  # a fragment\n"),
        (19, False, "y = x + 1\n"),
    ]


def _has_python(path: Path) -> bool:
    return bool(python_blocks(path))


@pytest.mark.parametrize(
    "path", [p for p in DOC_FILES if _has_python(p)], ids=lambda p: p.relative_to(ROOT).as_posix()
)
def test_the_python_blocks_run(path: Path, docs_environment: Sandbox) -> None:
    namespace: dict[str, object] = {"__name__": f"docs_{path.stem}"}
    for block in python_blocks(path):
        # Pad with blank lines so a traceback's line numbers are the Markdown file's own.
        code = compile("\n" * (block.line - 1) + block.source, str(path), "exec")
        if block.fragment:
            continue
        try:
            exec(code, namespace)  # noqa: S102 (running the docs is the point)
        except Exception as exc:
            pytest.fail(f"{block.where}: the block fails as written: {type(exc).__name__}: {exc}")
    assert os.environ["AUTOPILOT_BASE_URL"] == docs_environment.url  # the docs did not repoint it


def documented_error_lines() -> list[tuple[str, str, str]]:
    """(where, command, error line) for every documented `$ autopilot-segments ...` followed by its error."""
    found = []
    for path in DOC_FILES:
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, (line, following) in enumerate(itertools.pairwise(lines), 1):
            if (
                line.startswith("$ autopilot-segments ")
                and not line.endswith("\\")
                and following.startswith("autopilot-segments")
                and ": error: " in following
            ):
                found.append((f"{path.relative_to(ROOT)}:{number}", line[2:], following))
    return found


def test_the_documented_error_lines_are_the_command_s_own() -> None:
    documented = documented_error_lines()
    assert len(documented) >= 3  # docs/cli.md shows several
    env = {k: v for k, v in os.environ.items() if k not in ("AUTOPILOT_API_KEY", "AUTOPILOT_BASE_URL")}
    for where, command, expected in documented:
        arguments = shlex.split(command)[1:]
        result = subprocess.run(
            [sys.executable, "-m", "autopilot_segments", *arguments],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        actual = result.stderr.strip()
        # "..." in the docs stands for text left out.
        pattern = ".*".join(re.escape(part) for part in expected.split("..."))
        assert re.fullmatch(pattern, actual), (
            f"{where}: the docs say\n  {expected}\nthe command says\n  {actual}"
        )


_VARIABLE_PARTS = [
    (re.compile(r"http://127\.0\.0\.1:\d+"), "http://127.0.0.1:PORT"),
    (re.compile(r"contactlist_[0-9A-Fa-f-]+(\.\.\.)?"), "contactlist_ID"),
    (re.compile(r"in [\d.]+ s, [\d,.]+ rows/s"), "in T s, R rows/s"),
    (re.compile(r"\S*autopilot-segments-demo-[^/\s]+/"), "TMP/"),
]


def _masked(text: str) -> list[str]:
    """The lines of a demo transcript with what differs from run to run (port, ids, timings) masked."""
    for pattern, replacement in _VARIABLE_PARTS:
        text = pattern.sub(replacement, text)
    return text.strip().splitlines()


def test_the_documented_demo_transcript_is_what_the_demo_prints() -> None:
    # The counts a reader compares with their own first run (rows, rejections by reason, API calls).
    page = (ROOT / "docs" / "getting-started.md").read_text(encoding="utf-8")
    shown = re.search(r"^```console\n\$ autopilot-segments demo\n(.*?)^```", page, re.S | re.M)
    assert shown is not None, "docs/getting-started.md shows no demo transcript"
    env = {k: v for k, v in os.environ.items() if k not in ("AUTOPILOT_API_KEY", "AUTOPILOT_BASE_URL")}
    result = subprocess.run(
        [sys.executable, "-m", "autopilot_segments", "demo"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert _masked(result.stdout) == _masked(shown.group(1))
