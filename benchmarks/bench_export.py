"""Export throughput against a rate-limited, 0.25 s-latency sandbox, side by side with naive loops.

    .venv/bin/python benchmarks/bench_export.py [--rates 5 20] [--contacts 10000] [--memory-rows 1000000]

For each rate (requests/second, enforced by the sandbox and by the client's limiter) this runs, in one
process and against one sandbox per run:

- `Exporter` with its default concurrency (auto: enough in flight for the rate at 0.5 s latency);
- the same with the windowed limiter of earlier versions (`_old_limiter.py`: `rate` starts per 1.02 s
  window, sent as bursts) in place of the even pacer, as the pacing baseline;
- `Exporter` with `concurrency=4` (the fixed default of earlier designs), to show what in-flight means;
- a naive sequential bulk loop: `upsert_contacts` of 100 at a time, one after the other;
- a naive loop of single `POST /contact` calls, capped to a few dozen contacts and extrapolated.

The sandbox runs in a child process (`_remote_sandbox.py`), so that the arrival times it records are not
delayed by this process's threads; `--in-process` keeps it here.

The floor is 100 contacts x rate per second (every request a full bulk upsert, nothing else). Figures:
contacts/s end to end (list lookup, create and membership check included) and in steady state (rate of
bulk request starts as the sandbox saw them x 100), each as a fraction of the floor, plus the 429s seen
and "max/s": the most request starts (of any kind) the sandbox saw in any one second of its clock (a
sliding window [t, t + 1 s), what a strict sliding-window rate limit counts); it must never exceed the
rate. "sent/s" is the same count over the instants the client's transport reported each request's bytes
written (Exporter runs only): the difference between the two is the server's own scheduling delay.

Then the memory of `Exporter.plan()` (a dry run: every row mapped and validated, no API call) over
`--memory-rows` lazily generated rows: the peak RSS of a fresh process before and after the plan, with
the default cap (900,000 `over_limit` rows to record) and without.
"""

from __future__ import annotations

import argparse
import math
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from autopilot_segments import AutopilotClient, CustomField, Exporter, FieldMapping
from autopilot_segments._synthetic import generate_rows
from autopilot_segments.sandbox import Sandbox
from autopilot_segments.sandbox._recording import busiest_window

from _old_limiter import WindowedRateLimiter  # isort: skip (sibling script modules)
from _remote_sandbox import RemoteSandbox  # isort: skip

LATENCY = 0.25
RUNS = {
    "auto": "Exporter (auto concurrency)",
    "windowed": "Exporter, old windowed limiter",
    "four": "Exporter (concurrency=4)",
    "bulk": "naive sequential bulk loop",
    "single": "naive single POST /contact",
}


def mapping() -> FieldMapping:
    return FieldMapping(
        email="email",
        fields={"FirstName": "first_name", "LastName": "last_name", "Company": "company"},
        custom=[CustomField("Loyalty Points", "integer", source="loyalty_points")],
    )


def rows(n: int, seed: int = 1) -> Iterator[dict[str, Any]]:
    return generate_rows(n, seed=seed)


def contacts(n: int, seed: int = 1) -> list[dict[str, Any]]:
    """The mapped payloads, for the naive loops (mapping cost is not what they are compared on)."""
    return [item.payload for item in mapping().map_rows(rows(n, seed)) if hasattr(item, "payload")]


IN_PROCESS = False  # --in-process: the sandbox shares this interpreter (its arrival times get noisier)


def server(rate: float) -> Any:
    """A sandbox playing Autopilot at `rate` with LATENCY, in a child process unless --in-process."""
    if IN_PROCESS:
        return Sandbox(rate_limit=rate, latency=LATENCY, record_bodies=False)
    return RemoteSandbox(rate_limit=rate, latency=LATENCY, record_bodies=False)


def client_for(sb: Any, rate: float) -> AutopilotClient:
    return AutopilotClient(sb.api_key, base_url=sb.url, requests_per_second=rate)


def steady_state(sb: Any, path: str, per_request: int) -> float:
    starts = sorted(r.at for r in sb.requests if r.method == "POST" and r.path == path and r.status == 200)
    if len(starts) < 2:
        return float("nan")
    return (len(starts) - 1) * per_request / (starts[-1] - starts[0])


