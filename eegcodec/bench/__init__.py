"""Benchmarks behind ``eegcodec bench``: ``rd`` (rate-distortion against FLAC, zstd, DCT and
wavelet coders), ``downstream`` (classifiers on reconstructed EEG), ``speed`` (real-time
factors and peak memory). ``run_all.sh`` regenerates the README's figures in ``docs/benchmarks``."""
