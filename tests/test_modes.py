"""Fidelity modes: one registry, options checked in one place, and a new mode is one class plus
one registry line (the demonstration mode below)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
from conftest import synthetic_raw

import eegcodec
from eegcodec import modes
from eegcodec.cli import main
from eegcodec.errors import CorruptFileError, EegcodecError
from eegcodec.modes.max_error import MaxError


@dataclass(frozen=True)
class Microvolt(MaxError):
    """A demonstration mode: every EEG sample within 1 uV, chosen by one flag; its files are
    max-error files (a reader needs nothing new)."""

    bound: float = 1e-6
    name: ClassVar[str] = "microvolt"
    stored_as: ClassVar[str] = "max_error"
    options: ClassVar[tuple[str, ...]] = ("microvolt",)

    @classmethod
    def from_options(cls, options: dict) -> Microvolt:
        return cls()

    @classmethod
    def add_cli_options(cls, parser) -> None:
        parser.add_argument("--microvolt", action="store_true", help="every EEG sample within 1 uV")

    @classmethod
    def cli_options(cls, args) -> dict:
        return {"microvolt": True} if getattr(args, "microvolt", False) else {}


def test_a_new_mode_is_one_class_and_one_registry_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(modes.MODES, Microvolt.name, Microvolt)  # the one registry line
    raw = synthetic_raw(n_ch=4, seconds=12)
    src = tmp_path / "rec.fif"
    raw.save(src, verbose="error")
    assert main(["compress", str(src), "-o", str(tmp_path / "a.eegc"), "--microvolt", "-q"]) == 0
    back = eegcodec.decompress(tmp_path / "a.eegc")
    eeg = raw.get_data(picks="eeg")
    assert np.abs(back.get_data(picks="eeg") - eeg).max() <= 1e-6
    assert eegcodec.describe(tmp_path / "a.eegc")["mode"] == "max_error"
    data = eegcodec.compress(raw, None, mode=modes.from_options(microvolt=True))
    assert np.abs(eegcodec.decompress(data).get_data(picks="eeg") - eeg).max() <= 1e-6
    assert main(["compress", str(src), "-o", str(tmp_path / "b.eegc"), "--microvolt", "--lossless"]) == 1
    assert "choose one of" in capsys.readouterr().err


def test_options_choose_one_mode_checked_once():
    assert modes.from_options() == modes.Tokens()
    assert modes.from_options(n_codebooks=4) == modes.Tokens(4)
    assert modes.from_options(prd=10, n_codebooks=2) == modes.Prd(10.0, 2)
    assert modes.from_options(max_error=2e-6) == modes.MaxError(2e-6)
    assert modes.from_options(lossless=True) == modes.Lossless()
    for bad, msg in [
        (dict(lossless=True, prd=10), "choose one of"),
        (dict(lossless=True, n_codebooks=3), "n_codebooks applies to token files"),
        (dict(max_error=-1.0), "positive voltage"),
        (dict(prd=150), "prd must be"),
        (dict(quality=3), "unknown option quality"),
    ]:
        with pytest.raises(EegcodecError, match=msg):
            modes.from_options(**bad)


def test_each_stored_mode_says_what_it_guarantees(tmp_path):
    raw = synthetic_raw(n_ch=3, seconds=6)
    for mode, words in [
        (modes.Lossless(), "exact"),
        (modes.MaxError(3e-6), "within 3 uV"),
        (modes.Prd(20), "20 %"),
    ]:
        path = tmp_path / f"{mode.name}.eegc"
        eegcodec.compress(raw, path, None, mode=mode)
        described = eegcodec.describe(path)
        assert described["mode"] == mode.name and words in described["guarantee"]
    with pytest.raises(CorruptFileError, match="not one this eegcodec knows"):
        modes.get("quantum")


def test_a_mode_and_its_options_together_are_refused():
    raw = synthetic_raw(n_ch=2, seconds=4)
    with pytest.raises(EegcodecError, match="not both"):
        eegcodec.compress(raw, None, mode=modes.Tokens(), lossless=True)


@pytest.mark.parametrize("kw", [{"lossless": True}, {"max_error": 2e-6}])
def test_exact_files_chunk_in_equal_chunks_of_whole_segments(kw):
    """Lossless and max-error recordings are cut into equal chunks that own at least 30 s and
    EXACT_SEGMENTS segments of the exact coder each (no short last chunk); a shorter recording is
    one chunk; an explicit adapter is kept."""
    from eegcodec.adapt import AdapterConfig, ChunkLayout
    from eegcodec.chunks import EXACT_SEGMENTS, exact_adapter, exact_span
    from eegcodec.format.adaptive import SEGMENT
    from eegcodec.pipeline import compress_raw

    for sfreq in (100.0, 160.0, 256.0, 500.0, 2048.0):
        least = max(EXACT_SEGMENTS * SEGMENT, int(29 * sfreq))
        for n in (least - 1, least, 2 * least - 1, 10**6 + 7):
            layout = ChunkLayout.for_recording(n, sfreq, exact_adapter(sfreq, n))
            owned = [b - a for a, b in (exact_span(layout, *span) for span in layout.chunks())]
            assert sum(owned) == n and max(owned) - min(owned) < len(owned)
            assert (
                min(owned) > least - len(owned) or len(owned) == 1
            )  # the last one short of the rest by < one a chunk
            assert layout.overlap == round(sfreq) or len(owned) == 1
    raw = synthetic_raw(n_ch=3, seconds=220)
    assert raw.info["sfreq"] == 160
    header = eegcodec.format.container.Archive.from_bytes(compress_raw(raw, None, **kw)).header
    assert (header.chunk_length, header.chunk_overlap, len(header.exact_frames)) == (17600 + 160, 160, 2)
    given = AdapterConfig(chunk_seconds=10.0)
    header = eegcodec.format.container.Archive.from_bytes(compress_raw(raw, None, adapter=given, **kw)).header
    assert (header.chunk_length, header.chunk_overlap) == (1600, 160)