def too_many(sb: Any) -> int:
    return sum(1 for r in sb.requests if r.status == 429)


def use_windowed_limiter(client: AutopilotClient, rate: float) -> None:
    """Swap the client's pacer for the old windowed limiter (first calls and retries alike)."""
    old = WindowedRateLimiter(rate)
    client._limiter = old  # type: ignore[assignment]
    client._transport._replaying.max_retries.hooks.limiter = old  # type: ignore[attr-defined]


def record_departures(client: AutopilotClient) -> list[float]:
    """The instants (this process's monotonic clock) at which the transport reported requests sent."""
    departures: list[float] = []
    limiter = client._transport._hooks.limiter  # the one the transport reports to (old or new)
    report = limiter.note_started

    def note_started() -> None:
        departures.append(time.monotonic())
        report()

    limiter.note_started = note_started  # type: ignore[method-assign]
    return departures


def run_exporter(rate: float, n: int, concurrency: int | None, *, windowed: bool = False) -> dict[str, Any]:
    with server(rate) as sb:
        client = client_for(sb, rate)
        if windowed:
            use_windowed_limiter(client, rate)
        departures = record_departures(client)
        exporter = Exporter(client, mapping(), concurrency=concurrency)
        started = time.perf_counter()
        report = exporter.export(rows(n), segment="Benchmark")
        elapsed = time.perf_counter() - started
        assert report.list_id is not None
        assert len(sb.list_members(report.list_id)) == report.exported
        return {
            "contacts": report.exported,
            "end_to_end": report.exported / elapsed,
            "steady": steady_state(sb, "/contacts", 100),
            "calls": report.api_calls,
            "429": too_many(sb),
            "in_flight": exporter.concurrency,
            "max_per_s": sb.busiest_second(),
            "sent_per_s": busiest_window(departures),
            "note": "",
        }


def run_naive_bulk(rate: float, n: int) -> dict[str, Any]:
    payloads = contacts(n)
    with server(rate) as sb:
        client = client_for(sb, rate)
        list_id = client.create_list("Benchmark")
        started = time.perf_counter()
        for i in range(0, len(payloads), 100):
            client.upsert_contacts([{**p, "_autopilot_list": list_id} for p in payloads[i : i + 100]])
        elapsed = time.perf_counter() - started
        return {
            "contacts": len(payloads),
            "end_to_end": len(payloads) / elapsed,
            "steady": steady_state(sb, "/contacts", 100),
            "calls": client.stats.requests,
            "429": too_many(sb),
            "in_flight": 1,
            "max_per_s": sb.busiest_second(),
            "sent_per_s": 0,
            "note": "",
        }


def run_naive_single(rate: float, n: int) -> dict[str, Any]:
    payloads = contacts(n)
    with server(rate) as sb:
        client = client_for(sb, rate)
        list_id = client.create_list("Benchmark")
        started = time.perf_counter()
        for payload in payloads:
            client.upsert_contact({**payload, "_autopilot_list": list_id})
        elapsed = time.perf_counter() - started
        return {
            "contacts": len(payloads),
            "end_to_end": len(payloads) / elapsed,
            "steady": steady_state(sb, "/contact", 1),
            "calls": client.stats.requests,
            "429": too_many(sb),
            "in_flight": 1,
            "max_per_s": sb.busiest_second(),
            "sent_per_s": 0,
            "note": "capped",
        }


def run_named(key: str, rate: float, n: int, args: argparse.Namespace) -> dict[str, Any]:
    if key == "auto":
        return run_exporter(rate, n, None)
    if key == "windowed":
        return run_exporter(rate, n, None, windowed=True)
    if key == "four":
        return run_exporter(rate, n, 4)
    if key == "bulk":
        return run_naive_bulk(rate, args.naive_bulk)
    return run_naive_single(rate, args.naive_single)


