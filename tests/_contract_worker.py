"""An export run in its own process for the crash tests of both destinations (test_destination_resume.py).

    python tests/_contract_worker.py autopilot|ortto URL STATE START STOP [--on-leave keep|remove]

Exports rows START..STOP-1 of `_contract.rows` to the sandbox at URL with the state file STATE. The
sandbox key comes from the environment (CONTRACT_SANDBOX_KEY), never from the command line.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _contract import KEY_ENV, SEGMENT, make_client, mapping, rows

from autopilot_segments import Exporter

BATCH_SIZE = 10
CONCURRENCY = 2


def make_exporter(name: str, url: str, key: str, state: str, on_leave: str) -> Exporter:
    client = make_client(name, url, key, max_retries=2)
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
    parser.add_argument("destination", choices=("autopilot", "ortto"))
    parser.add_argument("url")
    parser.add_argument("state")
    parser.add_argument("start", type=int)
    parser.add_argument("stop", type=int)
    parser.add_argument("--on-leave", default="keep")
    args = parser.parse_args()
    exporter = make_exporter(args.destination, args.url, os.environ[KEY_ENV], args.state, args.on_leave)
    exporter.export(rows(range(args.start, args.stop)), segment=SEGMENT)


if __name__ == "__main__":
    main()
