"""Benchmarks behind ``eegcodec bench KIND``, one module each (``rd``: rate-distortion against
FLAC, zstd, DCT and wavelet coders; ``downstream``: classifiers on reconstructed EEG; ``speed``:
real-time factors and peak memory; ``prior``, ``probe``, ``zarr_codecs``, ``notch``, ``runtimes``,
``align_table``). Each declares ``HELP``, ``add_arguments(parser)`` and ``main(args, say)``; the
list is ``BENCHMARKS`` in :mod:`eegcodec.cli.bench`. ``benchmarks/run_all.sh`` (in the source
tree) regenerates the committed reports in ``benchmarks/``."""
