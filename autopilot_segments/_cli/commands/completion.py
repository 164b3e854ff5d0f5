"""`completion`: print a shell completion script for bash, zsh or fish."""

from __future__ import annotations

import argparse

from ..completion import SHELLS, completion_script
from ..console import _Console


def _add_completion_arguments(sub: argparse.ArgumentParser) -> None:
    sub.set_defaults(handler=_cmd_completion)
    sub.add_argument("shell", choices=SHELLS, help="the shell to complete in")


def _cmd_completion(args: argparse.Namespace, console: _Console) -> int:
    from ..parser import build_parser

    console.stdout.write(completion_script(build_parser(), args.shell))
    console.stdout.flush()
    return 0