def peak_rss_mib() -> float:
    """This process's peak RSS. VmHWM is reset by exec; ru_maxrss (the fallback) is not on Linux."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_child(n: int, cap: int | None) -> None:
    """Run plan() over n generated rows in this (fresh) process and print RSS before/after and time."""
    with Sandbox() as sb:  # plan() makes no call; the client only supplies the rate
        exporter = Exporter(client_for(sb, 5.0), mapping(), max_profiles=cap)
        before = peak_rss_mib()
        started = time.perf_counter()
        report = exporter.plan(rows(n, seed=7), segment="Memory")
        elapsed = time.perf_counter() - started
        after = peak_rss_mib()
        assert report.total_rows == n
        assert sb.requests == []
    print(f"{before:.1f} {after:.1f} {elapsed:.2f} {report.exported}")


def memory_of_plan(n: int, cap: int | None) -> tuple[float, float, float, int]:
    """(max RSS MiB before and after plan(), seconds, rows that would be exported), in a fresh process."""
    command = [sys.executable, __file__, "--memory-child", str(n), "--memory-cap", str(cap or 0)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout.split()
    return float(out[0]), float(out[1]), float(out[2]), int(out[3])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", type=float, nargs="+", default=[5.0, 20.0])
    parser.add_argument("--contacts", type=int, default=20_000, help="contacts per Exporter run at 5 r/s")
    parser.add_argument("--naive-bulk", type=int, default=2_000, help="contacts for the naive bulk loop")
    parser.add_argument("--naive-single", type=int, default=30, help="contacts for the single-call loop")
    parser.add_argument("--memory-rows", type=int, default=1_000_000)
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--memory-cap", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--only-memory", action="store_true", help="skip the throughput runs")
    parser.add_argument("--skip-memory", action="store_true", help="skip the memory runs")
    parser.add_argument(
        "--in-process", action="store_true", help="run the sandbox in this process (default: a child process)"
    )
    parser.add_argument(
        "--runs", nargs="+", default=list(RUNS), choices=list(RUNS), help="which throughput runs to make"
    )
    args = parser.parse_args()
    global IN_PROCESS
    IN_PROCESS = args.in_process
    if args.memory_child is not None:
        memory_child(args.memory_child, args.memory_cap or None)
        return

    print(f"Python {platform.python_version()} on {platform.machine()}, sandbox latency {LATENCY} s/request")
    header = (
        f"{'rate':>5} {'run':<30} {'contacts':>8} {'in flight':>9} {'calls':>6} {'429s':>5} {'max/s':>5} "
        f"{'sent/s':>6} {'contacts/s':>10} {'of floor':>8} {'steady/s':>9} {'of floor':>8}"
    )
    print(header)
    print("-" * len(header))
    for rate in [] if args.only_memory else args.rates:
        floor = 100 * rate
        # Same duration at every rate: 20,000 contacts at 5 r/s is a 40 s floor.
        n = int(args.contacts * rate / 5.0)
        runs = [(RUNS[key], run_named(key, rate, n, args)) for key in args.runs]
        for name, r in runs:
            steady = r["steady"]
            steady_text = "-" if math.isnan(steady) else f"{steady:9.1f}"
            steady_floor = "-" if math.isnan(steady) else f"{steady / floor:8.1%}"
            print(
                f"{rate:5g} {name:<30} {r['contacts']:8,} {r['in_flight']:9} {r['calls']:6} {r['429']:5} "
                f"{r['max_per_s']:5} {r['sent_per_s'] or '-':>6} "
                f"{r['end_to_end']:10.1f} {r['end_to_end'] / floor:8.1%} {steady_text:>9} {steady_floor:>8}"
            )
        if "single" in args.runs:
            single = runs[-1][1]
            print(
                f"      (single-call loop capped at {single['contacts']} contacts; extrapolated, "
                f"{args.contacts:,} contacts would take {args.contacts / single['end_to_end'] / 60:,.0f} min)"
            )
    print()
    for cap in () if args.skip_memory else (None, 100_000):
        before, after, seconds, exported = memory_of_plan(args.memory_rows, cap)
        what = (
            "no cap" if cap is None else f"max_profiles={cap:,}: {args.memory_rows - exported:,} over_limit"
        )
        print(
            f"plan() over {args.memory_rows:,} lazily generated rows ({what}): process peak RSS "
            f"{before:.0f} MiB before, {after:.0f} MiB after; {seconds:.1f} s "
            f"({args.memory_rows / seconds:,.0f} rows/s, row generation included)"
        )


if __name__ == "__main__":
    main()
