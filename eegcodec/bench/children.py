"""Child processes of the speed benchmark (:mod:`eegcodec.bench.speed`,
:mod:`eegcodec.bench.speed_tokens`): a verb timed in its own process, a busy loop on another core
meanwhile, the load average, and how a row says what ran beside it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np


def child(cmd: list[str]) -> tuple[float, float, float]:
    """Run ``cmd`` under a fresh Python that reports its child's wall seconds, peak RSS (MB) and
    CPU seconds (user + system, all its threads)."""
    probe = (
        "import resource,subprocess,sys,time;t=time.perf_counter();"
        "r=subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,stderr=subprocess.PIPE,text=True);"
        "u=resource.getrusage(resource.RUSAGE_CHILDREN);"
        "print(time.perf_counter()-t, u.ru_maxrss/1024, u.ru_utime+u.ru_stime);"
        "sys.stderr.write(r.stderr);sys.exit(r.returncode)"
    )
    done = subprocess.run([sys.executable, "-c", probe] + cmd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(
            f"{' '.join(cmd[2:4])} failed: "
            f"{done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}"
        )
    seconds, peak, cpu = done.stdout.split()
    return float(seconds), float(peak), float(cpu)


@contextlib.contextmanager
def busy_core():
    """A child process spinning in a loop meanwhile, pinned to the last CPU this process may run
    on (where ``os.sched_setaffinity`` exists; on one CPU it shares that one). Yields
    ``(pid, cpu)`` (cpu None where unpinned); the process is killed and reaped on exit."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    cpu = cpus[-1] if cpus else None
    pin = f"import os; os.sched_setaffinity(0, {{{cpu}}})\n" if cpu is not None else ""
    spin = pin + "print(flush=True)\nwhile True:\n    pass"
    proc = subprocess.Popen([sys.executable, "-c", spin], stdout=subprocess.PIPE)
    try:
        proc.stdout.readline()  # spinning from here on
        yield proc.pid, cpu
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def load_average() -> float | None:
    """The 1-minute load average (``/proc/loadavg``; None where the system has none)."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def median_time(runs: list[tuple[float, float, float]]) -> tuple[float, float]:
    """(median wall seconds, highest peak MB) of repeated runs of one verb."""
    return float(np.median([t for t, _, _ in runs])), max(m for _, m, _ in runs)


def beside(row: dict) -> str:
    """What ran beside a row's timings (a busy loop or nothing added) and the load before it."""
    if "busy" not in row:  # results written before the busy rows
        return "-"
    cpu = row.get("busy_cpu")
    text = ("busy loop" + (f" on CPU {cpu}" if cpu is not None else "")) if row["busy"] else "no busy loop"
    load = row.get("loadavg")
    return text + (f" (load {load:.2f})" if load is not None else "")
