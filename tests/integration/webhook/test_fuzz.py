"""The fuzz run of ``benchmarks/webhook_fuzz.py``, with a count small enough for every CI run."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "webhook_fuzz.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("webhook_fuzz", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_fuzzed_reviews_get_well_formed_answers_with_their_uid_and_no_internal_error() -> None:
    lines: list[str] = []
    passed = load_script().run(2000, seed=7, report=lines.append)
    assert passed, "\n".join(lines)
