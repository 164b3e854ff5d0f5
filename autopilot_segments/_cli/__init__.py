"""The `autopilot-segments` command (also `python -m autopilot_segments`).

Commands: `ping`, `lists`, `segments`, `fields` (read the account), `export` (a segment file into a list),
`demo` (the bundled sample into a local sandbox) and `sandbox` (serve the local sandbox).

The API key comes from the `AUTOPILOT_API_KEY` environment variable or from `--api-key-file PATH`; there is
deliberately no flag that takes the key itself (it would land in shell history and `ps` output). Every line
this module writes, logs included, passes through a redactor that knows the key.
"""

from .exit_codes import ExitCode
from .main import main
from .parser import build_parser

__all__ = ["ExitCode", "build_parser", "main"]
