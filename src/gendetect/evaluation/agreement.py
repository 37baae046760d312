"""Format agreement: the same pixels saved as PNG and as a high-quality JPEG should get the same verdict.

A detector that learned "PNG means fake" (most published fakes are PNG, most photos JPEG) changes its mind when
a fake is re-saved as JPEG. :func:`format_agreement` measures how often it does.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

import numpy as np
from PIL import Image


def reencode(image: Image.Image, fmt: str, quality: int = 95) -> Image.Image:
    """``image`` saved as ``fmt`` ("PNG", "JPEG", "WEBP") in memory and decoded again, as a file would be."""
    from gendetect.imageio import load_image

    buf = io.BytesIO()
    kwargs = {"quality": quality} if fmt.upper() in ("JPEG", "WEBP") else {}
    image.convert("RGB").save(buf, fmt, **kwargs)
    return load_image(buf.getvalue())


def format_agreement(pipeline: Any, images: Iterable[Image.Image], quality: int = 95) -> dict[str, Any]:
    """Score every image as a PNG and as a JPEG at ``quality``; returns ``n``, ``same_verdict`` (share of images
    whose two copies get the same verdict, ``uncertain`` included), ``mean_abs_dp`` and ``max_abs_dp`` (the
    P(fake) differences over images scored in both copies) and ``flips`` (verdict pairs, PNG -> JPEG, that differ,
    with their counts).

    >>> class Half:  # a stand-in pipeline: P(fake) 0.5 for every image
    ...     def predict_proba(self, ims): return np.full(len(ims), 0.5)
    ...     def verdict(self, p): return "fake" if p >= 0.5 else "real"
    >>> format_agreement(Half(), [Image.new("RGB", (8, 8))])["same_verdict"]
    1.0
    """
    same, diffs, flips = [], [], {}
    for image in images:
        copies = [reencode(image, "PNG"), reencode(image, "JPEG", quality)]
        p = np.asarray(pipeline.predict_proba(copies), dtype=float)
        v = ["uncertain" if not np.isfinite(x) else pipeline.verdict(float(x)) for x in p]
        same.append(v[0] == v[1])
        if v[0] != v[1]:
            flips[f"{v[0]} -> {v[1]}"] = flips.get(f"{v[0]} -> {v[1]}", 0) + 1
        if np.all(np.isfinite(p)):
            diffs.append(abs(p[0] - p[1]))
    d = np.asarray(diffs)
    return {
        "n": len(same),
        "quality": quality,
        "same_verdict": float(np.mean(same)) if same else float("nan"),
        "mean_abs_dp": float(d.mean()) if len(d) else float("nan"),
        "max_abs_dp": float(d.max()) if len(d) else float("nan"),
        "flips": flips,
    }
