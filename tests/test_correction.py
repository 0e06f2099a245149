"""The decoder correction of token files (format version 7; its spatial mix: version 8): fitted
while compressing, kept only where it pays, applied on decode exactly as the encoder measured it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import LeakyPCMCodec, PCMCodec, synthetic_raw

import eegcodec.pipeline as pipeline
from eegcodec.adapt import AdapterConfig
from eegcodec.api import decompress
from eegcodec.chunks import CodedStream
from eegcodec.correction import (
    apply_mix,
    correct,
    correction_candidates,
    correction_spacing,
    fit_correction,
    fit_mix,
)
from eegcodec.errors import CorruptFileError
from eegcodec.format.container import VERSION, Archive, pack_arrays, unpack_arrays
from eegcodec.format.header_checks import MIX_VERSION
from eegcodec.format.side import correction_from_arrays, correction_to_arrays, mix_from_arrays, mix_to_arrays
from eegcodec.pipeline import decompress_archive
from eegcodec.reader import check_archive

DATA = Path(__file__).parent / "data"


def _codec() -> PCMCodec:
    return PCMCodec(adapter=AdapterConfig(model_rate=160.0, chunk_seconds=8, overlap_seconds=1))


def _compress(raw, depth: int, monkeypatch, codec=None) -> tuple[bytes, object]:
    """The file and its coded stream (as :meth:`CodedStream.choose_correction` left it)."""
    seen = []
    real = CodedStream.choose_correction
    monkeypatch.setattr(CodedStream, "choose_correction", lambda c, b: seen.append(c) or real(c, b))
    return pipeline.compress_raw(raw, codec or _codec(), n_codebooks=depth), seen[0]


def _names(data: bytes) -> list[str]:
    return [a.name for a in Archive.from_bytes(data).header.side]


def test_corrected_file_decodes_to_what_the_encoder_measured(monkeypatch):
    # two of the PCM codec's four codebooks: half of each frame's samples are lost, and a
    # filter over the rest wins much of them back
    raw = synthetic_raw(n_ch=3, seconds=40, stim=False)
    raw._data[1, 3000:3100] = np.nan
    raw._data[0, 2000:2040] += 400e-6  # an artefact the codec misses: stored exactly
    data, coded = _compress(raw, 2, monkeypatch)
    assert "correction_taps" in _names(data) and Archive.from_bytes(data).header.version >= 7
    plain, corrected = (coded.options[use][0].errors for use in (False, True))
    assert corrected.sum() < 0.5 * plain.sum()
    x = raw.get_data()[coded.picks]
    decoded = decompress(data, codec=_codec()).get_data()[coded.picks]
    assert np.array_equal(np.isnan(decoded), np.isnan(x))
    errors = np.nansum((x - decoded) ** 2, axis=1)
    np.testing.assert_allclose(errors, corrected, rtol=1e-9)  # float path: a stated tolerance
    rows, idx, values = check_archive(Archive.from_bytes(data)).outliers
    assert np.array_equal(decoded[rows, idx], values)  # exactly stored, found after the correction
    assert rows.size and np.array_equal(
        np.sort(idx), np.sort(np.concatenate([o[1] for o in coded._outliers]))
    )


def test_correction_is_left_out_where_it_does_not_pay(monkeypatch):
    raw = synthetic_raw(n_ch=3, seconds=40, stim=False)
    data, coded = _compress(raw, 4, monkeypatch)  # all four codebooks: near-lossless
    assert coded.options is not None and not any(n.startswith("correction") for n in _names(data))
    assert Archive.from_bytes(data).header.version == VERSION
    decoded = decompress(data, codec=_codec()).get_data()[coded.picks]
    errors = np.nansum((raw.get_data()[coded.picks] - decoded) ** 2, axis=1)
    np.testing.assert_allclose(errors, coded.options[False][0].errors, rtol=1e-9)


def test_least_squares_taps_undo_a_known_filter():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4000))
    blur = np.array([[0.0, 0.1, 0.2, 0.5, 0.2, 0.1, 0.0], [0.0, 0.0, 0.0, 0.8, 0.0, 0.0, 0.0]])
    y = correct(x, np.zeros_like(x), blur)  # a filtered copy: its inverse is near a 7-tap filter
    deviation = fit_correction(x - y, y, np.ones_like(x))
    arrays = correction_to_arrays(deviation)
    taps = correction_from_arrays(arrays)
    assert np.abs(arrays["correction_taps"]).max() <= 127
    assert np.allclose(taps[1], [0, 0, 0, 1.25, 0, 0, 0], atol=2e-3)
    fixed = correct(y, np.zeros_like(y), taps)
    assert np.sum((x - fixed) ** 2) < 0.2 * np.sum((x - y) ** 2)


def _with_side(data: bytes, change, version: int | None = None) -> bytes:
    """``data`` with its side arrays changed by ``change(dict)`` (and its version, if given)."""
    archive = Archive.from_bytes(data)
    h = archive.header
    side = unpack_arrays(archive.side, h.side, h.version)
    change(side)
    h.version = version or h.version
    archive.side, h.side = pack_arrays(side, h.version)
    return archive.to_bytes()


def _drop(name):
    return lambda side: side.pop(name)


def _set(name, value):
    return lambda side: side.__setitem__(name, value)


@pytest.fixture(scope="module")
def corrected_file():
    raw = synthetic_raw(n_ch=3, seconds=20, stim=False)
    data = pipeline.compress_raw(raw, _codec(), n_codebooks=2)
    assert "correction_taps" in _names(data)
    return data


@pytest.mark.parametrize(
    "change",
    [
        _set("correction_taps", np.full((3, 7), 128)),  # codes within -127..127
        _set("correction_taps", np.zeros((3, 6), np.int64)),  # 7 taps per coded channel
        _set("correction_taps", np.zeros((2, 7), np.int64)),
        _set("correction_scale_log2", np.array([-3, 1, -3])),  # a step of at most 1
        _set("correction_scale_log2", np.array([-3, -31, -3])),
        _drop("correction_scale_log2"),  # both arrays or neither
        _drop("correction_taps"),
    ],
)
def test_damaged_correction_is_refused(corrected_file, change):
    with pytest.raises(CorruptFileError):
        decompress(_with_side(corrected_file, change), codec=_codec())


def test_correction_before_version_7_is_refused(corrected_file):
    with pytest.raises(CorruptFileError, match="not a side array of version 6"):
        Archive.from_bytes(_with_side(corrected_file, lambda side: None, version=6))


@pytest.mark.parametrize("spacing", [1, 3])
def test_correction_is_the_filter_the_format_describes(spacing):
    rng = np.random.default_rng(1)
    y, base = rng.standard_normal((2, 50)), rng.standard_normal((2, 50))
    taps = rng.standard_normal((2, 7))
    padded = np.pad(y, ((0, 0), (3 * spacing, 3 * spacing)), mode="edge")
    want = base + np.array(
        [
            [sum(taps[c, k] * padded[c, t + k * spacing] for k in range(7)) for t in range(50)]
            for c in range(2)
        ]
    )
    np.testing.assert_allclose(correct(base + y, base, taps, spacing), want, rtol=0, atol=1e-12)
    assert correction_spacing(500.0, 160.0) == 3 and correction_spacing(160.0, 160.0) == 1
    assert correction_spacing(100.0, 160.0) == 1 and correction_spacing(400.0, 160.0) == 3  # half up


def _leaky() -> LeakyPCMCodec:
    return LeakyPCMCodec(adapter=AdapterConfig(model_rate=160.0, chunk_seconds=8, overlap_seconds=1))


@pytest.fixture(scope="module")
def mixed_file():
    raw = synthetic_raw(n_ch=6, seconds=40, stim=False)
    raw._data[2, 2000:2040] += 400e-6  # an artefact the codec misses: stored exactly
    return raw, pipeline.compress_raw(raw, _leaky(), n_codebooks=4)


def test_spatial_mix_file_decodes_to_what_the_encoder_measured(monkeypatch):
    raw = synthetic_raw(n_ch=6, seconds=40, stim=False)
    raw._data[4, 3000:3100] = np.nan
    data, coded = _compress(raw, 4, monkeypatch, _leaky())
    archive = Archive.from_bytes(data)
    assert "correction_mix_in" in _names(data) and archive.header.version >= MIX_VERSION
    plain, corrected = (coded.options[use][0].errors for use in (False, True))
    assert corrected.sum() < 0.1 * plain.sum()  # the leak is undone
    x = raw.get_data()[coded.picks]
    decoded = decompress(data, codec=_leaky()).get_data()[coded.picks]
    assert np.array_equal(np.isnan(decoded), np.isnan(x))
    errors = np.nansum((x - decoded) ** 2, axis=1)
    np.testing.assert_allclose(errors, corrected, rtol=1e-9)  # float path: a stated tolerance
    assert check_archive(archive).mix is not None


def test_spatial_mix_is_refused_by_a_version_7_reader(mixed_file):
    _, data = mixed_file
    with pytest.raises(CorruptFileError, match="not a side array of version 7"):
        Archive.from_bytes(_with_side(data, lambda side: None, version=7))


@pytest.mark.parametrize(
    "change",
    [
        _set("correction_mix_in", np.full((1, 6), 128)),  # codes within -127..127
        _set("correction_mix_out", np.full((1, 6), -128)),
        _set("correction_mix_in", np.zeros((1, 5), np.int64)),  # a weight per coded channel
        _set("correction_mix_log2", np.array([[11, 0]])),  # steps within 2**-40..2**10
        _set("correction_mix_log2", np.array([[0, -41]])),
        _set("correction_mix_log2", np.zeros((2, 2), np.int64)),  # one step pair per component
        _drop("correction_mix_log2"),  # all three or none
        _drop("correction_mix_in"),
        _drop("correction_taps"),  # no mix without the taps
    ],
)
def test_damaged_spatial_mix_is_refused(mixed_file, change):
    _, data = mixed_file
    with pytest.raises(CorruptFileError):
        decompress(_with_side(data, change), codec=_leaky())


def test_spatial_mix_beyond_its_rank_is_refused(mixed_file):
    _, data = mixed_file

    def widen(side):
        for name in ("correction_mix_in", "correction_mix_out", "correction_mix_log2"):
            side[name] = np.repeat(side[name][:1], 5, axis=0)

    with pytest.raises(CorruptFileError, match="mix out of range"):
        decompress(_with_side(data, widen), codec=_leaky())


def test_spatial_mix_is_the_sum_the_format_describes():
    rng = np.random.default_rng(2)
    y, base = rng.standard_normal((4, 30)), rng.standard_normal((4, 30))
    into, out = rng.standard_normal((2, 4)), rng.standard_normal((2, 4))
    want = np.einsum("sc,sj,jt->ct", out, into, y)
    np.testing.assert_allclose(apply_mix(y, into, out), want, rtol=0, atol=1e-12)
    taps = np.zeros((4, 7))
    taps[:, 3] = 1.0
    np.testing.assert_allclose(correct(base + y, base, taps, 1, (into, out)), base + y + want, atol=1e-12)


def test_mix_codes_round_trip_within_their_step():
    rng = np.random.default_rng(3)
    into, out = rng.standard_normal((3, 8)) * [[1e-2], [1.0], [40.0]], rng.standard_normal((3, 8))
    arrays = mix_to_arrays(into, out)
    assert np.abs(arrays["correction_mix_in"]).max() <= 31 and arrays["correction_mix_log2"].shape == (3, 2)
    back_in, back_out = mix_from_arrays(arrays)
    steps = np.ldexp(1.0, arrays["correction_mix_log2"])
    assert np.all(np.abs(back_in - into) <= steps[:, :1] / 2)
    assert np.all(np.abs(back_out - out) <= steps[:, 1:] / 2)


def test_least_squares_mix_finds_a_known_leak():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 6000))
    leak = np.full(5, 0.2)
    y = x + np.outer(leak, x.mean(axis=0))  # every row leaks the rows' mean
    weight = np.ones_like(x)
    weight[1, :100] = 0  # samples that do not count
    into, out = fit_mix(x - y, y, weight, 1)
    fixed = y + apply_mix(y, into, out)
    assert np.sum((x - fixed) ** 2) < 1e-3 * np.sum((x - y) ** 2)
    candidates = correction_candidates(x - y, y, weight)
    assert candidates[0] == ({}, 1.0) and min(left for _, left in candidates) < 0.1  # quantised


def test_version_7_correction_file_decodes_unchanged():
    """A token file with the decoder correction written by eegcodec 0.7 (format version 7, before
    the spatial mix) decodes to the samples it decoded to then, within FLOAT_TOLERANCE."""
    from test_pipeline import assert_decoded_matches

    arc = Archive.from_bytes((DATA / "v7_tokens_correction.eegc").read_bytes())
    assert arc.header.version == 7 and "correction_taps" in [a.name for a in arc.header.side]
    want = np.load(DATA / "v7_correction_decoded.npz")["v7_tokens_correction"]
    assert_decoded_matches(arc, decompress_archive(arc, _codec()).get_data(), want)
