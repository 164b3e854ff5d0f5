"""Fault soak: every sandbox ambiguity mode at high fault rates, the report checked against the sandbox.

    python benchmarks/soak_faults.py [--rows 600] [--fault-rate 0.35] [--seed 0] [--max-seconds 600]

For every combination of the sandbox's ambiguity switches (`bulk_invalid` reject/drop, `bulk_list`
honoured/ignored, `duplicate_list` conflict/create, `bulk_answer` map/ids_only, `delete_status`
200/204), without and with a state file, on a new list, an existing list (holding contacts that are not
in the segment) or a list titled in another letter case, the soak runs three exports of one segment:

1. the segment, with faults: of all requests, 20% get a 5xx, 10% a 429, 2.5% a dropped connection
   before and 2.5% after the request was applied (`--fault-rate 0.35` in total);
2. the segment changed, with faults: every 9th contact left (`on_leave="remove"` with state), every
   10th changed, 20% new ones; every 30th contact was deleted in Autopilot before (through the API, with
   the mode's delete status) and is re-created by this run's upsert;
3. the same again without faults: the run that must converge.

Every 17th row carries a custom field value the account refuses (`Tier` is defined as text after the
preflight read, as if another writer raced the export), so Autopilot refuses those contacts, as a 400 or
by dropping them, whatever the mode. After every run the report is checked against the sandbox:

- every row has exactly one outcome (`total == exported + unchanged + rejected`);
- every row not rejected (exported or unchanged) is in Autopilot with this run's values and on the list;
- nothing is on the list but contacts of the segment (any run) and the list's earlier members; with
  `on_leave="remove"`, no leaver is left on it beyond the removals reported failed;
- a refused contact (the 17th rows) is never stored;
- after run 3: every valid row is exported or unchanged, except rows refused with a batch-wide message
  (counted as "collateral": two refused contacts at the same position of both halves of a batch).

Clocks are fake (a 429's pause and the backoff do not really wait): the soak checks correctness, not
pacing. Prints one line per mode and the totals; exits 1 if any check failed.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import attrs

from autopilot_segments import (
    APIConnectionError,
    APIError,
    AutopilotClient,
    CustomField,
    Exporter,
    ExportReport,
    FieldMapping,
)
from autopilot_segments.sandbox import FaultPlan, Sandbox

SEGMENT = "Soak segment"
# 20% 5xx, 10% 429, 2.5% dropped before, 2.5% dropped after, of all requests at rate 0.35.
FAULT_KINDS = ("500",) * 3 + ("502",) * 2 + ("503",) * 3 + ("429",) * 4 + ("drop_before", "drop_after")
OFFENDER_EVERY = 17
PREEXISTING = ("earlier1@soak.example", "earlier2@soak.example", "earlier3@soak.example")


@attrs.frozen(kw_only=True)
class Mode:
    bulk_invalid: str
    bulk_list: str
    duplicate_list: str
    bulk_answer: str
    delete_status: int
    stateful: bool
    list_setup: str  # "new", "existing", "case_variant"

    @property
    def label(self) -> str:
        return (
            f"{self.bulk_invalid:6} {self.bulk_list:8} {self.duplicate_list:8} {self.bulk_answer:8} "
            f"{self.delete_status} {'state' if self.stateful else 'none ':5} {self.list_setup:12}"
        )


def all_modes() -> list[Mode]:
    """Every combination of the switches, with and without state; the list setup cycles."""
    setups = itertools.cycle(("new", "existing", "case_variant"))
    return [
        Mode(
            bulk_invalid=invalid,
            bulk_list=bulk_list,
            duplicate_list=duplicate,
            bulk_answer=answer,
            delete_status=status,
            stateful=stateful,
            list_setup=next(setups),
        )
        for invalid, bulk_list, duplicate, answer, status, stateful in itertools.product(
            ("reject", "drop"),
            ("honoured", "ignored"),
            ("conflict", "create"),
            ("map", "ids_only"),
            (200, 204),
            (False, True),
        )
    ]


def covering_modes() -> list[Mode]:
    """Six modes that between them play every value of every switch, with and without state."""
    table = [
        ("reject", "honoured", "conflict", "map", 200, False, "new"),
        ("drop", "ignored", "create", "ids_only", 204, True, "existing"),
        ("reject", "ignored", "create", "ids_only", 200, True, "case_variant"),
        ("drop", "honoured", "conflict", "map", 204, False, "case_variant"),
        ("reject", "honoured", "conflict", "ids_only", 204, True, "new"),
        ("drop", "ignored", "conflict", "map", 200, True, "existing"),
    ]
    return [
        Mode(
            bulk_invalid=invalid,
            bulk_list=bulk_list,
            duplicate_list=duplicate,
            bulk_answer=answer,
            delete_status=status,
            stateful=stateful,
            list_setup=setup,
        )
        for invalid, bulk_list, duplicate, answer, status, stateful, setup in table
    ]


class _FakeTime:
    """Shared fake monotonic clock: sleeping advances it; nothing really waits."""

    def __init__(self) -> None:
        self._now = 1000.0
        self._lock = threading.Lock()

    def clock(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._now += max(0.0, seconds)


class _RacedClient(AutopilotClient):
    """The account defines Tier as text, but the preflight's read never sees it (another writer races)."""

    def custom_fields(self) -> Any:
        return [d for d in super().custom_fields() if d.name != "Tier"]


