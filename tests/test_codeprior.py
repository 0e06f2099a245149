"""The learned code prior: exact integer arithmetic, round trips, checksums, thread counts,
files coded with a model's prior, and the train-prior verb."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from decimal import Decimal, getcontext

import numpy as np
import pytest
from conftest import synthetic_raw

from eegcodec import codeprior
from eegcodec.cli import main
from eegcodec.codeprior import EXP2, CodePrior, prior_path
from eegcodec.errors import CorruptFileError, ModelMismatchError
from eegcodec.format.container import Archive
from eegcodec.io import write_raw
from eegcodec.pipeline import compress_raw, decompress_archive


def random_prior(levels=3, size=64, dim=4, hidden=16, seed=0) -> CodePrior:
    """A prior with random small-integer weights (what quantisation produces, untrained)."""
    rng = np.random.default_rng(seed)
    n_in = 2 * levels * dim + levels
    vectors = rng.integers(-127, 128, (levels, size, dim))
    return CodePrior(
        vectors,
        rng.integers(-127, 128, (n_in, hidden)),
        rng.integers(-5000, 5000, hidden),
        2.0**-12,
        rng.integers(-127, 128, (hidden, hidden)),
        rng.integers(-5000, 5000, hidden),
        2.0**-12,
        rng.integers(-127, 128, (hidden, dim)),
        rng.integers(-5000, 5000, dim),
        2.0**-10,
        np.full(levels, 0.01),
        rng.integers(-300, 300, (levels, size)),
    )


def test_exp_table_is_integer_and_exact_enough():
    getcontext().prec = 40
    want = [int(Decimal(2) ** 30 * Decimal(2) ** (Decimal(-i) / 64)) for i in range(0, len(EXP2), 97)]
    assert EXP2.dtype == np.int64 and np.all(np.diff(EXP2) < 0) and EXP2[-1] > 2**9
    assert np.abs(EXP2[::97] - np.array(want)).max() <= 64  # truncation error of the integer recursion


def test_round_trip_checksum_and_damage():
    prior = random_prior()
    codes = np.random.default_rng(1).integers(0, 64, (4, 2, 300))  # rows, depth (of 3), frames
    frame = codeprior.encode(prior, codes)
    np.testing.assert_array_equal(codeprior.decode(prior, frame, 4, 2, 300), codes)
    bad = bytearray(frame)
    bad[len(bad) // 2] ^= 0x10
    with pytest.raises(CorruptFileError, match="damaged|checksum"):
        codeprior.decode(prior, bytes(bad), 4, 2, 300)
    with pytest.raises(CorruptFileError, match="checksum"):  # another prior than the encoder's
        codeprior.decode(random_prior(seed=5), frame, 4, 2, 300)
    with pytest.raises(CorruptFileError, match="truncated"):
        codeprior.decode(prior, frame[:-1], 4, 2, 300)


DECODE = """
import sys, hashlib, numpy as np
from eegcodec import codeprior
prior = codeprior.CodePrior.from_bytes(open(sys.argv[1], "rb").read())
codes = codeprior.decode(prior, open(sys.argv[2], "rb").read(), 3, 3, 5000)
print(hashlib.sha256(codes.tobytes()).hexdigest())
"""


def test_decoding_is_identical_across_thread_counts(tmp_path):
    """BLAS threads change summation order; the prior's integer products make it irrelevant."""
    prior = random_prior(hidden=64, seed=2)
    codes = np.random.default_rng(3).integers(0, 64, (3, 3, 5000))
    (tmp_path / "p.npz").write_bytes(prior.to_bytes())
    (tmp_path / "c.bin").write_bytes(codeprior.encode(prior, codes))
    out = set()
    for threads in ("1", "2"):
        env = {
            **os.environ,
            "OMP_NUM_THREADS": threads,
            "OPENBLAS_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads,
        }
        run = subprocess.run(
            [sys.executable, "-c", DECODE, str(tmp_path / "p.npz"), str(tmp_path / "c.bin")],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        out.add(run.stdout.strip())
    import hashlib

    assert out == {hashlib.sha256(codes.astype(np.int64).tobytes()).hexdigest()}


def test_files_use_the_models_prior(tmp_path, tiny_dac_path):
    """With NAME.prior.npz beside the weights, compress entropy-codes the tokens under it (same
    samples back); without it, or with another prior, decoding is refused with one line."""
    from eegcodec.backends.registry import load_codec
    from eegcodec.train.prior import PriorTrainConfig, fit

    weights = tmp_path / "tiny.pth"
    shutil.copy(tiny_dac_path, weights)
    plain_codec = load_codec(weights)
    raws = [synthetic_raw(n_ch=6, seconds=20, seed=s, stim=False) for s in range(3)]
    prior = fit(plain_codec, raws, PriorTrainConfig(steps=200, hidden=32))
    prior_path(weights).write_bytes(prior.to_bytes())
    codec = load_codec(weights)
    arc = Archive.from_bytes(compress_raw(raws[0], codec, n_codebooks=2))
    plain = Archive.from_bytes(compress_raw(raws[0], plain_codec, n_codebooks=2))
    assert arc.header.code_coder == "prior" and arc.header.prior_sha256 == prior.sha256()
    assert plain.header.code_coder == "packed" and len(arc.codes) < len(plain.codes)
    np.testing.assert_array_equal(
        decompress_archive(arc, codec).get_data(), decompress_archive(plain, plain_codec).get_data()
    )
    with pytest.raises(ModelMismatchError, match="lacks"):
        decompress_archive(arc, plain_codec)
    codec.prior = random_prior(levels=3, size=64, dim=4)
    with pytest.raises(ModelMismatchError, match="prior"):
        decompress_archive(arc, codec)
    # a new prior beside the weights: files written under the old one decode from the copy kept
    # as NAME.prior.<first 12 of its SHA-256>.npz
    kept = weights.with_name(f"tiny.prior.{prior.sha256()[:12]}.npz")
    kept.write_bytes(prior.to_bytes())
    prior_path(weights).write_bytes(random_prior(levels=3, size=64, dim=4).to_bytes())
    renewed = load_codec(weights)
    assert renewed.prior.sha256() != prior.sha256()
    np.testing.assert_array_equal(
        decompress_archive(arc, renewed).get_data(), decompress_archive(plain, plain_codec).get_data()
    )
    kept.write_bytes(random_prior(levels=3, size=64, dim=4, seed=9).to_bytes())  # the name lies
    with pytest.raises(ModelMismatchError, match=prior.sha256()[:12]):
        decompress_archive(arc, load_codec(weights))
    codec.prior = random_prior(levels=3, size=64, dim=4)
    worse = Archive.from_bytes(compress_raw(raws[0], codec, n_codebooks=2))  # a prior that costs bits
    assert worse.header.code_coder == "packed" and worse.codes == plain.codes  # is not used
    from test_reader_safety import forge

    data = arc.to_bytes()
    for change, match in (
        (lambda h: h["coders"].__setitem__("CODE", "zip"), "coders.CODE"),
        (lambda h: h["coders"].__setitem__("prior_sha256", "00"), "prior_sha256"),
        (lambda h: h["coders"].__setitem__("prior_sha256", 7), "prior_sha256"),  # fuzz found: not a string
        (lambda h: h["coders"].update(CODE="packed", prior_sha256=1.5), "prior_sha256"),
        (lambda h: h["coders"].__setitem__("CODE", "packed"), "prior_sha256|CODE section"),
    ):
        with pytest.raises(CorruptFileError, match=match):
            Archive.from_bytes(forge(data, change))


def test_train_prior_verb(tmp_path, tiny_dac_path, capsys):
    weights = tmp_path / "m.pth"
    shutil.copy(tiny_dac_path, weights)
    data = tmp_path / "data"
    data.mkdir()
    write_raw(synthetic_raw(n_ch=4, seconds=12, stim=False), data / "a.edf")
    args = [
        "train-prior",
        "--model",
        str(weights),
        "--train",
        str(data),
        "--steps",
        "20",
        "--crop",
        "10",
        "-q",
    ]
    assert main(args) == 0 and prior_path(weights).is_file()
    assert main(args) == 1 and "exists" in capsys.readouterr().err  # never overwritten without --force
    first = prior_path(weights).read_bytes()
    assert main([*args, "--force", "--steps", "21"]) == 0
    kept = weights.with_name(f"{weights.stem}.prior.{hashlib.sha256(first).hexdigest()[:12]}.npz")
    assert kept.read_bytes() == first != prior_path(weights).read_bytes()  # the replaced one is kept


def test_compiled_and_numpy_weights_agree():
    """The numba loop (int32) and the numpy fallback (float32) give the same bits, with logits
    as small as the shipped priors' and close to the bound where the int32 loop is used."""
    if codeprior._weights_loop is None:
        pytest.skip("numba is not installed; only the numpy path exists")
    q = np.random.default_rng(6).integers(-127, 128, (300, 8)).astype(np.int32)
    for logit_scale in (0.01, 0.25, 40.0):  # largest |logit| about 1.3e3, 3.2e4, 5.2e6 (bound 2**23)
        prior = random_prior(size=256, dim=8, seed=4)
        prior = replace(prior, logit_scale=np.full(3, logit_scale))
        assert prior._int_logits
        for level in range(3):
            args = (q, np.zeros(300, np.int64), *prior._codes[level])
            loop = codeprior._weights_loop(
                *args, codeprior._BITS, codeprior._T_MAX, np.empty((300, 256), np.int32)
            )
            numpy = codeprior._weights_numpy(*args)
            np.testing.assert_array_equal(loop, numpy)


def test_priors_beyond_the_int32_bound_take_the_float32_path():
    """Logits too large for exact float32 sums: the loop is not used, the float32 path decides."""
    prior = random_prior(size=256, dim=8, seed=4)
    big = replace(prior, logit_scale=np.full(3, 100.0))
    assert prior._int_logits and not big._int_logits
    own, above = np.zeros((5, 3), np.int64), np.full((5, 3), -1)
    q_path = big.probabilities(own, above, 0, 3)
    assert q_path.shape == (5, 256) and np.isfinite(q_path).all()


def test_first_layer_on_the_non_zero_inputs_equals_the_full_context():
    """The first layer sees only the inputs that can be non-zero; its integer sums, and so the
    weights, equal those over the whole context vector (the formulation files were written with)."""
    prior = random_prior(levels=4, size=64, dim=4, hidden=16, seed=8)
    rng = np.random.default_rng(9)
    n_levels, _, dim = prior.vectors.shape
    for level, depth in [(0, 1), (0, 4), (2, 3), (3, 4)]:
        own = rng.integers(0, 64, (50, n_levels))
        own[:, level:] = -1
        above = rng.integers(0, 64, (50, n_levels))
        above[:, depth:] = -1
        above[::7, :] = -1  # some rows have no row above
        lv = np.arange(n_levels)
        vec_own = prior._vec32[lv, np.clip(own, 0, None)] * (lv < level)[None, :, None]
        vec_above = prior._vec32[lv, np.clip(above, 0, None)] * ((above >= 0) & (lv < depth))[..., None]
        onehot = np.zeros((50, n_levels), np.float32)
        onehot[:, level] = 127
        full = np.concatenate([vec_own.reshape(50, -1), vec_above.reshape(50, -1), onehot], 1)
        x, w1 = prior._context(own, above, level, depth)
        np.testing.assert_array_equal(prior._layer(x, 0, 0, 255, w1), prior._layer(full, 0, 0, 255))
    nothing_above = np.full((50, n_levels), -1)
    x, w1 = prior._context(own, nothing_above, 0, 4)  # first row, first codebook: the one-hot alone
    assert x.shape == (50, 1) and w1.shape[0] == 1


def split_prior(levels=3, size=64, dim=4, groups=8, seed=0) -> CodePrior:
    """:func:`random_prior` split into ``groups`` groups (its order and group tables random)."""
    from eegcodec.train.prior import split_order

    rng = np.random.default_rng(seed + 100)
    base = random_prior(levels, size, dim, seed=seed)
    return replace(
        base,
        order=split_order(base.vectors, groups),
        group_vectors=rng.integers(-127, 128, (levels, groups, dim)),
        group_scale=np.full(levels, 0.01),
        group_bias=rng.integers(-300, 300, (levels, groups)),
    )


def test_split_prior_round_trips_and_is_a_distribution():
    """A split prior codes each code as a group and a place: files round-trip, the two steps'
    probabilities multiply to a distribution over the codes, its bytes (and SHA) differ from the
    same prior unsplit, whose bytes are those of before the split existed."""
    prior = split_prior()
    assert prior.split and not random_prior().split
    codes = np.random.default_rng(1).integers(0, 64, (4, 2, 300))
    frame = codeprior.encode(prior, codes)
    np.testing.assert_array_equal(codeprior.decode(prior, frame, 4, 2, 300), codes)
    again = CodePrior.from_bytes(prior.to_bytes())
    assert again.split and again.sha256() == prior.sha256() != random_prior().sha256()
    assert set(np.load(io.BytesIO(random_prior().to_bytes())).files) == {
        "vectors",
        "w1",
        "b1",
        "m1",
        "w2",
        "b2",
        "m2",
        "w3",
        "b3",
        "m3",
        "logit_scale",
        "logit_bias",
    }
    own, above = codes[0].T.copy(), codes[1].T.copy()
    p = prior.probabilities(own, above, 1, 2)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-9)
    with pytest.raises(ValueError, match="split prior"):
        replace(prior, order=prior.order[:, ::-1][:, :-1])


