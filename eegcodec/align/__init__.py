"""Encoder B: map EEG-codec latents into an audio codec's embedding space (see docs/ALIGN.md)."""
