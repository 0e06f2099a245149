"""The .eegc reader cannot be crashed, hung or made to allocate by damaged, spliced or forged files."""

import json
import time
import tracemalloc

import numpy as np
import pytest
import zstandard
from conftest import PCMCodec, synthetic_raw

from eegcodec.api import decompress
from eegcodec.cli import main
from eegcodec.errors import CorruptFileError, EegcodecError
from eegcodec.format.container import Archive, head_json, head_payload
from eegcodec.pipeline import compress_raw
from tools.fuzz import DAMAGE, KINDS, assemble, fuzz, split_sections


@pytest.fixture(scope="module")
def files():
    codec = PCMCodec()
    a = compress_raw(synthetic_raw(n_ch=4, seconds=12, seed=1), codec, n_codebooks=2)
    b = compress_raw(synthetic_raw(n_ch=3, seconds=9, seed=2), codec, n_codebooks=2)
    return a, b, codec


def forge(data: bytes, change) -> bytes:
    """``data`` with its header changed by ``change(head_dict)`` and every checksum recomputed."""
    version, secs = split_sections(data)
    head = json.loads(head_json(secs[0][1], version))
    change(head)
    return assemble(version, [(b"HEAD", head_payload(json.dumps(head).encode(), version))] + secs[1:])


def _refused(data: bytes, codec, match: str | None = None) -> None:
    t0 = time.perf_counter()
    tracemalloc.start()
    try:
        with pytest.raises(EegcodecError, match=match) as info:
            decompress(data, codec=codec)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert "\n" not in str(info.value)
    assert time.perf_counter() - t0 < 10 and peak < 200 * 2**20, (time.perf_counter() - t0, peak)


@pytest.mark.parametrize("tag", [b"CODE", b"SIDE", b"RAWC", b"INFO", b"HEAD"])
def test_sections_swapped_between_files_are_refused(files, tag):
    a, b, codec = files
    version, secs_a = split_sections(a)
    _, secs_b = split_sections(b)
    spliced = assemble(version, [(t, dict(secs_b)[t] if t == tag else p) for t, p in secs_a])  # CRCs valid
    _refused(spliced, codec, "spliced|does not belong|disagree|implies|holds")


@pytest.mark.parametrize("length", [0, 1, -5, 2**40])
def test_forged_chunk_length_is_refused_at_once(files, length):
    a, _, codec = files
    _refused(forge(a, lambda h: h["chunks"].__setitem__("length", length)), codec, "chunks.length")


@pytest.mark.parametrize(
    "field,value",
    [("sfreq", 1e-9), ("sfreq", 1e308), ("n_samples", 10**12), ("n_samples", -1), ("sfreq", "x")],
)
def test_forged_rate_and_length_are_refused_before_allocating(files, field, value):
    a, _, codec = files
    _refused(
        forge(a, lambda h: h["recording"].__setitem__(field, value)),
        codec,
        f"recording.{field}|chunks.frames",
    )


@pytest.mark.parametrize("tag", [b"SIDE", b"RAWC", b"INFO"])
def test_compression_bombs_are_refused_without_inflating(files, tag):
    """A payload inflating to 1 GiB of zeros (a ~30 kB section) is refused after reading at most
    what the header declares for that section."""
    a, _, codec = files
    bomb = zstandard.ZstdCompressor(level=3).compress(bytes(2**30))
    version, secs = split_sections(a)
    secs = [(t, bomb if t == tag else p) for t, p in secs]
    _refused(assemble(version, secs, digests=True), codec, tag.decode())


def test_hostile_json_is_one_line(files):
    a, _, codec = files
    version, secs = split_sections(a)
    for head in (b"[" * 100_000 + b"]" * 100_000, b'{"recording": NaN}', b"\xff\xfe", b"1" * 5000, b"{}"):
        _refused(assemble(version, [(b"HEAD", head_payload(head, version))] + secs[1:]), codec, "header")
    _refused(assemble(version, [(b"HEAD", b"not zstd")] + secs[1:]), codec, "header")
    bomb = zstandard.ZstdCompressor(level=3).compress(bytes(2**30))  # a header inflating to 1 GiB
    _refused(assemble(version, [(b"HEAD", bomb)] + secs[1:]), codec, "header")