def test_split_prior_compiled_and_numpy_weights_agree():
    if codeprior._weights_loop is None:
        pytest.skip("numba is not installed; only the numpy path exists")
    prior = split_prior(size=256, dim=8, groups=16, seed=3)
    q = np.random.default_rng(6).integers(-127, 128, (300, 8)).astype(np.int32)
    groups = np.random.default_rng(7).integers(0, 16, 300)
    for level in range(3):
        for table, g in ((prior._codes[level], groups), (prior._groups[level], np.zeros(300, np.int64))):
            args = (q, g, *table)
            out = np.empty((300, table[0].shape[2]), np.int32)
            loop = codeprior._weights_loop(*args, codeprior._BITS, codeprior._T_MAX, out)
            np.testing.assert_array_equal(loop, codeprior._weights_numpy(*args))


def test_train_prior_split(tmp_path, tiny_dac_path):
    """``train-prior --split-groups`` writes a split prior that files are coded with and decode from."""
    from eegcodec.backends.registry import load_codec

    weights = tmp_path / "m.pth"
    shutil.copy(tiny_dac_path, weights)
    data = tmp_path / "data"
    data.mkdir()
    write_raw(synthetic_raw(n_ch=4, seconds=12, stim=False), data / "a.edf")
    args = ["train-prior", "--model", str(weights), "--train", str(data), "--steps", "30", "--crop", "10"]
    assert main([*args, "--split-groups", "32", "--hidden", "8", "-q"]) == 0
    codec = load_codec(weights)
    assert codec.prior.split and codec.prior.group_vectors.shape[1] == 32
    raw = synthetic_raw(n_ch=4, seconds=12, stim=False, seed=5)
    arc = Archive.from_bytes(compress_raw(raw, codec, n_codebooks=3))
    assert arc.header.code_coder in ("prior", "packed")
    if arc.header.code_coder == "prior":
        assert arc.header.prior_sha256 == codec.prior.sha256()
    decompress_archive(arc, codec)
    assert main([*args, "--split-groups", "24", "-q", "--force"]) == 1  # not a power of two


def test_network_split_over_threads_gives_the_same_bytes(monkeypatch):
    """Frames split over two threads (each with numpy's BLAS on one thread) give the same stream
    as one thread: each row's integer sums do not depend on the others."""
    prior = split_prior(size=256, dim=8, groups=16, seed=2)
    codes = np.random.default_rng(3).integers(0, 256, (3, 3, 400))
    threaded = codeprior.encode(prior, codes)
    monkeypatch.setattr(codeprior, "MIN_THREAD_FRAMES", 10**9)
    assert codeprior.encode(prior, codes) == threaded
    np.testing.assert_array_equal(codeprior.decode(prior, threaded, 3, 3, 400), codes)
