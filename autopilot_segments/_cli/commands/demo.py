"""`demo`: the bundled sample segment into an in-process sandbox."""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

from ..connect import _DEMO_RATE, _make_client
from ..console import _Console
from ..exit_codes import ExitCode
from ..options import _positive_float
from ..progress import _progress_mode
from .export import _check_output_path, _export_exit_code, _run_export, _show_report, _write_outputs
from .export_inputs import _count_rows, _load_mapping, _open_rows

DEMO_SEGMENT = "VIP customers"


def _add_demo_arguments(sub: argparse.ArgumentParser) -> None:
    sub.set_defaults(handler=_cmd_demo)
    sub.add_argument(
        "--rate",
        type=_positive_float,
        metavar="R",
        help="pace the sandbox and the client at R requests/s, as Autopilot would (default: unpaced)",
    )
    sub.add_argument(
        "--rejections",
        metavar="FILE",
        help="where to write the rejected rows as CSV (default: a new temporary directory)",
    )
    sub.add_argument("--json", action="store_true", help="print the report as JSON instead of a summary")
    sub.add_argument("--no-progress", action="store_true", help="no progress bar")


def _cmd_demo(args: argparse.Namespace, console: _Console) -> int:
    from ...sandbox import Sandbox
    from ...sources import sample_mapping_path, sample_segment_path

    mapping = _load_mapping(sample_mapping_path())
    sample = sample_segment_path()
    if args.rejections:
        _check_output_path(args.rejections, "--rejections", rejection_file=True)
        rejections_path = args.rejections
    else:
        rejections_path = str(Path(tempfile.mkdtemp(prefix="autopilot-segments-demo-")) / "rejected.csv")
    with contextlib.ExitStack() as stack:
        sb = stack.enter_context(Sandbox(rate_limit=args.rate))
        client = _make_client(
            args, console, api_key=sb.api_key, base_url=sb.url, rate=args.rate or _DEMO_RATE
        )
        stack.callback(client.close)
        rows = stack.enter_context(_open_rows(str(sample), None))
        pacing = f", paced at {args.rate:g} requests/s" if args.rate else ""
        console.note(
            f"Started a local Autopilot sandbox at {sb.url} (no key or network needed{pacing}).\n"
            f"Exporting the bundled sample segment ({sample.name}) into the list {DEMO_SEGMENT!r}...\n"
        )
        report = _run_export(
            console,
            client,
            mapping,
            rows,
            segment=DEMO_SEGMENT,
            display=_progress_mode(console, enabled=not args.no_progress),
            total=_count_rows(sample),
        )
    _show_report(console, report)
    _write_outputs(console, report, report_path=None, rejections_path=rejections_path)
    code = _export_exit_code(report)
    if code == ExitCode.REJECTED_ROWS:
        # What the demo sets out to show: an export that accounts for bad rows instead of failing on them.
        console.note(
            "The rejections are on purpose: the sample holds missing, invalid and duplicate emails and "
            "non-numeric loyalty points,\nto show each bad row ending as a rejection with its reason. "
            "The demo worked, so it exits 0 (a real export with rejected rows exits 1)."
        )
        return ExitCode.OK
    return code
