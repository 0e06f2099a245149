"""Lossless and near-lossless bits per sample against the general-purpose and audio lossless coders.

``eegcodec bench lossless INPUT... --out DIR``

Per recording (all of its signals), bits per sample of

* ``eegcodec --lossless`` and ``--max-error`` at each bound (microvolts): the whole ``.eegc`` file;
* ``flac -8`` and ``wavpack -hh -x6`` on the EDF's digital samples (16-bit raw PCM at the
  recording's rate), the smaller of one channel per file and eight channels per file (FLAC holds
  at most 8), the files' whole sizes;
* ``xz -9e`` and ``zstd --ultra -22`` on the recording file itself;

a coder that is not installed gives a row saying so. The *best anchor* of a file is the smallest
of the four; ``ratio`` is eegcodec's lossless figure over it. Recordings are grouped by dataset
(their folder) and by whether their subject is one the shipped models were trained on
(:data:`SEEN_PREFIXES`). Speed: compression and decompression samples per CPU second of this
process (one thread: what a core does, even on a shared machine) and per wall second, of the
lossless and max-error modes.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io import find_inputs, read_raw
from .classical import integer_samples
from .common import Clock, dataset_of, md_table, write_outputs

HELP = "--lossless and --max-error bits per sample against flac, wavpack, xz and zstd"
INPUTS = "recording files or folders (EDF/BDF: the anchors code their digital samples)"


def add_arguments(parser) -> None:
    parser.add_argument(
        "--max-error",
        type=float,
        nargs="+",
        metavar="UV",
        help="max-error bounds in microvolts (default: 1 2 5)",
    )


def main(args, say) -> None:
    from .common import recordings

    recordings(args.inputs, "lossless")
    cfg = LosslessConfig(max_errors_uv=args.max_error) if args.max_error else LosslessConfig()
    run(args.inputs, Path(args.out), cfg, progress=say)


#: file-name prefixes of the subjects the shipped models were trained on (EEGBCI S001)
SEEN_PREFIXES = ("S001",)
ANCHORS = {
    "flac -8": ("flac",),
    "wavpack -hh -x6": ("wavpack",),
    "xz -9e": ("xz",),
    "zstd --ultra -22": ("zstd",),
}


#: speed figures of each mode: samples per CPU second of this process, then per wall second
SPEED_KEYS = (
    "compress_samples_per_s",
    "decompress_samples_per_s",
    "compress_samples_per_wall_s",
    "decompress_samples_per_wall_s",
)


@dataclass
class LosslessConfig:
    max_errors_uv: list[float] = field(default_factory=lambda: [1.0, 2.0, 5.0])
    group: int = 8  # channels per FLAC / WavPack file besides one channel per file


def _run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _pcm_coder_bytes(name: str, ints: np.ndarray, sfreq: float, tmp: Path) -> int:
    """Size of ``name`` (flac or wavpack) over int16 samples ints [C, N]: raw PCM files of ``C``
    channels; the caller picks the grouping."""
    c = ints.shape[0]
    src, dst = tmp / "in.raw", tmp / "out.bin"
    src.write_bytes(np.ascontiguousarray(ints.T, dtype="<i2").tobytes())
    rate = max(1, int(round(sfreq)))
    if name == "flac -8":
        _run(
            [
                "flac",
                "-8",
                "--no-padding",
                "-f",
                "-s",
                "--force-raw-format",
                "--endian=little",
                "--sign=signed",
            ]
            + [f"--channels={c}", "--bps=16", f"--sample-rate={rate}", "-o", str(dst), str(src)]
        )
    else:
        _run(["wavpack", "-q", "-y", "-hh", "-x6", f"--raw-pcm={rate},16,{c},le", str(src), "-o", str(dst)])
    size = dst.stat().st_size
    dst.unlink()
    return size


def pcm_best(name: str, ints: np.ndarray, sfreq: float, group: int, tmp: Path) -> int:
    """The smaller of one channel per file and ``group`` channels per file."""
    singles = sum(_pcm_coder_bytes(name, ints[i : i + 1], sfreq, tmp) for i in range(len(ints)))
    grouped = sum(_pcm_coder_bytes(name, ints[i : i + group], sfreq, tmp) for i in range(0, len(ints), group))
    return min(singles, grouped)


def _file_coder_bytes(name: str, path: Path) -> int:
    cmd = ["xz", "-9e", "-c", str(path)] if name == "xz -9e" else ["zstd", "--ultra", "-22", "-c", str(path)]
    return len(subprocess.run(cmd, check=True, capture_output=True).stdout)


def edf_digital(path: Path) -> np.ndarray | None:
    """The digital samples int64 [signals, N] of an EDF/EDF+ file (edfio: annotation signals left
    out), or None when the file is not EDF or its signals have different rates."""
    import edfio

    if path.suffix.lower() != ".edf":
        return None
    try:
        signals = list(edfio.read_edf(path).signals)
    except Exception:  # not EDF (a BDF under an .edf name, a damaged header): no digital samples
        return None
    if not signals or len({s.sampling_frequency for s in signals}) != 1:
        return None
    return np.stack([s.digital for s in signals]).astype(np.int64)


def anchors(path: Path, raw, group: int) -> dict[str, float | str]:
    """Bits per sample of each anchor on one recording (a string where it cannot run)."""
    x = raw.get_data()
    ints = edf_digital(path)
    exact = ints is not None and ints.shape == x.shape
    if not exact:
        ints, _, _, exact = integer_samples(x)
    n = x.size
    out: dict[str, float | str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (tool,) in ANCHORS.items():
            if shutil.which(tool) is None:
                out[name] = "not installed"
            elif name in ("flac -8", "wavpack -hh -x6") and (
                not exact or ints.min() < -(2**15) or ints.max() >= 2**15
            ):
                out[name] = "samples not 16-bit integers"
            elif name in ("flac -8", "wavpack -hh -x6"):
                out[name] = 8 * pcm_best(name, ints, raw.info["sfreq"], group, Path(tmp)) / n
            else:
                out[name] = 8 * _file_coder_bytes(name, path) / n
    return out


def eegcodec_modes(raw, max_errors_uv: list[float]) -> dict[str, dict]:
    """Per mode (``lossless``, ``max-error=E``): bits per sample, compress and decompress samples/s,
    and (max-error) the largest error in microvolts."""
    from ..format.container import Archive
    from ..pipeline import compress_raw, decompress_archive

    x = raw.get_data()
    out = {}
    for label, kw in [("lossless", {"lossless": True})] + [
        (f"max-error={e:g}", {"max_error": e * 1e-6}) for e in max_errors_uv
    ]:
        t0, c0 = time.perf_counter(), time.process_time()
        blob = compress_raw(raw, None, **kw)
        t1, c1 = time.perf_counter(), time.process_time()
        y = decompress_archive(Archive.from_bytes(blob), None).get_data()
        t2, c2 = time.perf_counter(), time.process_time()
        err = float(np.max(np.abs(y - x))) * 1e6 if x.size else 0.0
        if "lossless" in kw and err > 1e-6:  # the grid's origin + k * step: within a millionth of a step
            raise AssertionError("lossless round trip is not exact")
        out[label] = {
            "bits_per_sample": 8 * len(blob) / x.size,
            "compress_samples_per_s": x.size / max(c1 - c0, 1e-9),
            "decompress_samples_per_s": x.size / max(c2 - c1, 1e-9),
            "compress_samples_per_wall_s": x.size / (t1 - t0),
            "decompress_samples_per_wall_s": x.size / (t2 - t1),
            "max_abs_error_uv": err,
        }
    return out


def _group(path: Path) -> str:
    seen = any(path.name.startswith(p) for p in SEEN_PREFIXES)
    return (
        f"{dataset_of(path)} ({'seen' if seen else 'unseen'} subjects)"
        if "eegbci" in str(path)
        else (dataset_of(path))
    )


def run(inputs: list[str], out: Path, cfg: LosslessConfig | None = None, progress=print) -> dict:
    """Measure every recording in ``inputs`` (files or folders); writes ``out/results.json`` and
    ``out/report.md``."""
    cfg = cfg or LosslessConfig()
    clock = Clock()
    files = []
    for path, _ in find_inputs(inputs):
        raw = read_raw(path)
        raw.load_data()
        progress(f"{path.name}: eegcodec")
        modes = eegcodec_modes(raw, cfg.max_errors_uv)
        progress(f"{path.name}: anchors")
        anc = anchors(path, raw, cfg.group)
        numeric = [v for v in anc.values() if isinstance(v, float)]
        best = min(numeric) if numeric else float("nan")
        files.append(
            {
                "file": path.name,
                "group": _group(path),
                "channels": len(raw.ch_names),
                "samples": raw.n_times,
                "sfreq": raw.info["sfreq"],
                "eegcodec": modes,
                "anchors": anc,
                "best_anchor_bits_per_sample": best,
                "ratio_to_best": modes["lossless"]["bits_per_sample"] / best,
            }
        )
    results = {"config": cfg.__dict__, "files": files, "groups": _groups(files), "seconds": clock.seconds()}
    write_outputs(out, results, report(results))
    return results


def _groups(files: list[dict]) -> dict[str, dict]:
    """Per group: samples-weighted mean bits per sample of every coder, ratios, speed."""
    groups: dict[str, dict] = {}
    for name in dict.fromkeys(f["group"] for f in files):
        fs = [f for f in files if f["group"] == name]
        w = np.array([f["channels"] * f["samples"] for f in fs], float)

        def mean(vals, w=w):
            v = np.array(vals, float)
            return float(np.sum(v * w) / np.sum(w))

        g = {m: mean([f["eegcodec"][m]["bits_per_sample"] for f in fs]) for m in fs[0]["eegcodec"]}
        for a in ANCHORS:
            vals = [f["anchors"][a] for f in fs]
            g[a] = mean(vals) if all(isinstance(v, float) for v in vals) else "not installed"
        best = min((v for k, v in g.items() if k in ANCHORS and isinstance(v, float)), default=float("nan"))
        ratios = [f["ratio_to_best"] for f in fs]
        groups[name] = {
            "files": len(fs),
            "bits_per_sample": g,
            "best_anchor": best,
            "ratio_to_best": g["lossless"] / best,
            "file_ratio_range": [min(ratios), max(ratios)],
            **{
                key: {m: mean([f["eegcodec"][m][key] for f in fs]) for m in g if m in fs[0]["eegcodec"]}
                for key in SPEED_KEYS
            },
        }
    return groups


def report(res: dict) -> str:
    modes = list(res["files"][0]["eegcodec"]) if res["files"] else []
    head = ["recording", "group"] + modes + list(ANCHORS) + ["best anchor", "lossless / best"]
    rows = []
    for f in res["files"]:
        rows.append(
            [f["file"], f["group"]]
            + [f["eegcodec"][m]["bits_per_sample"] for m in modes]
            + [f["anchors"][a] for a in ANCHORS]
            + [f["best_anchor_bits_per_sample"], f["ratio_to_best"]]
        )
    fmt = {i: ".3f" for i in range(2, len(head))}
    grow = []
    for name, g in res["groups"].items():
        grow.append(
            [name, g["files"]]
            + [g["bits_per_sample"][m] for m in modes]
            + [g["bits_per_sample"][a] for a in ANCHORS]
            + [g["best_anchor"], g["ratio_to_best"], "{:.3f}-{:.3f}".format(*g["file_ratio_range"])]
        )
    ghead = ["group", "files"] + modes + list(ANCHORS) + ["best anchor", "lossless / best", "per file"]
    speed = [
        [name, m, *(g[key][m] / 1e6 for key in SPEED_KEYS)]
        for name, g in res["groups"].items()
        for m in modes
    ]
    return (
        "\n\n".join(
            [
                "# Lossless and near-lossless coding against lossless anchors",
                "Bits per sample over all signals (eegcodec: the whole `.eegc` file; flac/wavpack: the "
                "EDF's digital samples as 16-bit PCM, the better of 1 and 8 channels per file; xz/zstd: "
                "the EDF file). Group figures are means weighted by samples. `max-error=E`: every "
                "sample within E microvolts.",
                "## Per dataset",
                md_table(ghead, grow, {i: ".3f" for i in range(2, len(ghead) - 1)}),
                "## Per recording",
                md_table(head, rows, fmt),
                "## Speed (million samples per second, one thread)",
                "Per CPU second of this process (what one core does, whatever else runs on the "
                "machine) and per wall second (slower where other work shares the cores).",
                md_table(
                    ["group", "mode", "compress", "decompress", "compress (wall)", "decompress (wall)"],
                    speed,
                    {i: ".2f" for i in range(2, 6)},
                ),
                f"Run time {res['seconds']} s.",
            ]
        )
        + "\n"
    )
