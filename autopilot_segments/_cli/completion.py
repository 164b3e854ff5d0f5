"""Shell completion scripts for bash, zsh and fish, generated from the argument parser itself.

No completion library is needed at run time: the scripts are plain shell, written once by
`autopilot-segments completion SHELL` and sourced by the shell. They complete the commands, each command's
options, the values of options with fixed choices, and file names where a file is expected.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator

import attrs

from .console import PROG

SHELLS = ("bash", "zsh", "fish")

# Values named like these are files or folders; other values (a name, a number, a URL) are free text.
_FILE_METAVARS = frozenset({"FILE", "PATH", "SOURCE", "EXPORTS.toml", "DIR"})
_FUNCTION = "_autopilot_segments"


@attrs.frozen
class _Option:
    flags: tuple[str, ...]
    help: str
    takes_value: bool
    choices: tuple[str, ...] = ()
    files: bool = False


@attrs.frozen
class _Command:
    name: str
    help: str
    options: tuple[_Option, ...]
    positional_files: bool
    positional_choices: tuple[str, ...] = ()


def _describe(parser: argparse.ArgumentParser) -> tuple[tuple[_Option, ...], tuple[_Command, ...]]:
    """The root's options and every command, as the scripts need them."""
    root_options: list[_Option] = []
    commands: list[_Command] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                options = tuple(_options(sub))
                positionals = [a for a in sub._actions if not a.option_strings]
                files = any(str(a.metavar) in _FILE_METAVARS for a in positionals)
                choices = tuple(str(c) for a in positionals if a.choices for c in a.choices)
                commands.append(_Command(name, helps.get(name, ""), options, files, choices))
        elif action.option_strings:
            root_options.extend(_options_of([action]))
    return tuple(root_options), tuple(commands)


def _options(parser: argparse.ArgumentParser) -> Iterator[_Option]:
    yield from _options_of(a for a in parser._actions if a.option_strings)


def _options_of(actions: object) -> Iterator[_Option]:
    for action in actions:  # type: ignore[attr-defined]
        assert isinstance(action, argparse.Action)
        if action.help == argparse.SUPPRESS:
            continue
        takes_value = action.nargs != 0
        choices = tuple(str(c) for c in action.choices) if action.choices else ()
        files = takes_value and str(action.metavar) in _FILE_METAVARS
        yield _Option(tuple(action.option_strings), _plain(action.help or ""), takes_value, choices, files)


def _plain(text: str) -> str:
    """A help text shortened to its first clause, without characters the shells' quoting would trip on."""
    text = re.sub(r"%\((\w+)\)s", r"\1", text)
    text = re.split(r"[;(]", text, maxsplit=1)[0].strip()
    text = re.sub(r"[\[\]:'\"`$\\]", "", text)
    return text if len(text) <= 70 else text[:70].rsplit(" ", 1)[0]


def completion_script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script for `shell` ("bash", "zsh" or "fish")."""
    root, commands = _describe(parser)
    if shell == "bash":
        return _bash(root, commands)
    if shell == "zsh":
        return _zsh(root, commands)
    if shell == "fish":
        return _fish(root, commands)
    raise ValueError(f"no completion for {shell!r}: choose from {', '.join(SHELLS)}")


def _bash(root: tuple[_Option, ...], commands: tuple[_Command, ...]) -> str:
    names = " ".join(c.name for c in commands)
    root_flags = " ".join(f for o in root for f in o.flags)
    cases = []
    for command in commands:
        flags = " ".join(f for o in command.options for f in o.flags)
        values = []
        for option in command.options:
            if not option.takes_value:
                continue
            pattern = "|".join(option.flags)
            if option.choices:
                reply = f'COMPREPLY=($(compgen -W "{" ".join(option.choices)}" -- "$cur")); return'
            elif option.files:
                reply = 'COMPREPLY=($(compgen -f -- "$cur")); return'
            else:
                reply = "return"  # a free value: nothing to suggest
            values.append(f"                {pattern}) {reply} ;;")
        if command.positional_choices:
            rest = f'COMPREPLY=($(compgen -W "{" ".join(command.positional_choices)}" -- "$cur"))'
        elif command.positional_files:
            rest = 'COMPREPLY=($(compgen -f -- "$cur"))'
        else:
            rest = ":"
        value_case = "\n".join(values)
        cases.append(
            f"""        {command.name})
            case "$prev" in
{value_case}
            esac
            if [[ "$cur" == -* ]]; then
                COMPREPLY=($(compgen -W "{flags}" -- "$cur"))
            else
                {rest}
            fi
            ;;"""
        )
    body = "\n".join(cases)
    return f"""# bash completion for {PROG}; generated by `{PROG} completion bash`.
