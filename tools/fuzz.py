"""Fuzz the ``.eegc`` reader: damaged, truncated, spliced, forged and bomb files.

``python tools/fuzz.py --cases 10000`` builds three valid files (synthetic recordings with
coded, exactly stored and NaN channels: two token files of a tiny random DAC, entropy-coded
under a small learned prior, and a ``--prd``
file with its transform layer), mutates them and decodes each
mutant in-process, counting outcomes:

- ``refused``: a one-line :class:`~eegcodec.errors.EegcodecError` (what must happen to damage);
- ``same``: decoded to exactly the original's samples (a mutation that changed nothing decoded,
  e.g. a forged ``created`` date);
- ``different``: decoded to other samples. For bit flips, truncations and splices this is a
  *silent wrong output* and counts as a failure; for forged headers and garbled payloads
  (checksums recomputed, so a valid file by construction) it is allowed;
- ``crash`` (any other exception), ``hang`` (longer than ``--timeout`` s), ``memory`` (traced
  allocations over ``--memory`` bytes beyond the legitimate output): failures.

The test suite runs a few hundred seeded cases of the same mutations (``tests/test_reader_safety.py``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import signal
import struct
import sys
import tempfile
import time
import tracemalloc
import zlib
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):  # run as ``python tools/fuzz.py``: this checkout's eegcodec first
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import zstandard  # noqa: E402

from eegcodec.errors import EegcodecError  # noqa: E402
from eegcodec.format.container import _SECTION_HEAD, MAGIC, head_json, head_payload  # noqa: E402

#: the tiny DAC's constructor arguments (the tests vary one or two of them)
TINY_DAC = dict(
    encoder_dim=4,
    encoder_rates=[2, 4],
    decoder_dim=16,
    decoder_rates=[4, 2],
    n_codebooks=3,
    codebook_size=64,
    codebook_dim=4,
    sample_rate=160,
)
KINDS = ("bitflip", "truncate", "splice", "forge", "forge_digest", "garble", "bomb")
#: mutations after which any decoded output other than the original is a silent wrong output
DAMAGE = ("bitflip", "truncate", "splice")
HOSTILE = (
    0,
    1,
    -1,
    2,
    10**12,
    -(10**12),
    2**63,
    1e-9,
    1e308,
    -1e308,
    0.5,
    "",
    "x" * 3,
    None,
    True,
    [],
    {},
    [0] * 5,
    [[1, 2, 3]],
    {"a": 1},
    "NaN",
)


def split_sections(data: bytes) -> tuple[int, list[tuple[bytes, bytes]]]:
    """(version, [(tag, payload)]) of a well-formed file (no checks: see the container)."""
    version = struct.unpack_from("<H", data, 4)[0]
    pos, out = 8, []
    while pos + _SECTION_HEAD.size <= len(data):
        tag, length = _SECTION_HEAD.unpack_from(data, pos)
        start = pos + _SECTION_HEAD.size
        out.append((tag, data[start : start + length]))
        pos = start + length + 4
    return version, out


def assemble(version: int, sections: list[tuple[bytes, bytes]], digests: bool = False) -> bytes:
    """A file from sections with their CRCs recomputed (and, if ``digests``, the header's
    section digests recomputed too: a forged file that is valid by construction)."""
    if digests and version >= 3:
        head = json.loads(head_json(sections[0][1], version))
        head["sections"] = {t.decode(): hashlib.sha256(p).hexdigest() for t, p in sections[1:-1]}
        sections = [(b"HEAD", head_payload(json.dumps(head).encode(), version))] + sections[1:]
    out = [MAGIC, struct.pack("<HH", version, 0)]
    for tag, payload in sections:
        out += [_SECTION_HEAD.pack(tag, len(payload)), payload, struct.pack("<I", zlib.crc32(tag + payload))]
    return b"".join(out)


def _paths(node, prefix=()):
    """Every path (tuple of keys/indices) into a JSON tree, lists sampled to 4 entries."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i in sorted({0, len(node) - 1, len(node) // 2} & set(range(len(node)))):
            yield from _paths(node[i], prefix + (i,))


