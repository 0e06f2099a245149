"""Metrics against hand-computed cases."""

import numpy as np

from eegcodec.metrics import bits_per_sample, pearson_r, prd, prd_per_channel, snr_db, spectral_error_db


def test_prd_hand_computed():
    x = np.array([[1.0, -1.0, 1.0, -1.0], [2.0, 2.0, 4.0, 4.0]])
    y = x.copy()
    y[0] += 0.1  # error norm 0.2, ref norm 2 -> 10 %
    y[1, 0] += 1.0  # error 1, ref norm sqrt(4*1) = 2 -> 50 %
    np.testing.assert_allclose(prd_per_channel(x, y), [10.0, 50.0])
    assert prd(x, y) == 30.0


def test_snr_and_r():
    x = np.array([[1.0, -1.0, 1.0, -1.0]])
    assert snr_db(x, x * 0.9) == 20.0 * 1 or np.isclose(snr_db(x, x * 0.9), 20.0)
    assert np.isclose(pearson_r(x, 3 * x + 1), 1.0)
    assert snr_db(x, x) == float("inf")


def test_spectral_error():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 2000))
    assert spectral_error_db(x, x, 100.0) == 0.0
    assert np.isclose(spectral_error_db(x, 2 * x, 100.0), 10 * np.log10(4))


def test_bits_per_sample():
    assert bits_per_sample(100, 4, 200) == 1.0