def _mapping() -> FieldMapping:
    return FieldMapping(
        email="Email",
        fields={"FirstName": "first_name"},
        custom=[CustomField("Tier", "integer", source="tier")],
    )


def _email(i: int) -> str:
    return f"user{i}@soak.example"


def _row(i: int, version: int = 0) -> dict[str, Any]:
    return {
        "Email": _email(i),
        "first_name": f"First{i}v{version}",
        "tier": i if i % OFFENDER_EVERY == 0 else None,
    }


def _sources(rows: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    first = [_row(i) for i in range(rows)]
    second = [_row(i, 1 if i % 10 == 0 else 0) for i in range(rows) if i % 9 != 0]
    second += [_row(i) for i in range(rows, rows + rows // 5)]
    return first, second


@attrs.define
class Figures:
    runs: int = 0
    rows: int = 0
    exported: int = 0
    unchanged: int = 0
    rejected_by_api: int = 0
    failed: int = 0
    removed: int = 0
    aborted: int = 0
    collateral: int = 0
    api_calls: int = 0
    retries: int = 0
    rate_limited: int = 0
    faults: int = 0
    problems: list[str] = attrs.Factory(list)

    def add(self, other: Figures) -> None:
        for field in attrs.fields(Figures):
            if field.name == "problems":
                self.problems.extend(other.problems)
            else:
                setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))


def _check(
    sb: Sandbox,
    report: ExportReport,
    source: list[dict[str, Any]],
    *,
    allowed: set[str],
    leavers: set[str],
    final: bool,
    figures: Figures,
    run: int,
) -> set[str]:
    """Check one run's report against the sandbox; returns the emails reported exported or unchanged."""
    problems = figures.problems

    def problem(text: str) -> None:
        problems.append(f"run {run}: {text}")

    if report.total_rows != len(source) or report.exported + report.unchanged + len(report.rejected) != len(
        source
    ):
        problem(f"accounting: {report.total_rows} rows vs {report.exported}+{report.unchanged}+rejected")
    rejected = {r.row: r for r in report.rejected}
    if len(rejected) != len(report.rejected):
        problem("a row has two outcomes")
    contacts = sb.contacts
    members = sb.list_members(report.list_id) if report.list_id is not None else set()
    for number, row in enumerate(source, start=1):
        email = row["Email"]
        rejection = rejected.get(number)
        offender = row["tier"] is not None
        if rejection is None:
            stored = contacts.get(email)
            if stored is None or stored.get("FirstName") != row["first_name"]:
                problem(f"{email} reported exported/unchanged but not in Autopilot with its values")
            if email not in members:
                problem(f"{email} reported exported/unchanged but not on the list")
            if offender:
                problem(f"{email} carries a refused value yet was reported exported")
        elif offender:
            if email in contacts:
                problem(f"{email} was refused yet is stored")
        elif final:
            if rejection.reason == "rejected_by_api" and "whole batch" in rejection.message:
                figures.collateral += 1
            else:
                problem(f"{email} valid but {rejection.reason} in the clean run: {rejection.message}")
    strays = members - allowed
    if strays:
        problem(f"{len(strays)} list members that are no contacts of the segment, e.g. {sorted(strays)[0]}")
    left = members & leavers
    if len(left) > report.removal_failed:
        problem(f"{len(left)} leavers still on the list, {report.removal_failed} removals reported failed")
    figures.runs += 1
    figures.rows += report.total_rows
    figures.exported += report.exported
    figures.unchanged += report.unchanged
    figures.rejected_by_api += report.counts.get("rejected_by_api", 0)
    figures.failed += report.counts.get("failed", 0)
    figures.removed += report.removed
    figures.api_calls += report.api_calls
    figures.retries += report.retries
    figures.rate_limited += report.rate_limited
    return {row["Email"] for number, row in enumerate(source, start=1) if number not in rejected}


def run_mode(mode: Mode, *, rows: int, fault_rate: float, seed: int, workdir: Path) -> Figures:
    """Three exports of one segment in `mode`; the figures, and the problems found (none if correct)."""
    figures = Figures()
    time_ = _FakeTime()
    first, second = _sources(rows)
    with Sandbox(
        bulk_invalid=mode.bulk_invalid,  # type: ignore[arg-type]
        bulk_list=mode.bulk_list,  # type: ignore[arg-type]
        duplicate_list=mode.duplicate_list,  # type: ignore[arg-type]
        bulk_answer=mode.bulk_answer,  # type: ignore[arg-type]
        delete_status=mode.delete_status,  # type: ignore[arg-type]
        record_bodies=False,
    ) as sb:
        sb.add_custom_field("Tier", "string")
        allowed = {row["Email"] for row in first + second}
        if mode.list_setup != "new":
            title = SEGMENT if mode.list_setup == "existing" else SEGMENT.upper()
            list_id = sb.create_list(title)
            sb.add_contacts([{"Email": e, "_autopilot_list": list_id} for e in PREEXISTING])
            allowed |= set(PREEXISTING)
        client = _RacedClient(
            sb.api_key,
            base_url=sb.url,
            requests_per_second=10_000.0,
            max_retries=5,
            backoff_factor=0.1,
            clock=time_.clock,
            sleep=time_.sleep,
        )
        state = workdir / f"soak-{seed}.db" if mode.stateful else None
        plan = FaultPlan(rate=fault_rate, kinds=FAULT_KINDS, seed=seed)
        runs: list[tuple[list[dict[str, Any]], bool]] = [(first, True), (second, True), (second, False)]
        # Contacts the state knows as exported: leavers among them must be taken off the list. (A
        # contact whose upsert was applied but never confirmed is unknown to the state: it stays.)
        known: set[str] = set()
        for run, (source, faulty) in enumerate(runs, start=1):
            if run == 2:
                _delete_some(sb, client, first)
            leavers = {r["Email"] for r in first} - {r["Email"] for r in second} if run > 1 else set()
            sb.configure(faults=plan if faulty else None)
            exporter = Exporter(
                client, _mapping(), state=state, on_leave="remove" if state is not None else "keep"
            )
            before = len(sb.requests)
            try:
                report = exporter.export(source, segment=SEGMENT)
            except (APIError, APIConnectionError) as error:
                # Only finding or creating the list may fail a whole export: then nothing is written.
                figures.aborted += 1
                if any(r.path == "/contacts" for r in sb.requests[before:]):
                    figures.problems.append(f"run {run}: aborted ({error}) after bulk calls")
                if not faulty:
                    figures.problems.append(f"run {run}: the clean run failed: {error}")
                continue
            finally:
                figures.faults += sum(1 for r in sb.requests[before:] if r.fault is not None)
            reported = _check(
                sb,
                report,
                source,
                allowed=allowed,
                leavers=leavers & known if mode.stateful else set(),  # a stateless export keeps leavers
                final=not faulty,
                figures=figures,
                run=run,
            )
            known |= reported
    return figures


def _delete_some(sb: Sandbox, client: AutopilotClient, first: list[dict[str, Any]]) -> None:
    """Delete every 30th contact in Autopilot (it changes in run 2, so it is sent and re-created)."""
    sb.configure(faults=None)
    for row in first[::30]:
        if row["Email"] in sb.contacts:
            client.delete_contact(row["Email"])


def soak(modes: list[Mode], *, rows: int, fault_rate: float, seed: int, max_seconds: float) -> Figures:
    total = Figures()
    started = time.monotonic()
    print(f"{'mode':58} {'rows':>6} {'exp':>6} {'unch':>6} {'api':>5} {'fail':>5} {'calls':>6} "
          f"{'faults':>6} {'429s':>5} {'s':>5}  result")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for number, mode in enumerate(modes):
            if time.monotonic() - started > max_seconds:
                print(f"stopped after {number} of {len(modes)} modes: --max-seconds {max_seconds:g} reached")
                break
            began = time.monotonic()
            figures = run_mode(mode, rows=rows, fault_rate=fault_rate, seed=seed + number, workdir=Path(tmp))
            verdict = (
                "ok" if not figures.problems else f"FAIL ({len(figures.problems)}): {figures.problems[0]}"
            )
            print(
                f"{mode.label:58} {figures.rows:6} {figures.exported:6} {figures.unchanged:6} "
                f"{figures.rejected_by_api:5} {figures.failed:5} {figures.api_calls:6} {figures.faults:6} "
                f"{figures.rate_limited:5} {time.monotonic() - began:5.1f}  {verdict}",
                flush=True,
            )
            total.add(figures)
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=600, help="rows of the segment's first run")
    parser.add_argument("--fault-rate", type=float, default=0.35, help="share of requests that fail")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=600.0, help="stop starting new modes after")
    parser.add_argument("--covering", action="store_true", help="only a few modes covering every switch")
    args = parser.parse_args(argv)
    modes = covering_modes() if args.covering else all_modes()
    began = time.monotonic()
    total = soak(
        modes, rows=args.rows, fault_rate=args.fault_rate, seed=args.seed, max_seconds=args.max_seconds
    )
    elapsed = time.monotonic() - began
    print()
    print(f"modes: {(total.runs + total.aborted) // 3} x 3 exports in {elapsed:.1f} s; rows {total.rows:,}")
    print(
        f"exported {total.exported:,}, unchanged {total.unchanged:,}, "
        f"rejected_by_api {total.rejected_by_api:,}, "
        f"failed {total.failed:,}, removed {total.removed:,}, exports aborted {total.aborted}"
    )
    print(
        f"API calls {total.api_calls:,}, faults played {total.faults:,}, retries {total.retries:,}, "
        f"429s {total.rate_limited:,}, collateral refusals {total.collateral}"
    )
    print(f"problems: {len(total.problems)} (rows reported exported but missing, strays, double outcomes)")
    for line in total.problems[:20]:
        print("  " + line)
    return 1 if total.problems else 0


if __name__ == "__main__":
    sys.exit(main())
