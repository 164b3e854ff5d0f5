"""`autopilot-segments completion SHELL`: scripts generated from the parser, checked by the shells."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autopilot_segments._cli import build_parser

PARSER = build_parser()
COMMANDS = [
    name
    for action in PARSER._actions
    if isinstance(action, argparse._SubParsersAction)
    for name in action.choices
]


def script(shell: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "autopilot_segments", "completion", shell],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("completion") / "autopilot-segments.bash"
    path.write_text(script("bash"), encoding="utf-8")
    return path


def complete_in_bash(script_path: Path, *words: str) -> list[str]:
    """What bash offers for the last of `words` (the command line typed so far), by the real function."""
    quoted = " ".join(f"'{word}'" for word in ("autopilot-segments", *words))
    program = (
        f"source '{script_path}'\n"
        f"COMP_WORDS=({quoted}); COMP_CWORD={len(words)}\n"
        "_autopilot_segments\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", program],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line]


def test_the_bash_script_is_valid_bash(bash_script: Path) -> None:
    result = subprocess.run(["bash", "-n", str(bash_script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_bash_completes_commands_flags_choices_and_files(bash_script: Path, tmp_path: Path) -> None:
    assert complete_in_bash(bash_script, "") == [*COMMANDS, "-h", "--help", "--version"]
    assert complete_in_bash(bash_script, "ex") == ["export"]
    assert set(complete_in_bash(bash_script, "export", "--max-")) == {
        "--max-retries",
        "--max-removal-fraction",
        "--max-profiles",
    }
    assert complete_in_bash(bash_script, "export", "--on-leave", "") == ["keep", "remove"]
    assert complete_in_bash(bash_script, "completion", "") == ["bash", "zsh", "fish"]
    assert complete_in_bash(bash_script, "export", "--segment", "") == []  # a free value
    (tmp_path / "vip.csv").write_text("email\n", encoding="utf-8")
    assert complete_in_bash(bash_script, "export", str(tmp_path / "vi")) == [str(tmp_path / "vip.csv")]
    assert complete_in_bash(bash_script, "export", "--mapping", str(tmp_path / "v")) == [
        str(tmp_path / "vip.csv")
    ]


def test_every_command_and_flag_of_the_parser_is_in_every_script() -> None:
    scripts = {shell: script(shell) for shell in ("bash", "zsh", "fish")}
    for action in PARSER._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for name, sub in action.choices.items():
            for text in scripts.values():
                assert name in text
            for option in sub._actions:
                for flag in option.option_strings:
                    assert flag in scripts["bash"], (name, flag)
                    assert flag in scripts["zsh"], (name, flag)
                    fish_flag = f"-l {flag[2:]}" if flag.startswith("--") else f"-s {flag[1:]}"
                    assert fish_flag in scripts["fish"], (name, flag)


def test_the_zsh_and_fish_scripts_are_plausible() -> None:
    zsh = script("zsh")
    assert zsh.startswith("#compdef autopilot-segments\n")
    assert zsh.rstrip().endswith('_autopilot_segments "$@"')
    fish = script("fish")
    for text in (zsh, fish):
        for line in text.splitlines():
            if not line.lstrip().startswith("#"):
                assert line.count("'") % 2 == 0, line  # every quote closed on its line
    for line in fish.splitlines():
        assert line.startswith(("#", "complete -c autopilot-segments ")), line


@pytest.mark.parametrize(
    "shell",
    [
        pytest.param(shell, marks=pytest.mark.skipif(shutil.which(shell) is None, reason=f"no {shell} here"))
        for shell in ("zsh", "fish")
    ],
)
def test_the_shell_itself_accepts_its_script(shell: str, tmp_path: Path) -> None:
    path = tmp_path / f"completion.{shell}"
    path.write_text(script(shell), encoding="utf-8")
    result = subprocess.run([shell, "-n", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_an_unknown_shell_is_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "autopilot_segments", "completion", "tcsh"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "unknown shell 'tcsh': choose from bash, zsh, fish" in result.stderr


@pytest.mark.skipif(shutil.which("fish") is None, reason="no fish here")
def test_fish_completes_commands_flags_and_choices(tmp_path: Path) -> None:
    path = tmp_path / "autopilot-segments.fish"
    path.write_text(script("fish"), encoding="utf-8")

    def complete(line: str) -> list[str]:
        result = subprocess.run(
            ["fish", "--no-config", "-c", f"source {path}; complete -C '{line}'"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return [entry.split("\t")[0] for entry in result.stdout.splitlines()]

    assert complete("autopilot-segments ex") == ["export"]
    assert complete("autopilot-segments export --on-leave ") == ["keep", "remove"]
    assert complete("autopilot-segments export --max-p") == ["--max-profiles"]
    assert sorted(complete("autopilot-segments completion ")) == ["bash", "fish", "zsh"]
