"""eegcodec.read_raw: an archive read like a recording, decoding only the chunks asked for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import LeakyPCMCodec, PCMCodec, synthetic_raw

import eegcodec
import eegcodec.io
from eegcodec.adapt import AdapterConfig
from eegcodec.chunks import exact_span
from eegcodec.errors import CorruptFileError
from eegcodec.format.container import VERSION, Archive
from eegcodec.format.exact import decode_block
from eegcodec.format.filearchive import FileArchive
from eegcodec.pipeline import decoded_chunks
from eegcodec.reader import read_archive

#: float paths (token reconstruction, transform layer): the same arithmetic either way, kept to
#: within rounding of the samples' magnitude
TOLERANCE = 1e-9


def _raw(seconds=95, n_ch=6):
    raw = synthetic_raw(n_ch=n_ch, seconds=seconds)
    raw._data[1, 3000:3100] = np.nan  # a NaN run inside a coded channel (160 Hz)
    return raw


@pytest.mark.parametrize("mode", [{"lossless": True}, {"max_error": 2e-6}, {"prd": 10}])
def test_windows_and_picks_equal_the_full_decode(tmp_path, mode):
    raw = _raw()
    path = tmp_path / "rec.eegc"
    eegcodec.compress(raw, path, **mode)
    full = eegcodec.decompress(path).get_data()
    lazy = eegcodec.read_raw(path)
    n = full.shape[1]
    rng = np.random.default_rng(0)
    windows = [(0, 10), (n - 700, n), (int(29.5 * 160), int(31 * 160)), (2990, 3200)]  # end, chunk edge, NaN
    windows += [tuple(sorted(rng.integers(0, n, 2))) for _ in range(6)]
    for start, stop in windows:
        picks = sorted(rng.choice(len(raw.ch_names), 3, replace=False))
        got = lazy.get_data(picks=picks, start=start, stop=stop)
        want = full[picks, start:stop]
        if "prd" in mode:
            np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE * np.nanmax(np.abs(full)))
        else:
            np.testing.assert_array_equal(got, want)


def test_token_file_window_equals_full_decode(tmp_path):
    codec = PCMCodec(adapter=AdapterConfig(model_rate=160.0, chunk_seconds=8, overlap_seconds=1))
    raw = synthetic_raw(n_ch=3, seconds=40, stim=False)
    path = tmp_path / "tok.eegc"
    eegcodec.compress(raw, path, codec)
    full = eegcodec.decompress(path, codec=codec).get_data()
    lazy = eegcodec.read_raw(path, codec=codec)
    for start, stop in [(5000, 6000), (1100, 1300), (0, 50), (6000, 6400), (2400, 2300 + 1200)]:
        np.testing.assert_allclose(
            lazy.get_data(start=start, stop=stop), full[:, start:stop], rtol=0, atol=1e-12
        )


@pytest.mark.parametrize("mix", [False, True])
def test_corrected_token_file_window_equals_full_decode(tmp_path, mix):
    # two of the PCM codec's four codebooks: lossy enough for the decoder correction to pay;
    # mix: all four through a decoder that leaks the channels' mean (a spatial mix undoes it)
    adapter = AdapterConfig(model_rate=160.0, chunk_seconds=8, overlap_seconds=1)
    codec = LeakyPCMCodec(adapter=adapter) if mix else PCMCodec(adapter=adapter)
    raw = synthetic_raw(n_ch=4 if mix else 3, seconds=40, stim=False)
    path = tmp_path / "tok.eegc"
    eegcodec.compress(raw, path, codec, n_codebooks=4 if mix else 2)
    assert eegcodec.describe(path)["decoder_correction"]
    assert (eegcodec.describe(path)["decoder_correction_mix"] > 0) == mix
    full = eegcodec.decompress(path, codec=codec).get_data()
    lazy = eegcodec.read_raw(path, codec=codec)
    for start, stop in [(5000, 6000), (1100, 1300), (0, 50), (6000, 6400), (1115, 1125), (6300, 6400)]:
        np.testing.assert_allclose(
            lazy.get_data(start=start, stop=stop), full[:, start:stop], rtol=0, atol=1e-12
        )
    archive = read_archive(path)
    for first in (1, 3):
        a, block = next(decoded_chunks(archive, codec, first=first))
        np.testing.assert_allclose(block, full[:, a : a + block.shape[1]], rtol=0, atol=1e-12)


def test_a_later_chunk_decodes_without_the_ones_before(tmp_path, monkeypatch):
    raw = _raw(seconds=230)  # two lossless chunks (at least 16384 samples each)
    path = tmp_path / "rec.eegc"
    eegcodec.compress(raw, path, lossless=True)
    archive = read_archive(path)
    seen = []
    import eegcodec.pipeline as pipeline

    real = pipeline.decode_block
    monkeypatch.setattr(
        pipeline, "decode_block", lambda frame, *a, **kw: seen.append(frame) or real(frame, *a, **kw)
    )
    starts = [a for a, _ in decoded_chunks(archive, None, first=1)]
    assert starts[0] == archive.header.layout.chunks()[1][0] and len(seen) == len(starts)
    seen.clear()
    eegcodec.read_raw(path).get_data(start=100 * 160, stop=101 * 160)
    assert len(seen) == 1  # only the chunk holding second 100


def test_decompress_writes_only_a_window(tmp_path):
    from eegcodec.cli import main

    raw = _raw(seconds=70)
    path = tmp_path / "rec.eegc"
    eegcodec.compress(raw, path, lossless=True)
    full = eegcodec.decompress(path)
    names = [raw.ch_names[2], raw.ch_names[0]]
    out = tmp_path / "win.fif"
    args = ["decompress", str(path), "-o", str(out), "--tmin", "31.5", "--tmax", "40", "--picks", *names]
    assert main(args) == 0
    got = eegcodec.io.read_raw(out, preload=True)
    assert got.ch_names == names and got.n_times == int(8.5 * 160)
    want = full.copy().pick(names).crop(31.5, 40, include_tmax=False).get_data()
    np.testing.assert_array_equal(got.get_data(), want)
    assert main(["decompress", str(path), "-o", str(tmp_path / "b.fif"), "--picks", "nope"]) == 1
    assert main(["decompress", str(path), "-o", str(tmp_path / "c.fif"), "--tmin", "80"]) == 1


# -- format version 8: the frame index -----------------------------------------------------------

DATA = Path(__file__).parent / "data"


def _random_windows(n: int, n_ch: int, seed: int = 1, count: int = 8):
    """(start, stop, picks): random windows of a recording of ``n`` samples and ``n_ch`` channels."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        start, stop = sorted(rng.integers(0, n + 1, 2))
        yield (
            int(start),
            int(max(stop, start + 1)),
            sorted(rng.choice(n_ch, rng.integers(1, n_ch + 1), replace=False)),
        )