def _set_path(tree, path, value):
    if not path:
        return value
    node = tree
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return tree


def _hostile(rng: np.random.Generator, old):
    r = rng.random()
    if r < 0.1:
        deep = 0
        for _ in range(int(rng.integers(50, 100_000))):
            deep = [deep]
        return deep
    if r < 0.2 and isinstance(old, (int, float)) and not isinstance(old, bool):
        return (
            type(old)(old * rng.choice([-1, 0, 2, 1000, 1e-6]))
            if isinstance(old, float)
            else int(old) * int(rng.choice([-1, 0, 2, 1000]))
        )
    if r < 0.3 and isinstance(old, list):
        return old[: int(rng.integers(0, len(old) + 1))] or old + old
    return HOSTILE[int(rng.integers(len(HOSTILE)))]


class _Bombs:
    """zstd payloads that inflate to gigabytes (made once: a few seconds)."""

    def __init__(self, gib: float = 5.0):
        cctx = zstandard.ZstdCompressor(level=1)
        chunk = bytes(64 * 2**20)
        with tempfile.TemporaryFile() as f:
            with cctx.stream_writer(f, closefd=False) as w:
                for _ in range(int(gib * 16)):
                    w.write(chunk)
            f.seek(0)
            self.zeros = f.read()


def mutate(
    kind: str, data: bytes, other: bytes, rng: np.random.Generator, bombs: _Bombs | None = None
) -> bytes:
    """One mutant of ``data`` (``other``: a second valid file to splice from)."""
    version, secs = split_sections(data)
    if kind == "bitflip":
        bad = bytearray(data)
        for _ in range(int(rng.integers(1, 9))):
            i = int(rng.integers(len(bad)))
            bad[i] ^= 1 << int(rng.integers(8))
        return bytes(bad)
    if kind == "truncate":
        return data[: int(rng.integers(len(data)))]
    if kind == "splice":
        _, donor = split_sections(other)
        i = int(rng.integers(len(secs) - 1))
        secs[i] = donor[i]
        return assemble(version, secs)
    if kind in ("forge", "forge_digest"):
        head = json.loads(head_json(secs[0][1], version))
        paths = [p for p in _paths(head) if p and p[0] != "sections"]
        path = paths[int(rng.integers(len(paths)))]
        node = head
        for key in path:
            node = node[key]
        try:
            text = json.dumps(_set_path(head, path, _hostile(rng, node)))
        except RecursionError:
            text = "[" * 100_000 + "]" * 100_000
        secs[0] = (b"HEAD", head_payload(text.encode(), version))
        if kind == "forge_digest":  # also replace a section's payload by random bytes, digests recomputed
            i = int(rng.integers(1, len(secs) - 1))
            secs[i] = (secs[i][0], rng.bytes(int(rng.integers(0, 64))))
        return assemble(version, secs, digests=kind == "forge_digest" and text.startswith("{"))
    if kind == "garble":  # bits flipped inside a coded payload, digests recomputed: the decoders' own checks
        coded = [i for i, (t, p) in enumerate(secs) if t in (b"CODE", b"SIDE", b"RAWC", b"RESD") and p]
        i = coded[int(rng.integers(len(coded)))]
        bad = bytearray(secs[i][1])
        for _ in range(int(rng.integers(1, 9))):
            bad[int(rng.integers(len(bad)))] ^= 1 << int(rng.integers(8))
        secs[i] = (secs[i][0], bytes(bad))
        return assemble(version, secs, digests=True)
    if kind == "bomb":
        tag = [b"SIDE", b"RAWC", b"RESD", b"INFO"][int(rng.integers(4 if version >= 4 else 3))]
        payload = (bombs or _Bombs(0.25)).zeros
        secs = [(t, payload if t == tag else p) for t, p in secs]
        return assemble(version, secs, digests=True)
    raise ValueError(f"unknown mutation {kind!r}")


