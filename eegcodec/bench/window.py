"""Random access as a user meets it: ``eegcodec.read_raw(path).get_data(start, stop)`` of a window
from the middle of a file, in a fresh process (``eegcodec bench speed``'s window columns).

``python -m eegcodec.bench.window FILE [SECONDS [MODEL]]`` prints one JSON object (MODEL: the
model's name or weights file, for a token file whose model is not found by the name it records):

- ``import_s``: importing eegcodec's API (Python start-up not counted);
- ``model_s``: loading the model a token file names (0 for files without tokens; a viewer
  holding the model pays it once, not per file);
- ``call_s``: the whole call, ``read_raw(path, codec=...)`` (open: header, side data,
  measurement info) plus ``get_data`` of ``SECONDS`` (default 10) of all channels from the
  middle, the first read in the process (one-off costs included: compiled loops loaded from
  numba's cache, scipy's FFT imported); ``open_s`` and ``read_s`` split it;
- ``again_s``: the same call for another window (a third of the way in) right after: the cost
  once those one-off costs are paid;
- ``peak_mb``: the process's peak resident memory (MB) after both.
"""

from __future__ import annotations

import json
import resource
import sys
import time


def measure(path: str, seconds: float = 10.0, model: str | None = None) -> dict:
    """Time the calls described in the module's docstring on the ``.eegc`` file at ``path``
    (``model``: a token file's model, default the one it names)."""
    t0 = time.perf_counter()
    from ..api import codec_for, read_raw
    from ..reader import read_archive

    t1 = time.perf_counter()
    codec = codec_for(read_archive(path, lazy=True), model)  # None unless the file holds tokens
    t2 = time.perf_counter()
    out = {"import_s": t1 - t0, "model_s": t2 - t1 if codec is not None else 0.0}
    for key, where in (("call", 0.5), ("again", 1 / 3)):
        start = time.perf_counter()
        raw = read_raw(path, codec=codec)
        opened = time.perf_counter()
        n = min(int(round(seconds * raw.info["sfreq"])), raw.n_times)
        first = min(int(raw.n_times * where), raw.n_times - n)
        data = raw.get_data(start=first, stop=first + n)
        done = time.perf_counter()
        if key == "call":
            out.update(open_s=opened - start, read_s=done - opened, shape=list(data.shape))
        out[f"{key}_s"] = done - start
    out["peak_mb"] = peak_mb()
    return out


def peak_mb() -> float:
    """This process's peak resident memory (MB): Linux's ``VmHWM`` (``ru_maxrss`` keeps the
    parent's peak across ``exec``), else ``ru_maxrss``."""
    try:
        for line in open("/proc/self/status").read().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    print(json.dumps(measure(sys.argv[1], seconds, sys.argv[3] if len(sys.argv) > 3 else None)))
