"""Small measuring helpers shared by the benchmarks."""

from __future__ import annotations

import gc
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence


def rss_mib() -> float:
    """The resident set size of this process now, in MiB (Linux)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mib() -> float:
    """The peak resident set size of this process so far, in MiB (Linux)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by the nearest-rank method."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def timed_runs(run: Callable[[], object], repeats: int) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls of ``run`` (garbage collected before each)."""
    return [wall for wall, _ in timed_runs_cpu(run, repeats)]


def timed_runs_cpu(run: Callable[[], object], repeats: int) -> list[tuple[float, float]]:
    """(wall-clock seconds, CPU seconds of this process) of ``repeats`` calls of ``run``.

    On a shared machine the CPU time is the steadier figure: it leaves out the time other
    processes had the cores.
    """
    out = []
    for _ in range(repeats):
        gc.collect()
        start, cpu = time.perf_counter(), time.process_time()
        run()
        out.append((time.perf_counter() - start, time.process_time() - cpu))
    return out


def load_average() -> float:
    """The 1-minute load average (how busy the shared machine was)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def machine() -> str:
    cpus = os.cpu_count()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            model = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "?")
    except OSError:
        model = "?"
    return f"{cpus} CPUs ({model})"


def process_cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of another process so far (0 when there is none)."""
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(") ", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


_SPIN = """\
import time
start = time.perf_counter()
x = 0
for i in range({n}):
    x += i
print(time.perf_counter() - start)
"""


def _spin(processes: int, n: int) -> list[float]:
    """Wall-clock seconds of ``processes`` copies of one pure-Python loop, run at once."""
    code = _SPIN.format(n=n)
    running = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE) for _ in range(processes)]
    return [float(p.communicate()[0]) for p in running]


def core_scaling(n: int = 8_000_000) -> float:
    """How much work two busy processes get done together, relative to one alone.

    2.0 on two independent cores; less when the two virtual cores share a physical one
    (or its caches and memory bandwidth), or when other work runs. The pipeline's helper
    processes (match, text signals) can gain no more than this over one process.
    """
    alone, together = _spin(1, n), []
    for _ in range(2):  # interleaved; the fastest of each, as the least disturbed by others
        together.append(max(_spin(2, n)))
        alone += _spin(1, n)
    return 2 * min(alone) / min(together)
