"""An exec probe's command may write any amount: the node keeps the last KiB of it (what the
probe's message shows) and kills the command at the probe's timeout."""

from __future__ import annotations

import asyncio
import os
import tracemalloc
from pathlib import Path

import pytest

from localkube.node.runtime import _exec_probe
from tests.nodekit import children

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

LOUD = 32 * 1024 * 1024  # bytes of output, far more than the node may hold


async def test_a_loud_failing_probe_reports_the_end_of_its_output_without_holding_it_all(
    tmp_path: Path,
) -> None:
    script = f"head -c {LOUD} /dev/zero | tr '\\0' x; echo; echo the last words; exit 3"
    tracemalloc.start()
    try:
        outcome = await _exec_probe(
            ["sh", "-c", script], {"PATH": os.environ["PATH"]}, str(tmp_path)
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not outcome.ok
    assert outcome.message.startswith("command failed with exit code 3: xxx")
    assert outcome.message.endswith("the last words")
    assert len(outcome.message) < 1100
    assert peak < LOUD // 8


async def test_a_probe_still_writing_at_its_timeout_is_killed(tmp_path: Path) -> None:
    script = f"head -c {LOUD} /dev/zero; exec sleep 60"
    tracemalloc.start()
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(2):
                await _exec_probe(["sh", "-c", script], {"PATH": os.environ["PATH"]}, str(tmp_path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert children("sleep") == []
    assert peak < LOUD // 8
