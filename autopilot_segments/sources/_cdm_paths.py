"""Where a CDM location points inside the folder being read, and never outside it.

A location is percent-decoded *first* (so `..%2F..%2Fx.csv` is seen as `../../x.csv`), backslashes are
taken as separators, then the path is joined, symlinks are resolved, and the result must lie inside the
CDM folder. Anything else is a `SourceError`: a partition location must never make the reader open a
file elsewhere on the machine.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from ._common import SourceError


def decoded_segments(path: str) -> list[str]:
    """The path's segments after percent-decoding, with `\\` as a separator; empty and `.` dropped."""
    text = unquote(path).replace("\\", "/")
    if "\0" in text:
        raise ValueError("a NUL character")
    return [segment for segment in text.split("/") if segment not in ("", ".")]


def inside(root: Path, candidate: Path) -> Path | None:
    """`candidate` with symlinks resolved, if it is inside `root` (itself resolved); else None."""
    real_root = root.resolve()
    real = candidate.resolve()
    if real == real_root or real_root in real.parents:
        return real
    return None


def _escape_error(label: str, location: str, root: Path) -> SourceError:
    return SourceError(
        f"{label}: the location {location!r} points outside the CDM folder {root}; "
        "partition files must be inside the folder that is read"
    )


def split_corpus_path(location: str) -> tuple[str | None, str]:
    """(namespace, path) of a CDM corpus path such as `local:/Account/p.csv`; (None, location) if none.

    A URL (`https://...`), a Windows drive (`C:\\...`) and a plain relative path have no namespace.
    """
    head, sep, rest = location.partition(":")
    if sep and rest.startswith("/") and not rest.startswith("//") and len(head) > 1 and "/" not in head:
        return head, rest
    return None, location


def resolve_relative(root: Path, base: Path, location: str, label: str) -> Path:
    """A corpus-relative location: `/x` from `root`, `x` from `base`; it must stay inside `root`."""
    try:
        segments = decoded_segments(location)
    except ValueError:
        raise SourceError(f"{label}: the location {location!r} contains a NUL character") from None
    start = root if unquote(location).replace("\\", "/").startswith("/") else base
    if not segments:
        raise SourceError(f"{label}: the location {location!r} names no file")
    real = inside(root, start.joinpath(*segments))
    if real is None:
        raise _escape_error(label, location, root)
    return real


def resolve_partition(root: Path, base: Path, entity: str, location: str, label: str) -> Path:
    """The file inside `root` that a partition `location` names.

    - a corpus path in the `local:` namespace, or a path starting with `/`, is relative to `root`;
    - a relative path is relative to `base` (the folder of the document that declares it);
    - a URL (an adapter path such as `https://acct.dfs.core.windows.net/container/Account/p.csv`), or a
      corpus path in another namespace, names a file in the lake: its query string and an
      `@snapshot=...` suffix are dropped, and the longest trailing part of its path that exists under
      `root` wins, then `<entity>/<file name>`.
    """
    namespace, path = split_corpus_path(location)
    parts = urlsplit(location) if namespace is None else None
    is_url = parts is not None and len(parts.scheme) > 1  # "C:" is a drive, not a scheme
    is_drive = parts is not None and len(parts.scheme) == 1
    if namespace == "local" or (namespace is None and not is_url and not is_drive):
        relative = path if namespace is None else "/" + path.lstrip("/")
        file = resolve_relative(root, base, relative, label)
        if not file.is_file():
            raise SourceError(f"{label}: partition file {location!r} not found (looked for {file})")
        return file
    raw = parts.path if is_url and parts is not None else path
    try:
        segments = decoded_segments(raw)
    except ValueError:
        raise SourceError(f"{label}: the location {location!r} contains a NUL character") from None
    if segments:
        segments[-1] = segments[-1].split("@snapshot=", 1)[0]
    if not segments or not segments[-1] or ".." in segments:
        raise SourceError(f"{label}: partition location {location!r} cannot be resolved")
    tried = [root.joinpath(*segments[start:]) for start in range(len(segments))]
    tried.append(root / entity / segments[-1])
    for candidate in tried:
        if candidate.is_file():
            real = inside(root, candidate)
            if real is None:
                raise _escape_error(label, location, root)
            return real
    shown = ", ".join(str(p.relative_to(root)) for p in tried)
    raise SourceError(f"{label}: partition file for {location!r} not found in {root} (looked for {shown})")
