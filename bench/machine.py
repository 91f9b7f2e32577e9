"""How fast this machine runs Python at the moment of a benchmark.

The machine is shared: the same pure-Python loop has taken 1.3 s at one moment and 4.5 s a
few minutes later. A benchmark's figures compare with another run's only at a similar speed,
so the load benchmarks print this reference before and after they measure (and the ratios
they report come from one run, at one speed)."""

from __future__ import annotations

import time


def _workload() -> int:
    total = 0
    seen: dict[int, int] = {}
    for i in range(200_000):
        total += i * i % 7
        seen[i & 1023] = total
    return total + len(seen)


def reference_ms(repeat: int = 5) -> float:
    """CPU milliseconds of a fixed pure-Python workload, the best of ``repeat``."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        _workload()
        best = min(best, time.process_time() - start)
    return best * 1000


def describe(before: float, after: float) -> str:
    return (
        f"machine speed: a fixed Python workload took {before:.0f} ms of CPU before the run "
        f"and {after:.0f} ms after (lower is faster; see bench/machine.py)"
    )
