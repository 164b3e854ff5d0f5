"""Local Autopilot- and Ortto-compatible servers (stdlib only) for tests, demos and offline use.

```python
from autopilot_segments.sandbox import Sandbox

with Sandbox(rate_limit=5) as sb:
    ...  # point a client at sb.url with sb.api_key
```

See docs/sandbox.md for every switch, fault injection and inspection.
"""

from __future__ import annotations

from typing import Any

from ._autopilot.sandbox import Sandbox
from ._autopilot.settings import Settings
from ._faults import FAULT_KINDS, FaultPlan
from ._ortto.sandbox import OrttoSandbox
from ._ortto.settings import OrttoSettings
from ._recording import RecordedRequest

__all__ = [
    "FAULT_KINDS",
    "FaultPlan",
    "OrttoSandbox",
    "OrttoSettings",
    "RecordedRequest",
    "Sandbox",
    "Settings",
    "sandbox_fixture",
]


def __getattr__(name: str) -> Any:
    # The fixture helper needs pytest; import it only when asked for, so the sandbox works without pytest.
    if name == "sandbox_fixture":
        from ._pytest_plugin import sandbox_fixture

        return sandbox_fixture
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
