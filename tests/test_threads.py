"""numpy's BLAS runs on one thread in the model-free modes (compress and decode) and in the
metrics: OpenBLAS's own threads made them several times slower beside another busy core."""

import numpy as np
import pytest
from conftest import synthetic_raw
from threadpoolctl import threadpool_info, threadpool_limits

from eegcodec import api, metrics, pipeline
from eegcodec.chunks import ExactStream, ResidualStream
from eegcodec.format.transform import TransformDecoder


def blas_threads() -> int:
    """The most threads any loaded BLAS library would use now."""
    return max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")


def recording(seen: list[int], fn):
    """``fn`` that first notes :func:`blas_threads` into ``seen``."""

    def wrapped(*args, **kwargs):
        seen.append(blas_threads())
        return fn(*args, **kwargs)

    return wrapped


MODES = [dict(lossless=True), dict(max_error=1e-6), dict(prd=10.0)]


@pytest.mark.parametrize("kwargs", MODES, ids=["lossless", "max-error", "prd"])
def test_model_free_modes_run_numpy_blas_on_one_thread(monkeypatch, tmp_path, kwargs):
    seen_c, seen_d = [], []
    for cls in (ExactStream, ResidualStream):  # the work of compressing, chunk by chunk
        monkeypatch.setattr(cls, "push", recording(seen_c, cls.push))
    monkeypatch.setattr(pipeline, "decode_block", recording(seen_d, pipeline.decode_block))
    monkeypatch.setattr(TransformDecoder, "decode", recording(seen_d, TransformDecoder.decode))
    raw = synthetic_raw(n_ch=4, seconds=70)  # three chunks
    with threadpool_limits(2, user_api="blas"):  # as an unset OPENBLAS_NUM_THREADS on two cores
        data = api.compress(raw, **kwargs)
        assert blas_threads() == 2  # given back after compressing
        api.decompress(data)  # in memory
        api.decompress(data, tmp_path / "back.fif")  # chunk by chunk as MNE writes FIF
        assert blas_threads() == 2
    assert seen_c and seen_d
    assert set(seen_c) == {1} and set(seen_d) == {1}, (seen_c, seen_d)


def test_reconstruction_metrics_run_numpy_blas_on_one_thread(monkeypatch):
    seen = []
    monkeypatch.setattr(metrics, "welch", recording(seen, metrics.welch))
    x = np.random.default_rng(0).normal(size=(3, 1000))
    with threadpool_limits(2, user_api="blas"):
        metrics.reconstruction_metrics(x, x + 0.1, 160.0)
        assert blas_threads() == 2
    assert seen and set(seen) == {1}, seen
