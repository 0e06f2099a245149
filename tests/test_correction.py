"""The decoder correction of token files (format version 7): fitted while compressing, kept only
where it pays, applied on decode exactly as the encoder measured it."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import PCMCodec, synthetic_raw

import eegcodec.pipeline as pipeline
from eegcodec.adapt import AdapterConfig
from eegcodec.api import decompress
from eegcodec.chunks import CodedStream, correct, correction_spacing, fit_correction
from eegcodec.errors import CorruptFileError
from eegcodec.format.container import Archive, pack_arrays, unpack_arrays
from eegcodec.format.side import correction_from_arrays, correction_to_arrays
from eegcodec.reader import check_archive


def _codec() -> PCMCodec:
    return PCMCodec(adapter=AdapterConfig(model_rate=160.0, chunk_seconds=8, overlap_seconds=1))


def _compress(raw, depth: int, monkeypatch) -> tuple[bytes, object]:
    """The file and its coded stream (as :meth:`CodedStream.choose_correction` left it)."""
    seen = []
    real = CodedStream.choose_correction
    monkeypatch.setattr(CodedStream, "choose_correction", lambda c, b: seen.append(c) or real(c, b))
    return pipeline.compress_raw(raw, _codec(), n_codebooks=depth), seen[0]


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
    assert Archive.from_bytes(data).header.version == 8
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
