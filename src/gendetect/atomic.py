"""Atomic file writes: how every shard, checkpoint and marker file of gendetect is written."""

from __future__ import annotations

import os
from pathlib import Path


def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` through a temporary file renamed into place.

    A reader, or a run killed mid-write, sees the old file or the new one, never half of one. The temporary name is
    hidden and unique per process, so workers writing side by side never share one.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)
    return path
