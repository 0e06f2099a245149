"""Torch and BLAS threads sized to the cores that are free now.

Two processes that each run two OpenMP threads on two cores slow each other down far more
than twice: a parallel region waits for its slowest thread, and that thread waits for the
core the other process holds (observed: encoder B's embedding fell from 1.4 to 0.1 pairs/s
with a busy loop on the other core). :class:`CoreThreads` counts the cores this process may
use (``os.sched_getaffinity``), subtracts those other processes keep busy (the number of
runnable tasks in ``/proc/loadavg``, sampled a few times, less this process's own runnable
threads; the 1-minute load average where that file is absent), divides the rest among ``jobs`` worker
processes and sets torch's threads and the BLAS / OpenMP pools (:mod:`threadpoolctl`) to it.
Tokenization (:func:`eegcodec.tokens.tokenize`, per recording) and encoder B's embedding
(:func:`eegcodec.align.dataset.embed_manifest`, window by window) use it without the load
estimate: their work goes to :meth:`Codec.map_chunks`' workers, each running torch on one
thread, which do not wait for one another, so a busy core costs CPU time, not a stall.
"""

from __future__ import annotations

import os
import time

#: /proc/loadavg samples per estimate, and seconds between them
SAMPLES, SAMPLE_GAP = 5, 0.004
#: seconds between re-estimates of :meth:`CoreThreads.maybe_refit`
REFIT_SECONDS = 10.0


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask; the CPU count where that is unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def own_running(tasks: str = "/proc/self/task") -> int:
    """This process's runnable threads now (state R in ``tasks/*/stat``), the calling thread
    included: at least 1 (1 where that folder cannot be read)."""
    count = 0
    try:
        for task in os.scandir(tasks):
            try:
                with open(os.path.join(task.path, "stat")) as f:
                    count += f.read().rsplit(")", 1)[1].split()[0] == "R"
            except (OSError, IndexError):
                continue
    except OSError:
        return 1
    return max(count, 1)


def busy_elsewhere(path: str = "/proc/loadavg", tasks: str = "/proc/self/task") -> float:
    """Cores other processes keep busy now: the median, over :data:`SAMPLES` readings, of the
    runnable tasks ``/proc/loadavg`` counts, less this process's own runnable threads
    (:func:`own_running`: the reader, and torch's OpenMP threads still spinning after the last
    operator, which would otherwise read as another process's work); where that file cannot be
    read, the 1-minute load average (which also counts this process's recent work)."""
    counts = []
    for i in range(SAMPLES):
        try:
            with open(path) as f:
                running = int(f.read().split()[3].split("/")[0])
        except (OSError, ValueError, IndexError):
            return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        counts.append(max(running - own_running(tasks), 0))
        if i + 1 < SAMPLES:
            time.sleep(SAMPLE_GAP)
    return float(sorted(counts)[len(counts) // 2])


def threads_for(
    jobs: int = 1, busy: float | None = None, cores: int | None = None, ceiling: int | None = None
) -> int:
    """Threads for each of ``jobs`` worker processes: the free cores (``cores`` less ``busy``,
    rounded to whole cores) divided among them, at least 1 and at most ``ceiling`` (default:
    ``OMP_NUM_THREADS`` where set, as ``--jobs`` sets it for its processes)."""
    cores = usable_cores() if cores is None else cores
    busy = busy_elsewhere() if busy is None else busy
    free = cores - min(int(round(busy)), cores - 1)
    if ceiling is None and os.environ.get("OMP_NUM_THREADS", "").isdigit():
        ceiling = int(os.environ["OMP_NUM_THREADS"])
    return max(1, min(free // max(1, jobs), ceiling or cores))


class CoreThreads:
    """Context: torch's threads and the BLAS / OpenMP pools set to :func:`threads_for` ``(jobs)``
    on entry and on each :meth:`refit`; the previous settings restored on exit.

    ``threads`` (int) fixes the count instead (no estimate). ``load=False`` counts the usable
    cores without subtracting the busy ones: for work whose threads do not wait for each other,
    such as :meth:`Codec.map_chunks`' chunk workers (each runs torch on one thread), where
    giving up a thread to a busy core only gives up CPU time (tokenizing EEGBCI S001R01 with
    mc-small beside a busy loop on a 2-core machine: 11.8 recording-seconds per second with two
    chunk workers, 7.0 with one)."""

    def __init__(self, jobs: int = 1, threads: int | None = None, load: bool = True):
        self.jobs, self.fixed, self.load = jobs, threads, load
        self.threads, self._limiter, self._torch_before, self._last = 0, None, None, 0.0

    def __enter__(self) -> CoreThreads:
        import torch

        self._torch_before = torch.get_num_threads()
        self.refit()
        return self

    def refit(self) -> int:
        """Estimate the free cores again and resize; returns the thread count now in force."""
        import torch
        from threadpoolctl import threadpool_limits

        n = self.fixed or threads_for(self.jobs, busy=None if self.load else 0.0)
        self._last = time.monotonic()
        if n != self.threads:
            if self._limiter is not None:
                self._limiter.restore_original_limits()
            self._limiter = threadpool_limits(n)
            torch.set_num_threads(n)
            self.threads = n
        return n

    def maybe_refit(self) -> int:
        """:meth:`refit` when :data:`REFIT_SECONDS` have passed since the last estimate."""
        if time.monotonic() - self._last >= REFIT_SECONDS:
            return self.refit()
        return self.threads

    def __exit__(self, *exc) -> None:
        import torch

        if self._limiter is not None:
            self._limiter.restore_original_limits()
        torch.set_num_threads(self._torch_before)
        self.threads, self._limiter = 0, None
