"""The fault soak, small: every ambiguity switch at high fault rates, with and without state (slow)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

_SOAK = Path(__file__).resolve().parent.parent / "benchmarks" / "soak_faults.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("soak_faults", _SOAK)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # attrs classes need their module registered
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_a_small_fault_soak_finds_the_report_true_in_every_mode(tmp_path: Path) -> None:
    soak = _load()
    modes = soak.covering_modes()
    switches = {name: {getattr(m, name) for m in modes} for name in ("bulk_invalid", "bulk_list",
                "duplicate_list", "bulk_answer", "delete_status", "stateful", "list_setup")}  # fmt: skip
    assert all(len(values) >= 2 for values in switches.values())  # every value of every switch is played
    for number, mode in enumerate(modes):
        figures = soak.run_mode(mode, rows=60, fault_rate=0.35, seed=number, workdir=tmp_path)
        assert figures.problems == [], (mode.label, figures.problems[:5])
        assert figures.runs + figures.aborted == 3
        assert figures.faults > 0  # the faults really were played
        assert figures.exported > 0
