"""The ``.eegc`` file format: the container and its header, the side streams and the measurement
info (each writer beside its reader), and the coders of the sections (exact, lossless, adaptive,
transform, entropy, stream coders). Nothing here imports torch or MNE."""