@pytest.mark.parametrize(
    "name",
    ["v8_segmented_lossless", "v8_segmented_max_error", "v7_adaptive_lossless", "v7_adaptive_max_error"],
)
def test_committed_files_read_in_windows_bit_for_bit(name):
    """Versions 7 (no frame index: read whole) and 8 (opened in place) give the committed decode."""
    decoded = "segmented_decoded.npz" if name.startswith("v8") else "adaptive_decoded.npz"
    want = np.load(DATA / decoded)[name]
    raw = eegcodec.read_raw(DATA / f"{name}.eegc")
    for start, stop, picks in _random_windows(want.shape[1], want.shape[0]):
        np.testing.assert_array_equal(
            raw.get_data(picks=picks, start=start, stop=stop), want[picks, start:stop]
        )
    archive = read_archive(DATA / f"{name}.eegc", lazy=True)
    assert isinstance(archive, FileArchive) == name.startswith("v8")


def test_old_prd_file_reads_in_windows():
    path = DATA / "v4_prd.eegc"
    full = eegcodec.decompress(path).get_data()
    raw = eegcodec.read_raw(path)
    for start, stop, picks in _random_windows(full.shape[1], full.shape[0], seed=2):
        got = raw.get_data(picks=picks, start=start, stop=stop)
        np.testing.assert_allclose(
            got, full[picks, start:stop], rtol=0, atol=TOLERANCE * np.nanmax(np.abs(full))
        )