class _Timeout(Exception):
    pass


def run_case(
    mutant: bytes, codec, reference: np.ndarray, timeout: float, memory: int
) -> tuple[str, str, float, int]:
    """Decode ``mutant``; (outcome, detail, seconds, peak traced bytes); outcomes: module docstring."""
    from eegcodec.format.container import Archive
    from eegcodec.pipeline import decompress_archive

    def alarm(signum, frame):
        raise _Timeout()

    old = signal.signal(signal.SIGALRM, alarm) if hasattr(signal, "SIGALRM") else None
    if old is not None:
        signal.setitimer(signal.ITIMER_REAL, timeout)
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        lazy = _opened_in_place(mutant, codec)  # eegcodec.read_raw's way: damage refused, never a crash
        raw = decompress_archive(Archive.from_bytes(mutant), codec)
        got = raw.get_data()
        same = got.shape == reference.shape and np.array_equal(got, reference, equal_nan=True)
        outcome, detail = ("same" if same else "different"), ""
        if lazy is not None and not np.array_equal(lazy, got, equal_nan=True):
            outcome, detail = "crash", "opened in place, it decodes otherwise"
    except _Timeout:
        outcome, detail = "hang", ""
    except EegcodecError as exc:
        outcome, detail = "refused", type(exc).__name__
        if "\n" in str(exc):
            outcome, detail = "crash", "multi-line message"
    except Exception as exc:  # noqa: BLE001 - every other exception is a finding
        outcome, detail = "crash", f"{type(exc).__name__}: {str(exc)[:120]}"
    finally:
        if old is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    seconds = time.perf_counter() - t0
    if seconds > timeout:
        outcome = "hang"
    if peak > memory + reference.nbytes * 4:
        outcome, detail = "memory", f"{peak / 2**30:.2f} GiB"
    return outcome, detail, seconds, peak


def _opened_in_place(mutant: bytes, codec) -> np.ndarray | None:
    """The samples of ``mutant`` decoded through :func:`eegcodec.format.filearchive.open_archive`
    (a version-8 file's frames read one by one and checked by their digests), or None where it
    is refused (an :class:`EegcodecError`; anything else propagates as a crash)."""
    from eegcodec.format.filearchive import open_archive
    from eegcodec.pipeline import decompress_archive

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mutant.eegc"
        path.write_bytes(mutant)
        try:
            return decompress_archive(open_archive(path), codec).get_data()
        except EegcodecError:
            return None


def save_tiny_dac(path: Path, name: str, adapter) -> Path:
    """A small random DAC (seed 0, 160 Hz, hop 8, 3 codebooks of 64) in DAC's own file format,
    for fuzzing and tests: every code path of a real model at a fraction of its cost."""
    import torch

    from eegcodec.backends.dac.files import save_dac_file
    from eegcodec.backends.dac.network import build_dac

    torch.manual_seed(0)
    save_dac_file(build_dac(dict(TINY_DAC)), path, {"name": name, "adapter": adapter.to_dict()})
    return path


