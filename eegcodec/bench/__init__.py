"""Benchmarks behind ``eegcodec bench``: ``rd`` (rate-distortion against FLAC, zstd, DCT and
wavelet coders), ``downstream`` (classifiers on reconstructed EEG), ``speed`` (real-time
factors and peak memory). ``benchmarks/run_all.sh`` (in the source tree)
regenerates the committed reports in ``benchmarks/``."""
