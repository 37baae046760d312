"""What produced an artefact: library versions, time, config. Recorded in every model, manifest and report."""

from __future__ import annotations

import datetime as _dt
import platform
import sys
from importlib import metadata

_TRACKED = ("gendetect", "numpy", "Pillow", "scikit-learn", "scipy", "pyarrow", "safetensors", "torch")


def versions() -> dict[str, str]:
    """Versions of Python and the installed libraries gendetect's results depend on."""
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for dist in _TRACKED:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def provenance(**extra: object) -> dict[str, object]:
    """A provenance block: ``{"created": ISO time, "versions": {...}, **extra}``."""
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": versions(),
        **extra,
    }