@pytest.mark.parametrize(
    "path,value",
    [
        (("codebooks",), 0),
        (("codebooks",), 99),
        (("code_rows",), 99),
        (("chunks", "overlap"), 10**6),
        (("baseline_spacing",), 0),
        (("model", "bits_per_code"), 64),
        (("channels", "coded"), [0, 0, 1, 2]),
        (("side", 0, "shape"), [10**9]),
        (("annotations", "onset"), [1e300, 1, 2]),
        (("montage",), {"positions": [[1e308, 0, 0]], "known": [1]}),
        (("adapter", "model_rate"), 1e-9),
        (("recording", "ch_names"), ["a", "a", "b", "c", "d"]),
        (("fidelity", "measured_prd"), {"median": -1, "p90": 1, "worst": []}),
    ],
)
def test_forged_header_values_are_refused(files, path, value):
    a, _, codec = files

    def change(h):
        node = h
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    _refused(forge(a, change), codec)


def test_forged_scale_gives_an_error_not_1e308_volts(files):
    """Side values are range-checked: a chunk scale forged to 2**1000 V is refused."""
    from eegcodec.format.container import pack_arrays, unpack_arrays

    a, _, codec = files
    arc = Archive.from_bytes(a)
    side = unpack_arrays(arc.side, arc.header.side, arc.header.version)
    side["chunk_scale_log2"][0, 0] = 64 * 1000
    arc.side, arc.header.side = pack_arrays(side, arc.header.version)
    _refused(arc.to_bytes(), codec, "scale")


def test_info_validates_what_it_shows(files, tmp_path, capsys):
    a, _, _ = files
    bad = tmp_path / "forged.eegc"
    bad.write_bytes(forge(a, lambda h: h["chunks"].__setitem__("length", 0)))
    assert main(["info", str(bad)]) == 1
    assert "chunks.length" in capsys.readouterr().err
    from eegcodec.format.container import pack_arrays, unpack_arrays

    arc = Archive.from_bytes(
        a
    )  # side data out of range: the header is fine, decompress refuses, so does info
    side = unpack_arrays(arc.side, arc.header.side, arc.header.version)
    side["chunk_scale_log2"][0, 0] = 64 * 1000
    arc.side, arc.header.side = pack_arrays(side, arc.header.version)
    bad.write_bytes(arc.to_bytes())
    assert main(["info", str(bad)]) == 1
    assert "chunk scales" in capsys.readouterr().err


def test_fuzz_seeded(tmp_path):
    """A few hundred mutants of each kind: only the package's own errors, no hang, no large
    allocation, no silent wrong output from damage or splicing (python tools/fuzz.py for long runs)."""
    res = fuzz(300, seed=7, timeout=20, memory=2**30, bomb_gib=0.25)
    assert res["failures"] == [], res["failures"][:5]
    refused = sum(v for k, v in res["counts"].items() if k.endswith("refused"))
    assert refused >= 250, res["counts"]
    for kind in DAMAGE:
        assert res["counts"].get(f"{kind} different", 0) == 0
    assert {k.split()[0] for k in res["counts"]} == set(KINDS)


def test_old_version_files_are_refused_when_damaged():
    """Versions 1-2 have no section digests; their CRCs and the header checks still catch damage."""
    from pathlib import Path

    data = (Path(__file__).parent / "data" / "v2_pcm.eegc").read_bytes()
    rng = np.random.default_rng(0)
    for _ in range(200):
        bad = bytearray(data)
        bad[int(rng.integers(len(bad)))] ^= 1 << int(rng.integers(8))
        with pytest.raises(CorruptFileError):
            Archive.from_bytes(bytes(bad))
