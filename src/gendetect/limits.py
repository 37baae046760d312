"""Input limits shared by the readers, the CLI and the HTTP app.

A module of its own, with no imports, so that the CLI can show the defaults in ``--help`` without loading numpy
and Pillow (:mod:`gendetect.imageio` re-exports them).
"""

DEFAULT_MAX_PIXELS = 120_000_000
"""Largest image (width x height) decoded by default: a 10,000 x 12,000 photo passes, a 20,000 x 20,000 bomb not."""

DEFAULT_MAX_FILE_BYTES = 2 * 1024**3
"""Largest file read (2 GiB): far above any photo, so that a huge or endless file is refused before reading it."""
