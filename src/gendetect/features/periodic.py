"""Periodic up-sampling traces at periods 2, 4 and 8, wherever a crop starts; and whole-image tiling.

A generator's last stages up-sample: SD/FLUX-style VAE decoders go from a 1/8 latent to pixels through nearest
up-sampling plus convolutions, GANs through transposed convolutions, super-resolution heads through pixel shuffle.
Each makes a pixel's local statistics depend on its position in the up-sampling cell: on ``(y mod 8, x mod 8)``
for a x8 decoder, on ``mod 4`` and ``mod 2`` for its intermediate stages.

:class:`PeriodicFeatures` (``periodic``) measures this directly. For several high-pass residuals ``r`` of the
luma (|Laplacian|, |second differences|, |first differences|), the mean of ``r`` over each of the 64 phases
``(y mod 8, x mod 8)`` gives an 8 x 8 *phase-mean map* ``m``. A camera photo has no preferred phase: ``m`` is flat
up to noise. The features are the log-magnitudes of the 2-D DFT of ``m`` at its 33 distinct non-zero frequencies,
over ``|M[0, 0]|``. A shift of the crop rolls ``m`` circularly, which changes the DFT's phase only, so the
features are the same wherever the crop starts. Frequencies ``k/8`` with ``k`` even are the period-4 and period-2
traces, ``k = 4`` is period 2; all are in the 8 x 8 map.

JPEG's 8 x 8 blocks are a period-8 trace too, and so is a camera's colour filter array at period 2. Neither is
filtered out here: a detector must *learn* them as real, from real photos that went through JPEG and through a
camera simulation (``gendetect.augment.benign``); the default detector is trained that way.

:class:`TiledFeatures` (``tiles``) cuts the whole image at native resolution into square tiles, computes a base
extractor's features for each, and flags tiles without forensic signal (flat, blank, text-like: see
:func:`tile_signal`; text and graphics that went through JPEG, whose ringing hides the flat paper from
:func:`tile_signal`: see :func:`tile_graphic`). The ``tiled`` detector (:mod:`gendetect.detectors.tiled`) scores
each tile with signal and averages their log-odds; :class:`gendetect.pipeline.DetectionPipeline` gives an image
without any such tile the verdict ``uncertain`` (the no-signal guard).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from gendetect.features.base import EXTRACTORS, FeatureExtractor
from gendetect.features.forensic import luminance

PERIOD = 8


def _canonical_frequencies(p: int = PERIOD) -> np.ndarray:
    """Flat indices of one of each conjugate pair ``k, -k`` of the ``p x p`` DFT, without DC: 33 for ``p = 8``."""
    keep = []
    for ky in range(p):
        for kx in range(p):
            if (ky, kx) == (0, 0):
                continue
            if (ky, kx) <= ((-ky) % p, (-kx) % p):
                keep.append(ky * p + kx)
    return np.asarray(keep)


_FREQS = _canonical_frequencies()


def phase_mean_map(r: np.ndarray, p: int = PERIOD) -> np.ndarray:
    """``(p, p)`` float64 mean of a 2-D ``r`` over each phase ``(y mod p, x mod p)`` (the crop's own origin)."""
    h, w = r.shape[0] // p * p, r.shape[1] // p * p
    return r[:h, :w].reshape(h // p, p, w // p, p).mean(axis=(0, 2), dtype=np.float64)


def residuals(x: np.ndarray) -> list[np.ndarray]:
    """The five non-negative residual maps of a 2-D float32 luma ``x``, all ``(H - 2, W - 2)``.

    |4-neighbour Laplacian|, |second horizontal difference|, |second vertical difference|, |first horizontal
    difference| and |first vertical difference|. All share one grid, so their phases agree.
    """
    c = x[1:-1, 1:-1]
    left, right, up, down = x[1:-1, :-2], x[1:-1, 2:], x[:-2, 1:-1], x[2:, 1:-1]
    d2x = right - 2 * c + left
    d2y = down - 2 * c + up
    return [np.abs(d2x + d2y), np.abs(d2x), np.abs(d2y), np.abs(right - c), np.abs(down - c)]


def periodic_spectrum(x: np.ndarray, p: int = PERIOD) -> np.ndarray:
    """``(5 * 33,)`` log DFT magnitudes of the phase-mean maps of :func:`residuals` of luma ``x``.

    Each magnitude is relative to the map's DC term (so it does not depend on the image's noise level) and
    floored at ``1e-4`` before the log, so a map without phase dependence gives about ``log(noise)``.
    """
    out = []
    for r in residuals(np.asarray(x, np.float32)):
        m = phase_mean_map(r, p)
        mag = np.abs(np.fft.fft2(m)).ravel()
        out.append(np.log(mag[_FREQS] / (mag[0] + 1e-9) + 1e-4))
    return np.concatenate(out)


def tile_signal(x: np.ndarray) -> tuple[float, float]:
    """``(texture, flat_fraction)`` of a 2-D luma tile: median |Laplacian| and the share of pixels whose
    |Laplacian| is below 0.5 (a level step of 1 in 8-bit luma gives 0.25 to 1).

    Flat, blank, rendered-text and vector-art tiles have little texture and a large flat share: no up-sampling
    trace can be measured there, and the no-signal guard excludes them.
    """
    lap = residuals(np.asarray(x, np.float32))[0]
    if lap.size == 0:
        return 0.0, 1.0
    return float(np.median(lap)), float((lap < 0.5).mean())


def tile_graphic(x: np.ndarray, level: int = 6, contrast: int = 64) -> tuple[float, float]:
    """``(background, marks)`` of a 2-D luma tile: the share of pixels within ``level`` of its most common luma
    value (the paper or screen), and the share that differ from it by more than ``contrast`` (ink, glyphs, bars).

    Rendered text and graphics are mostly one level with high-contrast marks on it. :func:`tile_signal` sees
    that as flat pixels, but JPEG's ringing around every glyph leaves few exactly flat pixels at any quality; the
    share of pixels near the background level survives it (a text page keeps more than half at quality 40). A
    photo rarely has both: a clear sky or a wall is near one level but has no marks, a textured scene has no
    dominant level.
    """
    v = np.clip(np.rint(np.asarray(x, np.float32)), 0, 255).astype(np.intp).ravel()
    if v.size == 0:
        return 1.0, 0.0
    mode = int(np.bincount(v, minlength=256).argmax())
    d = np.abs(v - mode)
    return float((d <= level).mean()), float((d > contrast).mean())


@EXTRACTORS.register("periodic")
class PeriodicFeatures(FeatureExtractor):
    """Shift-invariant period-2/4/8 up-sampling features (see the module docstring).

    Args:
        crop: crop side in pixels (a multiple of 8; smaller images use the largest multiple of 8 that fits).
        n_crops: crops averaged per image (centre first, then quadrant centres), as in ``npr``.

    ``dim = 165`` (5 residuals x 33 frequencies).
    """

    name = "periodic"

    def __init__(self, crop: int = 256, n_crops: int = 1) -> None:
        self.crop = crop
        self.n_crops = n_crops
        self.dim = 5 * len(_FREQS)

    def extract_one(self, image: Image.Image) -> np.ndarray:
        from gendetect.features.forensic import luma_crops

        feats = [periodic_spectrum(c) for c in luma_crops(image, self.crop, self.n_crops)]
        return np.mean(feats, axis=0).astype(np.float32)


def tile_boxes(height: int, width: int, tile: int, max_tiles: int, min_side: int = 64) -> list[tuple[int, int, int]]:
    """``(top, left, side)`` of square tiles covering an image at native resolution.

    The side is ``tile``, or for a smaller image the largest multiple of 8 that fits (none below ``min_side``).
    Tiles lie on a grid that covers every pixel, spread evenly with a little overlap where the size is not a
    multiple of the side. Above ``max_tiles`` an evenly spaced subset of the grid is kept (rows and columns
    thinned alike), so a 12 MP photo is judged over its whole extent, not its centre.
    """
    side = min(tile, height, width)
    side -= side % 8
    if side < min_side:
        return []
    ny, nx = -(-height // side), -(-width // side)
    if ny * nx > max_tiles:
        f = np.sqrt(ny * nx / max_tiles)
        ny, nx = max(1, int(ny / f)), max(1, int(nx / f))
        while ny * nx > max_tiles:  # rounding can leave one too many
            ny, nx = (ny - 1, nx) if ny >= nx else (ny, nx - 1)
    tops = np.linspace(0, height - side, ny).round().astype(int) if ny > 1 else [(height - side) // 2]
    lefts = np.linspace(0, width - side, nx).round().astype(int) if nx > 1 else [(width - side) // 2]
    return [(int(t), int(x), side) for t in tops for x in lefts]


# Columns of a tile row before the base features: box (x0, y0, x1, y1), has-signal flag, texture, flat share.
TILE_META = ("x0", "y0", "x1", "y1", "signal", "texture", "flat")


@EXTRACTORS.register("tiles")
class TiledFeatures(FeatureExtractor):
    """Whole-image tiles at native resolution, each with a base extractor's features and a signal check.

    :meth:`extract_tiles` gives one row per tile, ``(n_tiles, tile_width)`` float32 with
    ``tile_width = len(TILE_META) + base.dim``: the tile's box, whether it carries forensic signal
    (``texture >= min_texture`` and ``flat <= max_flat``, and not text or graphics: :func:`tile_graphic`'s
    background share at least ``graphic_background`` with marks at least ``graphic_marks``), its texture and flat
    share, then the base features (zeros for a tile without signal). An image smaller than ``min_side`` has no
    tile.

    :meth:`extract_one` packs those rows into one fixed-length vector of ``max_tiles`` slots (unused slots are
    zeros, so their signal flag is 0), ``dim = max_tiles * tile_width``, so that every generic path (feature
    store, training folds, evaluation protocols) handles a tiled model like any other. The ``tiled`` detector
    unpacks it, scores each tile with signal and averages their log-odds; :func:`unpack_tiles` is the inverse.

    Args:
        base: config of the per-tile extractor (``{"name": ..., "params": {...}}``); it sees each tile as a whole
            image, so its own crop should be at least ``tile``. Default: ``periodic`` at the tile size.
        tile: tile side in pixels (a multiple of 8).
        max_tiles: at most this many tiles per image (an evenly thinned grid above it).
        min_side: images (and tiles) smaller than this carry no measurable trace.
        min_texture: tiles whose median |Laplacian| is lower are flat (no signal).
        max_flat: tiles with a larger share of flat pixels are flat, blank or text-like (no signal).
        graphic_check: whether tiles of text or graphics have no signal, JPEG or not (``False``: as before the
            check existed, i.e. the build of v8 and earlier defaults; v9 is trained with it).
        graphic_background, graphic_marks: the check's rule: at least this share of the tile's pixels at its
            background level, and at least this share of high-contrast marks (:func:`tile_graphic`).
    """

    name = "tiles"
    tiled = True

    def __init__(
        self,
        base: dict[str, Any] | None = None,
        tile: int = 256,
        max_tiles: int = 64,
        min_side: int = 64,
        min_texture: float = 1.0,
        max_flat: float = 0.6,
        graphic_check: bool = True,
        graphic_background: float = 0.55,
        graphic_marks: float = 0.03,
    ) -> None:
        self.base = base
        self.tile = tile
        self.max_tiles = max_tiles
        self.min_side = min_side
        self.min_texture = min_texture
        self.max_flat = max_flat
        self.graphic_check = graphic_check
        self.graphic_background = graphic_background
        self.graphic_marks = graphic_marks
        self._base = EXTRACTORS.from_config(base or {"name": "periodic", "params": {"crop": tile}})
        self.tile_width = len(TILE_META) + self._base.dim
        self.dim = max_tiles * self.tile_width

    def extract_tiles(self, image: Image.Image) -> np.ndarray:
        """``(n_tiles, tile_width)`` float32 rows: box, signal flag, texture, flat share, base features."""
        rows = []
        for top, left, side in tile_boxes(image.height, image.width, self.tile, self.max_tiles, self.min_side):
            crop = image.crop((left, top, left + side, top + side))
            luma = luminance(np.asarray(crop))
            texture, flat = tile_signal(luma)
            signal = float(texture >= self.min_texture and flat <= self.max_flat and not self.is_graphic(luma))
            feats = self._base.extract_one(crop) if signal else np.zeros(self._base.dim, np.float32)
            rows.append(np.concatenate([[left, top, left + side, top + side, signal, texture, flat], feats]))
        return np.asarray(rows, np.float32).reshape(len(rows), self.tile_width)

    def is_graphic(self, luma: np.ndarray) -> bool:
        """Whether a tile's luma is text or graphics (:func:`tile_graphic`); never when the check is off."""
        if not self.graphic_check:
            return False
        background, marks = tile_graphic(luma)
        return background >= self.graphic_background and marks >= self.graphic_marks

    def extract_one(self, image: Image.Image) -> np.ndarray:
        rows = self.extract_tiles(image)
        out = np.zeros((self.max_tiles, self.tile_width), np.float32)
        out[: len(rows)] = rows
        return out.ravel()


def unpack_tiles(x: np.ndarray, tile_width: int) -> np.ndarray:
    """The used tile rows ``(n, tile_width)`` of one packed :class:`TiledFeatures` vector (slots with a zero box
    are unused: a real tile always has ``x1 > 0``)."""
    rows = np.asarray(x).reshape(-1, tile_width)
    return rows[rows[:, 2] > 0]


def split_tiles(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(boxes (n, 4) int, signal (n,) bool, features (n, dim))`` of tile rows (:meth:`TiledFeatures.extract_tiles`)."""
    k = len(TILE_META)
    return rows[:, :4].astype(int), rows[:, 4] > 0.5, rows[:, k:]
