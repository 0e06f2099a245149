"""Benchmarks: rate-distortion against classical coders (run as modules, e.g. ``python -m benchmarks.core_rd``)."""