@pytest.mark.parametrize("mode", [{"lossless": True}, {"max_error": 2e-6}, {"prd": 10}, {"n_codebooks": 2}])
def test_version_8_windows_and_picks_equal_the_full_decode(tmp_path, mode):
    """Random windows over several chunks (an 8-s chunk layout for the token file), with a NaN run
    in a coded channel and a channel stored exactly (the stim channel)."""
    raw = _raw(seconds=100, n_ch=5)
    codec = None
    if "n_codebooks" in mode:
        codec = PCMCodec(adapter=AdapterConfig(model_rate=160.0, chunk_seconds=8, overlap_seconds=1))
    path = tmp_path / "rec.eegc"
    eegcodec.compress(raw, path, codec or "default", **mode)
    assert read_archive(path).header.version == VERSION
    full = eegcodec.decompress(path, codec=codec).get_data()
    lazy = eegcodec.read_raw(path, codec=codec)
    exact = "lossless" in mode or "max_error" in mode
    for start, stop, picks in _random_windows(full.shape[1], full.shape[0], seed=3, count=10):
        got, want = lazy.get_data(picks=picks, start=start, stop=stop), full[picks, start:stop]
        if exact:
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
            np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE * np.nanmax(np.abs(full)))
    stim = raw.ch_names.index(raw.copy().pick("stim").ch_names[0])
    np.testing.assert_array_equal(lazy.get_data(picks=[stim]), full[[stim]])  # stored exactly in every mode


