"""The package version (one place; the file format version is in container.VERSION)."""

__version__ = "0.9.0"
