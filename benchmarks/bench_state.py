"""Export state store: speed of lookup/record and memory of the seen set and spool, against baselines.

Run: .venv/bin/python benchmarks/bench_state.py [--contacts 100000] [--seen 1000000] [--spool 1000000]

Each scenario runs in its own subprocess so that peak RSS figures do not bleed into each other.
Figures (printed side by side):
- first run: hash + lookup + record_acknowledged of N contacts in batches of 100 (one transaction per
  batch), store as shipped (WAL, synchronous=NORMAL) vs. synchronous=FULL vs. a plain dict (lower bound);
- re-run: hash + lookup of the same N contacts (all found unchanged);
- seen set: mark_seen of M email hashes + count_leavers, peak RSS growth vs. a Python set of the hashes;
- spool: append + read back M mapped contacts, peak RSS growth vs. a Python list of them.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BATCH = 100


def _rss_mb() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS; this benchmark reports Linux figures).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _payload(i: int) -> dict[str, Any]:
    return {
        "Email": f"user{i}@example.com",
        "FirstName": f"First{i}",
        "LastName": f"Last{i}",
        "custom": {"integer--Loyalty--Points": i % 1000, "string--Tier": "gold"},
    }


def scenario_store(contacts: int, synchronous: str) -> dict[str, float]:
    from autopilot_segments._state import ExportState, needs_sending

    with tempfile.TemporaryDirectory() as tmp:
        store = ExportState.open(Path(tmp) / "state.sqlite", account="ab" * 32)
        store._connection.execute(f"PRAGMA synchronous = {synchronous}")  # benchmark-only override
        list_id = "contactlist_bench"
        run = store.begin_run("bench", list_id)
        started = time.perf_counter()
        for start in range(0, contacts, BATCH):
            batch = range(start, min(start + BATCH, contacts))
            hashes = [store.hash_email(f"user{i}@example.com") for i in batch]
            payload_hashes = [store.hash_payload(_payload(i)) for i in batch]
            known = store.lookup(list_id, hashes)
            entries = [
                (h, f"person_{i}", p)
                for h, p, i in zip(hashes, payload_hashes, batch, strict=True)
                if needs_sending(run, known.get(h), p)
            ]
            store.record_acknowledged(list_id, entries, run_id=run.run_id)
        first = time.perf_counter() - started
        store.finish_run(run.run_id, outcome="completed", counts={"exported": contacts})

        rerun = store.begin_run("bench", list_id)
        started = time.perf_counter()
        unchanged = 0
        for start in range(0, contacts, BATCH):
            batch = range(start, min(start + BATCH, contacts))
            hashes = [store.hash_email(f"user{i}@example.com") for i in batch]
            known = store.lookup(list_id, hashes)
            for h, i in zip(hashes, batch, strict=True):
                unchanged += not needs_sending(rerun, known.get(h), store.hash_payload(_payload(i)))
        second = time.perf_counter() - started
        assert unchanged == contacts, unchanged
        store.close()  # checkpoints the WAL into the file
        size = sum(p.stat().st_size for p in Path(tmp).iterdir())
    return {"first_s": first, "rerun_s": second, "file_mb": size / 1e6}


def scenario_dict(contacts: int) -> dict[str, float]:
    import hashlib
    import hmac

    key = b"k" * 32
    memory: dict[bytes, tuple[str, bytes]] = {}

    def canonical(i: int) -> bytes:
        return json.dumps(_payload(i), sort_keys=True, separators=(",", ":")).encode()

    started = time.perf_counter()
    for i in range(contacts):
        h = hmac.digest(key, f"user{i}@example.com".encode(), "sha256")[:16]
        memory[h] = (f"person_{i}", hashlib.sha256(canonical(i)).digest()[:16])
    first = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(contacts):
        h = hmac.digest(key, f"user{i}@example.com".encode(), "sha256")[:16]
        _ = memory[h][1] == hashlib.sha256(canonical(i)).digest()[:16]
    return {"first_s": first, "rerun_s": time.perf_counter() - started, "file_mb": 0.0}


def scenario_seen(members: int, seen: int, in_memory: bool) -> dict[str, float]:
    from autopilot_segments._state import ExportState

    with tempfile.TemporaryDirectory() as tmp:
        store = ExportState.open(Path(tmp) / "state.sqlite", account="ab" * 32)
        list_id = "contactlist_bench"
        run = store.begin_run("bench", list_id)
        for start in range(0, members, 1000):
            store.record_acknowledged(
                list_id,
                (
                    (store.hash_email(f"user{i}@example.com"), f"person_{i}", b"p" * 16)
                    for i in range(start, min(start + 1000, members))
                ),
                run_id=run.run_id,
            )
        base = _rss_mb()
        started = time.perf_counter()
        leavers: int
        if in_memory:
            seen_set = {store.hash_email(f"user{i + members // 2}@example.com") for i in range(seen)}
            leavers = sum(
                1 for i in range(members) if store.hash_email(f"user{i}@example.com") not in seen_set
            )
        else:
            for start in range(0, seen, 1000):
                store.mark_seen(
                    run.run_id,
                    (
                        store.hash_email(f"user{i + members // 2}@example.com")
                        for i in range(start, start + 1000)
                    ),
                )
            leavers = store.count_leavers(list_id, run.run_id)
        elapsed = time.perf_counter() - started
        assert leavers == members // 2, leavers
        store.close()
    return {"seconds": elapsed, "rss_growth_mb": _rss_mb() - base}


def scenario_spool(rows: int, in_memory: bool) -> dict[str, float]:
    from autopilot_segments._export.spool import Spool

    base = _rss_mb()
    started = time.perf_counter()
    count = 0
    if in_memory:
        kept = [(i, f"user{i}@example.com", _payload(i)) for i in range(1, rows + 1)]
        for _row, _email, _p in kept:
            count += 1
    else:
        with Spool.create() as spool:
            for i in range(1, rows + 1):
                spool.append(i, f"user{i}@example.com", _payload(i))
            for _item in spool:
                count += 1
    assert count == rows
    return {"seconds": time.perf_counter() - started, "rss_growth_mb": _rss_mb() - base}


def _in_subprocess(name: str, *args: Any) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--scenario", json.dumps([name, *args])],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--seen", type=int, default=1_000_000)
    parser.add_argument("--spool", type=int, default=1_000_000)
    parser.add_argument("--only", choices=["store", "seen", "spool"], help="run one group of figures")
    parser.add_argument("--scenario", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scenario:
        name, *rest = json.loads(args.scenario)
        runner = {
            "store": scenario_store,
            "dict": scenario_dict,
            "seen": scenario_seen,
            "spool": scenario_spool,
        }[name]
        print(json.dumps(runner(*rest)))
        return

    if args.only in (None, "store"):
        _store_figures(args.contacts)
    if args.only in (None, "seen"):
        _seen_figures(args.seen)
    if args.only in (None, "spool"):
        _spool_figures(args.spool)


def _store_figures(n: int) -> None:
    print(f"lookup + record of {n:,} contacts in batches of {BATCH} (one transaction per batch)")
    print(f"{'variant':<34}{'first run':>12}{'re-run':>12}{'file MB':>10}")
    for label, result in (
        ("ExportState (WAL, sync=NORMAL)", _in_subprocess("store", n, "NORMAL")),
        ("baseline: WAL, sync=FULL", _in_subprocess("store", n, "FULL")),
        ("baseline: dict in memory", _in_subprocess("dict", n)),
    ):
        print(
            f"{label:<34}{result['first_s']:>10.2f} s{result['rerun_s']:>10.2f} s{result['file_mb']:>10.1f}"
        )


def _seen_figures(seen: int) -> None:
    members = seen
    print(f"\nseen set of {seen:,} hashes (half of them known) against {members:,} known members,")
    print("then count the leavers (half of the members)")
    print(f"{'variant':<34}{'time':>12}{'peak RSS +':>14}")
    for label, result in (
        ("ExportState.mark_seen (SQLite)", _in_subprocess("seen", members, seen, False)),
        ("baseline: Python set", _in_subprocess("seen", members, seen, True)),
    ):
        print(f"{label:<34}{result['seconds']:>10.2f} s{result['rss_growth_mb']:>11.1f} MB")


def _spool_figures(rows: int) -> None:
    print(f"\nspool {rows:,} mapped contacts and read them back")
    print(f"{'variant':<34}{'time':>12}{'peak RSS +':>14}")
    for label, result in (
        ("Spool (temp file, JSON lines)", _in_subprocess("spool", rows, False)),
        ("baseline: Python list", _in_subprocess("spool", rows, True)),
    ):
        print(f"{label:<34}{result['seconds']:>10.2f} s{result['rss_growth_mb']:>11.1f} MB")


if __name__ == "__main__":
    main()