def reference_files(tmp: Path):
    """Three valid files (tokens with 4 and 3 channels, entropy-coded under a small learned prior,
    the first with mains, version 6; a ``prd`` file with its transform layer), their decoded
    samples, and the codec."""
    import mne

    from eegcodec.adapt import AdapterConfig
    from eegcodec.api import decompress
    from eegcodec.backends.registry import load_codec
    from eegcodec.pipeline import compress_raw
    from eegcodec.train.prior import PriorTrainConfig, fit

    path = save_tiny_dac(
        tmp / "fuzz-model.pth",
        "fuzz",
        AdapterConfig(model_rate=160.0, chunk_seconds=4.0, overlap_seconds=0.5),
    )
    codec = load_codec(path)
    rng = np.random.default_rng(0)
    raws = []
    for n_ch, seconds in ((4, 9.3), (3, 6.0), (3, 9.0)):
        n = int(seconds * 160)
        x = np.cumsum(rng.normal(0, 2e-6, (n_ch, n)), axis=1) + rng.normal(0, 10e-6, (n_ch, n))
        x[0, 50:70] = np.nan
        x[1, 400:] += 4e-3
        if n_ch == 4:  # mains on the first file, so its version-6 arrays are fuzzed too
            x += 30e-6 * np.sin(2 * np.pi * 59.97 * np.arange(n) / 160 + rng.uniform(0, 6, (n_ch, 1)))
        stim = np.zeros((1, n))
        stim[0, ::160] = 5
        info = mne.create_info([f"C{i}" for i in range(n_ch)] + ["STI"], 160.0, ["eeg"] * n_ch + ["stim"])
        raw = mne.io.RawArray(np.vstack([x, stim]), info, verbose="error")
        raw.set_annotations(mne.Annotations([1.0, 2.5], [0.5, 0.0], ["a", "b"]))
        raws.append(raw)
    codec.prior = fit(codec, raws[:2], PriorTrainConfig(steps=150, hidden=16))
    files = []
    for raw, kwargs in zip(raws, ({"n_codebooks": 2}, {"n_codebooks": 2}, {"prd": 5})):
        data = compress_raw(raw, codec, **kwargs)
        files.append((data, decompress(data, codec=codec).get_data()))
    return files, codec


def fuzz(
    cases: int,
    seed: int = 0,
    timeout: float = 20.0,
    memory: int = 2**30,
    kinds=KINDS,
    bomb_gib: float = 5.0,
    progress=None,
) -> dict:
    """Run ``cases`` mutants; returns counts per (kind, outcome), failures and the time taken."""
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        files, codec = reference_files(Path(tmp))
        bombs = _Bombs(bomb_gib) if "bomb" in kinds else None
        counts: Counter = Counter()
        failures = []
        slowest, largest = 0.0, 0
        for i in range(cases):
            kind = kinds[i % len(kinds)]
            j, o = rng.choice(len(files), size=2, replace=False)
            (data, ref), (other, _) = files[j], files[o]
            mutant = mutate(kind, data, other, rng, bombs)
            outcome, detail, seconds, peak = run_case(mutant, codec, ref, timeout, memory)
            counts[(kind, outcome)] += 1
            slowest, largest = max(slowest, seconds), max(largest, peak)
            bad = outcome in ("crash", "hang", "memory") or (outcome == "different" and kind in DAMAGE)
            if bad:
                failures.append({"case": i, "kind": kind, "outcome": outcome, "detail": detail})
            if progress and (i + 1) % 500 == 0:
                progress(i + 1, cases)
    return {
        "cases": cases,
        "seed": seed,
        "seconds": round(time.perf_counter() - t0, 1),
        "counts": {f"{k} {o}": c for (k, o), c in sorted(counts.items())},
        "slowest_case_s": round(slowest, 3),
        "largest_traced_allocation_mb": round(largest / 2**20, 1),
        "reference_output_mb": round(max(r.nbytes for _, r in files) / 2**20, 3),
        "failures": failures,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python tools/fuzz.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=20.0, help="seconds after which a case counts as a hang")
    p.add_argument(
        "--memory",
        type=float,
        default=1.0,
        help="GiB of traced allocations beyond the output that count as a failure",
    )
    p.add_argument("--bomb-gib", type=float, default=5.0, help="size the compression bombs inflate to")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = p.parse_args(argv)
    res = fuzz(
        args.cases,
        args.seed,
        args.timeout,
        int(args.memory * 2**30),
        bomb_gib=args.bomb_gib,
        progress=lambda i, n: print(f"{i}/{n} cases", file=sys.stderr, flush=True),
    )
    print(json.dumps(res, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 1 if res["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
