"""pytest integration: the `autopilot_sandbox` fixture and `sandbox_fixture()` to build your own.

Registered through the `pytest11` entry point, so the fixture is available wherever the package is installed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal

import pytest

from ._autopilot.sandbox import Sandbox
from ._ortto.sandbox import OrttoSandbox

__all__ = ["autopilot_sandbox", "ortto_sandbox", "sandbox_fixture"]

_Scope = Literal["session", "package", "module", "class", "function"]


def sandbox_fixture(
    *, scope: _Scope = "function", name: str | None = None, doc: str | None = None, **switches: Any
) -> Callable[..., Iterator[Sandbox]]:
    """Build a pytest fixture yielding a started `Sandbox(**switches)`, stopped afterwards.

    Assign the result to a module-level name in a conftest.py or test module::

        strict_sandbox = sandbox_fixture(rate_limit=5, bulk_invalid="drop")

    With a wider `scope` the sandbox is shared; call `sb.reset()` where tests must not see each other's data.
    `doc` is what `pytest --fixtures` shows for it (by default, the switches and the scope).
    """
    Sandbox(**switches)  # fail at collection time on a bad switch, not in every test

    def _fixture() -> Iterator[Sandbox]:
        with Sandbox(**switches) as sandbox:
            yield sandbox

    described = ", ".join(f"{key}={value!r}" for key, value in switches.items())
    _fixture.__doc__ = doc or (
        f"A started `autopilot_segments.sandbox.Sandbox({described})`, shared per {scope} and stopped "
        "after it: point a client at its `url` with its `api_key`."
    )
    return pytest.fixture(scope=scope, name=name)(_fixture)


autopilot_sandbox = sandbox_fixture(
    name="autopilot_sandbox",
    doc="""A local Autopilot-compatible server (`autopilot_segments.sandbox.Sandbox()`, default
    switches) started for the test and stopped after it. Point your code at it with
    `AutopilotClient(autopilot_sandbox.api_key, base_url=autopilot_sandbox.url)`, then check what
    arrived: `.contacts`, `.lists`, `.list_members(list_id)`, `.requests`; `.inject("503")` plays a
    fault. Other switches or scopes: `sandbox_fixture(...)`; see docs/sandbox.md.
    """,
)


def _ortto_sandbox() -> Iterator[OrttoSandbox]:
    """A started `OrttoSandbox()` with default switches, stopped after the test."""
    with OrttoSandbox() as sandbox:
        yield sandbox


ortto_sandbox = pytest.fixture(name="ortto_sandbox")(_ortto_sandbox)