# Load it now with: source <({PROG} completion bash)
# or for every shell: {PROG} completion bash > ~/.local/share/bash-completion/completions/{PROG}
{_FUNCTION}() {{
    local cur prev cmd i
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    cmd=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${{COMP_WORDS[i]}}" in
            -*) ;;
            *) cmd="${{COMP_WORDS[i]}}"; break ;;
        esac
    done
    if [[ -z "$cmd" ]]; then
        COMPREPLY=($(compgen -W "{names} {root_flags}" -- "$cur"))
        return
    fi
    case "$cmd" in
{body}
    esac
}}
complete -o filenames -o bashdefault -F {_FUNCTION} {PROG}
"""


def _zsh(root: tuple[_Option, ...], commands: tuple[_Command, ...]) -> str:
    described = "\n".join(f"        '{c.name}:{_plain(c.help)}'" for c in commands)
    cases = []
    for command in commands:
        specs = [f"                {_zsh_spec(option)} \\" for option in command.options]
        if command.positional_choices:
            specs.append(f"                '*:value:({' '.join(command.positional_choices)})' \\")
        elif command.positional_files:
            specs.append("                '*:file:_files' \\")
        spec_lines = "\n".join(specs)
        cases.append(
            f"            {command.name})\n                _arguments -s \\\n{spec_lines}\n"
            "                && return 0\n                ;;"
        )
    body = "\n".join(cases)
    root_specs = " ".join(_zsh_spec(o) for o in root)
    return f"""#compdef {PROG}
# zsh completion for {PROG}; generated by `{PROG} completion zsh`.
# Install: {PROG} completion zsh > "${{fpath[1]}}/_{PROG}"   (then restart zsh)
{_FUNCTION}() {{
    local -a commands
    commands=(
{described}
    )
    local curcontext="$curcontext" state line
    _arguments -C {root_specs} '1:command:->command' '*::argument:->argument' && return 0
    case $state in
        command)
            _describe -t commands '{PROG} command' commands
            ;;
        argument)
            case ${{words[1]}} in
{body}
            esac
            ;;
    esac
}}
{_FUNCTION} "$@"
"""


def _zsh_spec(option: _Option) -> str:
    if len(option.flags) > 1:
        names = "{" + ",".join(option.flags) + "}"
        excl = "(" + " ".join(option.flags) + ")"
    else:
        names, excl = option.flags[0], ""
    value = ""
    if option.takes_value:
        if option.choices:
            value = f":value:({' '.join(option.choices)})"
        elif option.files:
            value = ":file:_files"
        else:
            value = ":value: "
    return f"'{excl}'{names}'[{option.help}]{value}'"


def _fish(root: tuple[_Option, ...], commands: tuple[_Command, ...]) -> str:
    names = " ".join(c.name for c in commands)
    lines = [
        f"# fish completion for {PROG}; generated by `{PROG} completion fish`.",
        f"# Install: {PROG} completion fish > ~/.config/fish/completions/{PROG}.fish",
        f"complete -c {PROG} -f",
    ]
    for option in root:
        lines.append(f"complete -c {PROG} -n '__fish_use_subcommand' {_fish_option(option)}")
    for command in commands:
        lines.append(
            f"complete -c {PROG} -n 'not __fish_seen_subcommand_from {names}' -a {command.name} "
            f"-d '{_plain(command.help)}'"
        )
    for command in commands:
        condition = f"-n '__fish_seen_subcommand_from {command.name}'"
        for option in command.options:
            lines.append(f"complete -c {PROG} {condition} {_fish_option(option)}")
        if command.positional_choices:
            lines.append(f"complete -c {PROG} {condition} -a '{' '.join(command.positional_choices)}'")
        elif command.positional_files:
            lines.append(f"complete -c {PROG} {condition} -F")
    return "\n".join(lines) + "\n"


def _fish_option(option: _Option) -> str:
    parts = []
    for flag in option.flags:
        parts.append(f"-l {flag[2:]}" if flag.startswith("--") else f"-s {flag[1:]}")
    if option.takes_value:
        if option.choices:
            parts.append(f"-x -a '{' '.join(option.choices)}'")
        elif option.files:
            parts.append("-r -F")
        else:
            parts.append("-x")
    if option.help:
        parts.append(f"-d '{option.help}'")
    return " ".join(parts)
