"""An export run in its own process, for the crash tests in test_resume.py (which SIGKILL it).

    python tests/_resume_worker.py URL STATE START STOP [--changed A B] [--on-leave keep|remove] [--full]

Exports rows START..STOP-1 (see `segment_rows`; rows A..B-1 with a changed tier) to the sandbox at URL
with the state file STATE. The sandbox key comes from the environment (AUTOPILOT_SANDBOX_KEY), never
from the command line.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from autopilot_segments import AutopilotClient, CustomField, Exporter, FieldMapping

SEGMENT = "Crash test"
BATCH_SIZE = 10
CONCURRENCY = 2


def mapping() -> FieldMapping:
    return FieldMapping(
        email="Email",
        fields={"FirstName": "first_name"},
        custom=[CustomField("Tier", "integer", source="tier")],
    )


def segment_rows(start: int, stop: int, changed: tuple[int, int] = (0, 0)) -> list[dict[str, Any]]:
    """Rows `start`..`stop`-1; those in the `changed` range have tier 2 instead of 1."""
    return [
        {
            "Email": f"Crash{i}@Example.com",
            "first_name": f"First{i}",
            "tier": 2 if changed[0] <= i < changed[1] else 1,
        }
        for i in range(start, stop)
    ]


def email(i: int) -> str:
    return f"crash{i}@example.com"


def make_exporter(url: str, key: str, state: str, on_leave: str) -> Exporter:
    client = AutopilotClient(
        key, base_url=url, requests_per_second=10_000.0, backoff_factor=0.0, max_retries=2
    )
    return Exporter(
        client,
        mapping(),
        state=state,
        on_leave=on_leave,  # type: ignore[arg-type]
        batch_size=BATCH_SIZE,
        concurrency=CONCURRENCY,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("state")
    parser.add_argument("start", type=int)
    parser.add_argument("stop", type=int)
    parser.add_argument("--changed", type=int, nargs=2, default=(0, 0))
    parser.add_argument("--on-leave", default="keep")
    parser.add_argument("--full", action="store_true")
    args = parser.parse_args()
    exporter = make_exporter(args.url, os.environ["AUTOPILOT_SANDBOX_KEY"], args.state, args.on_leave)
    exporter.export(segment_rows(args.start, args.stop, tuple(args.changed)), segment=SEGMENT, full=args.full)


if __name__ == "__main__":
    main()
