"""Atomic file writes: how every shard, checkpoint and marker file of gendetect is written."""

from __future__ import annotations

import os
from pathlib import Path


def temp_path(path: str | os.PathLike) -> Path:
    """The temporary name :func:`atomic_write` (and the streamed writers of :mod:`gendetect.output`) write ``path``
    under before renaming it into place: hidden, in the same folder (so the rename is atomic), unique per process."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` through a temporary file renamed into place.

    A reader, or a run killed mid-write, sees the old file or the new one, never half of one. The temporary name is
    hidden and unique per process, so workers writing side by side never share one.
    """
    path = Path(path)
    tmp = temp_path(path)
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)
    return path