def _damage(path: Path, tag: bytes, chunk: int) -> None:
    """Flip one byte in the middle of chunk ``chunk``'s frame of section ``tag``, in place."""
    archive = read_archive(path, lazy=True)
    a, b = archive.offsets(tag)[chunk : chunk + 2]
    data = bytearray(path.read_bytes())
    data[archive.starts[tag] + (int(a) + int(b)) // 2] ^= 0x40
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(  # chunk: the one holding that second (lossless: two chunks of 115 s)
    ("mode", "tag", "chunk", "second"),
    [
        ({"lossless": True}, b"RAWC", 1, 150),
        ({"prd": 10}, b"RESD", 2, 80),
        ({"n_codebooks": 2}, b"CODE", 2, 80),
    ],
)
def test_a_damaged_frame_is_refused_when_read(tmp_path, mode, tag, chunk, second):
    raw = _raw(seconds=230 if tag == b"RAWC" else 95, n_ch=4)
    codec = None
    if tag == b"CODE":
        codec = PCMCodec(adapter=AdapterConfig(model_rate=160.0, chunk_seconds=30, overlap_seconds=1))
    path = tmp_path / "rec.eegc"
    eegcodec.compress(raw, path, codec or "default", **mode)
    want = eegcodec.decompress(path, codec=codec).get_data(start=0, stop=160)
    _damage(path, tag, chunk)
    lazy = eegcodec.read_raw(path, codec=codec)  # opens: the header, side data and info are intact
    np.testing.assert_allclose(lazy.get_data(start=0, stop=160), want, rtol=0, atol=1e-12)
    with pytest.raises(CorruptFileError, match=f"chunk {chunk}'s frame in section {tag.decode()}"):
        lazy.get_data(start=second * 160, stop=(second + 1) * 160)
    with pytest.raises(CorruptFileError):  # whole-file readers check every section
        eegcodec.decompress(path, codec=codec)


def test_a_truncated_file_is_refused_at_open(tmp_path):
    path = tmp_path / "rec.eegc"
    eegcodec.compress(_raw(seconds=40, n_ch=3), path, lossless=True)
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(CorruptFileError):
        eegcodec.read_raw(path)


def test_frame_digests_must_fit_the_header():
    data = (DATA / "v8_segmented_lossless.eegc").read_bytes()
    archive = Archive.from_bytes(data)
    archive.header.frame_digests["RAWC"] = ["00" * 8] * len(archive.header.frame_digests["RAWC"])
    with pytest.raises(CorruptFileError, match="fails its digest"):
        Archive.from_bytes(archive.to_bytes())
    archive.header.frame_digests["RAWC"] = []
    with pytest.raises(CorruptFileError, match="frame_digests"):
        Archive.from_bytes(archive.to_bytes())


def test_decode_block_takes_a_window():
    archive = Archive.from_bytes((DATA / "v8_segmented_lossless.eegc").read_bytes())
    h = archive.header
    n = exact_span(h.layout, *next(iter(h.layout.chunks())))[1]  # the samples of chunk 0
    whole = decode_block(archive.frame(b"RAWC", 0), len(h.lossless), n)
    for start, stop in [(0, n), (5, 17), (n - 3, n), (100, 100)]:
        np.testing.assert_array_equal(
            decode_block(archive.frame(b"RAWC", 0), len(h.lossless), n, start, stop), whole[:, start:stop]
        )
    with pytest.raises(ValueError):
        decode_block(archive.frame(b"RAWC", 0), len(h.lossless), n, 10, n + 1)


def test_a_token_window_past_the_cross_fade_decodes_one_chunk(tmp_path, monkeypatch):
    codec = PCMCodec(adapter=AdapterConfig(model_rate=160.0, chunk_seconds=8, overlap_seconds=1))
    raw = synthetic_raw(n_ch=3, seconds=40, stim=False)
    path = tmp_path / "tok.eegc"
    eegcodec.compress(raw, path, codec)
    full = eegcodec.decompress(path, codec=codec).get_data()
    layout = read_archive(path).header.layout
    start = layout.chunks()[2][0]  # chunk 2's first own sample; its first `overlap` are cross-faded
    calls = []
    real = codec.decode_channels
    monkeypatch.setattr(codec, "decode_channels", lambda *a: calls.append(1) or real(*a))
    lazy = eegcodec.read_raw(path, codec=codec)
    windows = [(start + layout.overlap + 5, start + layout.overlap + 300), (start, start + 20)]
    windows += [(start + 20, start + 3 * layout.stride)]  # on from there, across two more chunks
    counts = []
    for a, b in windows:
        np.testing.assert_allclose(lazy.get_data(start=a, stop=b), full[:, a:b], rtol=0, atol=1e-12)
        counts.append(len(calls))
    assert counts[0] == 1  # chunk 2 alone: the window needs none of chunk 1's tail
    assert counts[1] == 3  # the cross-fade is read: chunks 1 and 2


def test_exact_frames_are_asked_for_the_window_on(tmp_path, monkeypatch):
    """A read from the middle of a chunk asks ``decode_block`` for the window's samples alone (a
    channel mode whose frames decode a window alone decodes only those), a read on from there for
    the rest of the chunk; the values are the same."""
    import eegcodec.pipeline as pipeline

    raw = _raw(seconds=230)  # two chunks
    path = tmp_path / "rec.eegc"
    eegcodec.compress(raw, path, lossless=True)
    full = eegcodec.decompress(path).get_data()
    asked = []
    real = pipeline.decode_block
    monkeypatch.setattr(pipeline, "decode_block", lambda *a, **kw: asked.append(a[3:5]) or real(*a, **kw))
    lazy = eegcodec.read_raw(path)
    layout = read_archive(path).header.layout
    chunk1, end = exact_span(layout, *layout.chunks()[1])
    own = end - chunk1
    for a, b in [(500, 900), (900, 1300), (100, 200)]:
        np.testing.assert_array_equal(
            lazy.get_data(start=chunk1 + a, stop=chunk1 + b), full[:, chunk1 + a : chunk1 + b]
        )
    # the window; the rest of its chunk once read on; before what was decoded: read again from there
    assert asked == [(500, 900), (900, own), (100, 200)]
