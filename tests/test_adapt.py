"""Adapter building blocks: chunk layout, cross-fade, baseline, resampling, settings."""

import numpy as np
import pytest

from eegcodec.adapt import (
    AdapterConfig,
    Baseline,
    ChunkAdapter,
    ChunkLayout,
    OverlapAdd,
    resample_ratio,
    robust_scale,
    round_scale,
    scale_to_code,
)
from eegcodec.errors import EegcodecError


@pytest.mark.parametrize(
    "n,length,overlap", [(1, 10, 2), (10, 10, 2), (11, 10, 2), (95, 10, 3), (1000, 64, 0)]
)
def test_chunks_cover_the_recording(n, length, overlap):
    layout = ChunkLayout(n, length, overlap)
    chunks = layout.chunks()
    assert chunks[0][0] == 0 and chunks[-1][1] == n
    for (a0, b0), (a1, b1) in zip(chunks, chunks[1:]):
        assert a1 == a0 + layout.stride and b0 - a1 == overlap and b1 - a1 > overlap


def test_overlap_add_of_consistent_chunks_is_identity():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 257))
    layout = ChunkLayout(257, 40, 8)
    ola = OverlapAdd(layout)
    out = np.full_like(x, np.nan)
    for a, b in layout.chunks():
        s, block = ola.push(a, b, x[:, a:b])
        out[:, s : s + block.shape[1]] = block
    np.testing.assert_allclose(out, x)


def test_overlap_add_crossfades_linearly():
    layout = ChunkLayout(12, 8, 4)
    ola = OverlapAdd(layout)
    s0, b0 = ola.push(0, 8, np.zeros((1, 8)))
    s1, b1 = ola.push(4, 12, np.ones((1, 8)))
    assert (s0, b0.shape[1], s1, b1.shape[1]) == (0, 4, 4, 8)
    np.testing.assert_allclose(b1[0, :4], [0.125, 0.375, 0.625, 0.875])


def test_baseline_interpolates_quantised_knots():
    means = np.array([[0.0, 1.0, np.nan, 3.0]])
    base = Baseline.fit(means, noise=np.array([0.625]), spacing=10, step_ratio=0.2)  # step 0.125
    np.testing.assert_array_equal(base.knots_q, [[0, 8, 16, 24]])  # NaN block filled from neighbours
    v = base.values(0, 40)[0]
    assert v[0] == 0.0
    np.testing.assert_allclose(v[[4, 5, 14, 15]], [0.0, 0.05, 0.95, 1.05], atol=1e-12)
    assert v[-1] == 3.0


def test_baseline_side_arrays_give_back_the_same_baseline():
    rng = np.random.default_rng(0)
    drift = np.cumsum(rng.normal(size=50)) * 3e-5  # shared by all channels
    means = drift + np.cumsum(rng.normal(size=(6, 50)), axis=1) * 1e-6 + rng.normal(size=(6, 1)) * 1e-4
    noise = rng.uniform(1e-5, 2e-5, size=6)  # similar noise on every electrode, as in real EEG
    base = Baseline.fit(means, noise, spacing=160, step_ratio=0.2)
    arrays = base.to_arrays()
    assert set(arrays) == set(Baseline.ARRAYS)
    back = Baseline.from_arrays(arrays, spacing=160)
    np.testing.assert_array_equal(back.knots_q, base.knots_q)
    np.testing.assert_array_equal(back.step, base.step)
    # removing the shared drift leaves smaller integers than plain time differences
    plain = np.diff(base.knots_q, axis=1)
    assert np.abs(arrays["baseline_knot_deltas"][:, 1:]).mean() < 0.5 * np.abs(plain).mean()


def test_scales_round_to_storable_values():
    s = np.geomspace(1e-9, 1e-2, 200)
    r = round_scale(s)
    assert np.abs(r / s - 1).max() < 2 ** (1 / 128) - 1 + 1e-12  # half a 1/64-octave step
    np.testing.assert_array_equal(round_scale(r), r)  # storable values are kept as they are
    np.testing.assert_array_equal(scale_to_code(r), scale_to_code(s))


def test_resample_ratio_and_inverse_lengths():
    assert resample_ratio(500, 160) == (8, 25)
    assert resample_ratio(160, 160) == (1, 1)
    ad = ChunkAdapter(AdapterConfig(model_rate=160.0), 500.0, hop=64)
    x = np.random.default_rng(0).normal(size=(2, 1234))
    z = ad.forward(x, np.ones(2))
    assert z.shape == (2, ad.n_frames(1234) * 64) and z.dtype == np.float32
    assert ad.inverse(z, np.ones(2), 1234).shape == (2, 1234)


def test_robust_scale_ignores_spikes_and_handles_flat_rows():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5000))
    x[0, :20] = 1000.0
    x[1] = 0.0
    s = robust_scale(x, fallback=np.array([1.0, 0.25]))
    assert 0.9 < s[0] < 1.15 and s[1] == 0.25


def test_invalid_settings_name_the_parameter():
    with pytest.raises(EegcodecError, match="overlap_seconds"):
        AdapterConfig(chunk_seconds=2.0, overlap_seconds=1.5)
    with pytest.raises(EegcodecError, match="unknown adapter settings"):
        AdapterConfig.from_dict({"model_rate": 160.0, "bogus": 1})
