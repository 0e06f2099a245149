"""``eegcodec bench zarr``: eegcodec's numcodecs codec against the codecs zarr users keep EEG in.

Each recording's integer samples (recovered from the volts MNE reads, on their grid:
:func:`eegcodec.bench.classical.integer_samples`; ``int16``/``int32`` ``[time, channels]``, as
NWB and SpikeInterface store traces) are cut into zarr chunks of ``chunk_seconds`` x all channels
and each chunk is encoded and decoded by every codec: eegcodec (lossless; max-error of 2 counts),
Blosc (zstd, byte shuffle, level 9), Zstd (level 19) and LZ4, and, where installed, FLAC (the
``flac`` program, ``-8``, the smaller of 1 and 8 channels per stream; size only). Figures: bits
per sample over all chunks, encode and decode speed in million samples per second (one process,
numpy's BLAS on one thread). The float64 volts MNE reads are also coded bit for bit by eegcodec
and Blosc, for readers who keep volts.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from .classical import integer_samples
from .common import dataset_of, hardware, hardware_line, md_table, recordings, write_outputs

NAME = "zarr"
HELP = "eegcodec's numcodecs codec against Blosc, Zstd, LZ4 and FLAC on zarr chunks (the [zarr] extra)"


def add_arguments(parser) -> None:
    parser.add_argument(
        "--chunk-seconds", type=float, default=10.0, help="seconds per zarr chunk (default: %(default)s)"
    )


def main(args, say) -> None:
    run(recordings(args.inputs, "zarr"), Path(args.out), args.chunk_seconds)


def _codecs() -> dict:
    import numcodecs

    from ..numcodec import EEGCodec

    return {
        "eegcodec lossless": EEGCodec(),
        "eegcodec max-error 2 counts": EEGCodec("max_error", 2),
        "blosc zstd9 shuffle": numcodecs.Blosc("zstd", 9, numcodecs.Blosc.SHUFFLE),
        "zstd 19": numcodecs.Zstd(level=19),
        "lz4": numcodecs.LZ4(),
    }


def _measure(codec, chunks: list[np.ndarray]) -> dict:
    """Bytes and seconds of encoding and decoding ``chunks``; checks the round trip."""
    from numcodecs.compat import ensure_ndarray

    codec.decode(codec.encode(chunks[0]))  # compiled loops and caches warm before timing
    t0 = time.perf_counter()
    frames = [codec.encode(c) for c in chunks]
    t1 = time.perf_counter()
    back = [ensure_ndarray(codec.decode(f)).view(c.dtype).reshape(c.shape) for f, c in zip(frames, chunks)]
    t2 = time.perf_counter()
    lossless = all(np.array_equal(b.view(np.uint8), c.view(np.uint8)) for b, c in zip(back, chunks))
    largest = max(float(np.abs(b.astype(np.float64) - c).max()) for b, c in zip(back, chunks))
    n = sum(c.size for c in chunks)
    return {
        "bits_per_sample": 8 * sum(len(f) for f in frames) / n,
        "encode_msamples_s": n / (t1 - t0) / 1e6,
        "decode_msamples_s": n / (t2 - t1) / 1e6,
        "exact": lossless,
        "largest_error": largest,
    }


def _file_rows(path: Path, chunk_seconds: float) -> list[dict]:
    import mne

    raw = mne.io.read_raw(path, preload=True, verbose="error")
    volts = raw.get_data()
    ints, _, _, exact = integer_samples(volts)
    if not exact:
        return []
    step = max(1, int(round(chunk_seconds * raw.info["sfreq"])))
    dtype = np.int16 if np.abs(ints).max(initial=0) < 2**15 else np.int32
    traces = np.ascontiguousarray(ints.T, dtype=dtype)  # [time, channels]
    chunks = [traces[i : i + step] for i in range(0, len(traces), step)]
    rows = []
    for name, codec in _codecs().items():
        rows.append(
            {"file": path.name, "dataset": dataset_of(path), "codec": name, **_measure(codec, chunks)}
        )
    if shutil.which("flac"):
        size = _flac_bytes(chunks, raw.info["sfreq"])
        rows.append(
            {
                "file": path.name,
                "dataset": dataset_of(path),
                "codec": "flac -8",
                "bits_per_sample": 8 * size / traces.size,
                "exact": True,
            }
        )
    float_chunks = [np.ascontiguousarray(volts.T[i : i + step]) for i in range(0, volts.shape[1], step)]
    for name in ("eegcodec lossless", "blosc zstd9 shuffle"):
        rows.append(
            {
                "file": path.name,
                "dataset": dataset_of(path),
                "codec": f"{name}, float64 volts",
                **_measure(_codecs()[name], float_chunks),
            }
        )
    return rows


def _flac_bytes(chunks: list[np.ndarray], sfreq: float) -> int:
    """``flac -8``'s bytes over the chunks (each [time, channels]), the smaller of one channel and
    eight channels per stream (:func:`eegcodec.bench.lossless.pcm_best`)."""
    import tempfile

    from .lossless import pcm_best

    with tempfile.TemporaryDirectory() as tmp:
        return sum(pcm_best("flac -8", c.T.astype(np.int16), sfreq, 8, Path(tmp)) for c in chunks)


def run(paths: list[Path], out: Path, chunk_seconds: float = 10.0) -> dict:
    """Benchmark the codecs on ``paths`` (EEG files with integer samples); writes ``out``."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        rows = [row for p in paths for row in _file_rows(Path(p), chunk_seconds)]
    summary = {}
    for row in rows:
        entry = summary.setdefault(row["dataset"], {}).setdefault(row["codec"], [])
        entry.append(row["bits_per_sample"])
    summary = {d: {c: float(np.mean(v)) for c, v in codecs.items()} for d, codecs in summary.items()}
    results = {"hardware": hardware(), "chunk_seconds": chunk_seconds, "rows": rows, "summary": summary}
    write_outputs(out, results, _report(results))
    return results


def _report(results: dict) -> str:
    table = md_table(
        ["file", "codec", "bits/sample", "encode Msamples/s", "decode Msamples/s", "exact", "largest error"],
        [
            [
                r["file"],
                r["codec"],
                r["bits_per_sample"],
                r.get("encode_msamples_s", ""),
                r.get("decode_msamples_s", ""),
                "yes" if r["exact"] else "no",
                r.get("largest_error", 0),
            ]
            for r in results["rows"]
        ],
        {2: ".2f", 3: ".1f", 4: ".1f", 6: ".3g"},
    )
    means = md_table(
        ["dataset", "codec", "mean bits/sample"],
        [[d, c, v] for d, codecs in results["summary"].items() for c, v in codecs.items()],
        {2: ".2f"},
    )
    return (
        "# eegcodec's numcodecs codec against zarr's usual codecs\n\n"
        f"{hardware_line(results['hardware'])}; zarr chunks of {results['chunk_seconds']:g} s x all "
        "channels of each file's integer samples (int16 [time, channels]); max-error in counts.\n\n"
        f"{means}\n\n## Per file\n\n{table}\n"
    )
