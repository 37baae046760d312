"""Atomic file writes: how every shard, checkpoint and marker file of gendetect is written."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


def temp_path(path: str | os.PathLike) -> Path:
    """The temporary name :func:`atomic_write` (and the streamed writers of :mod:`gendetect.output`) write ``path``
    under before renaming it into place: hidden, in the same folder (so the rename is atomic), unique per process."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def _umask() -> int:
    """The process umask, read without changing it where Linux exposes it (``os.umask`` must set it to read it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def user_mode(path: str | os.PathLike) -> Path:
    """Give ``path`` the permissions a newly created file gets (``0o666`` less the umask), as ``open`` would.

    For writers that create their file private (safetensors' ``save_file`` writes 0600), so that a saved model is
    readable by whoever may read the folder it is in, as its ``config.json`` is.
    """
    path = Path(path)
    os.chmod(path, 0o666 & ~_umask())
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """The temporary path to write ``path`` under (:func:`temp_path`); renamed into place when the block ends, removed
    when it raises. For writers that want a file name (``pq.write_table(table, tmp)``), not bytes.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     with atomic_path(Path(d) / "a.txt") as tmp:
        ...         _ = tmp.write_text("done")
        ...     sorted(p.name for p in Path(d).iterdir())
        ['a.txt']
    """
    path = Path(path)
    tmp = temp_path(path)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` through a temporary file renamed into place.

    A reader, or a run killed mid-write, sees the old file or the new one, never half of one. The temporary name is
    hidden and unique per process, so workers writing side by side never share one.
    """
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    return Path(path)
