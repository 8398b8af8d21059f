"""What the benchmarks read from ``/proc`` about a process and everything under it."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cpu_seconds", "descendants", "memory_gib", "rss_kib"]


def descendants(pid: int) -> list[int]:
    """``pid`` and every process under it, through each thread's ``children``."""
    found = [pid]
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            found.extend(descendants(int(child)))
    return found


def rss_kib(pid: int) -> int:
    """The summed VmRSS of ``pid`` and every process under it, in KiB."""
    total = 0
    for each in descendants(pid):
        try:
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def memory_gib(pid: int) -> tuple[float, float]:
    """PSS and RSS of ``pid`` and every process under it, in GiB (PSS splits shared pages)."""
    pss = rss = 0
    for each in descendants(pid):
        try:
            for line in Path(f"/proc/{each}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss += int(line.split()[1])
        except OSError:
            continue
    return pss / 1024 / 1024, rss / 1024 / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and every process under it (worker processes included)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for each in descendants(pid):
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks
