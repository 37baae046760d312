"""Procedural "real" and "fake" images for tests and demos, with no downloads.

* **real**: a smooth random scene (low-frequency colour field) with per-pixel sensor-like noise, drawn at full
  resolution;
* **fake**: the same kind of scene drawn at half resolution and up-sampled 2x, which leaves the periodic
  correlations that generator up-sampling layers leave (the trace forensic features look for).

Both are saved in the same format and quality, so nothing but the up-sampling trace separates them.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
from PIL import Image


def _scene(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    coarse = rng.uniform(0, 255, size=(max(h // 16, 2), max(w // 16, 2), 3)).astype(np.float32)
    smooth = np.asarray(Image.fromarray(coarse.astype(np.uint8)).resize((w, h), Image.BICUBIC), np.float32)
    return smooth


def synthetic_image(label: str, size: int = 128, seed: int = 0) -> Image.Image:
    """One procedural RGB image; ``label`` is ``"real"`` or ``"fake"``."""
    rng = np.random.default_rng(seed)
    if label == "real":
        img = _scene(rng, size, size) + rng.normal(0, 6.0, size=(size, size, 3))
    elif label == "fake":
        half = size // 2
        small = _scene(rng, half, half) + rng.normal(0, 6.0, size=(half, half, 3))
        small_im = Image.fromarray(np.clip(small, 0, 255).astype(np.uint8))
        img = np.asarray(small_im.resize((size, size), Image.NEAREST), np.float32)
    else:
        raise ValueError(f"label must be 'real' or 'fake', got {label!r}")
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def make_synthetic_dataset(
    root: str | os.PathLike,
    n_per_class: int = 16,
    size: int = 128,
    *,
    generators: tuple[str, ...] = ("upsampler",),
    fmt: str = "PNG",
    seed: int = 0,
    null_generators: tuple[str, ...] = (),
    fake_fmt: str | None = None,
) -> Path:
    """Write a ``<root>/<generator>/{0_real,1_fake}`` tree (CNNDetection layout).

    Fakes of ``generators`` carry the 2x up-sampling trace; fakes of ``null_generators`` are drawn exactly like the
    reals (a generator no detector can catch: the known answer is AUC 0.5). ``fake_fmt`` saves fakes in another
    format than reals (a deliberately biased set). Returns ``root``; images are named ``{label}_{i:04d}.{ext}``.
    """
    root = Path(root)
    exts = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
    for g_i, gen in enumerate((*generators, *null_generators)):
        for label, folder in (("real", "0_real"), ("fake", "1_fake")):
            out = root / gen / folder
            out.mkdir(parents=True, exist_ok=True)
            f = (fake_fmt or fmt).upper() if label == "fake" else fmt.upper()
            drawn_as = "real" if gen in null_generators else label
            for i in range(n_per_class):
                im = synthetic_image(drawn_as, size, seed=seed + 100_000 * g_i + 1000 * (label == "fake") + i)
                im.save(out / f"{label}_{i:04d}.{exts[f]}", format=f, **({"quality": 95} if f != "PNG" else {}))
    return root


def write_labels_csv(root: str | os.PathLike, rows: list[dict[str, str]]) -> Path:
    """Write ``labels.csv`` (columns of the first row) into ``root``; a helper for tests of that layout."""
    path = Path(root) / "labels.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path
