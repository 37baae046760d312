"""Shortcut audit: can real and fake be told apart by something other than generation traces?

Four checks, each a small cross-validated classifier whose ROC AUC is compared with chance (0.5) plus ``margin``:

``file facts`` (the keys ``auc``, ``flagged``, ``message``, ``per_feature`` at the top level, as before)
    file format, width, height, aspect ratio, JPEG quality and EXIF presence: no pixel is read.
``border``
    the outer ring of pixels (the outermost 2, 4, 8 and 16 px): mean colour, chroma, spread, flatness and the step
    to the pixels just inside. It would have caught the CNNDetection gallery, where a flat frame is grey around
    every real picture and a colour per generator around the fakes. The same features taken on the ring of the
    image's central half are the baseline: the check warns when the frame predicts the label better than the
    picture's own pixels do, or when most images have a flat frame (the outer 2 px flat on all four sides) and
    it predicts the label; data whose classes differ all over, without frames, is not a border leak.
``text_strip``
    the bottom and top quarters: near-black and near-uniform rows, dark and bright pixels, dense high-contrast
    edges on a uniform background (printed text) and the number of text-like lines. It would have caught the
    wright-photos cards, whose black bottom panel carries a caption that names the generator. Its baseline is
    the same features on the centred quarter (rows 37.5-62.5%), so text that reaches the middle of the image is
    not credited to the strips.
``content``
    a tiny colour-and-texture model (:func:`illustration_score`: saturation, colour count, flat area, gradient and
    edge statistics into a shipped logistic regression, see ``content_model.json``) that tells illustrations,
    anime and flat art from photographs. It reports how well that score alone predicts the label and the fraction
    of each class that looks like an illustration, so results can also be given on photoreal images only.

The pixel checks decode at most ``max_images`` images (a class-stratified sample) through :mod:`gendetect.imageio`
and work on small copies, so a 400-image audit takes a few seconds. Importing this module is light (numpy and
Pillow; scikit-learn and scipy are imported when a check runs), so the CLI can read stored audits with
:func:`audit_warnings`.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from gendetect.data.records import ImageRecord

logger = logging.getLogger(__name__)

FEATURES = (
    "is_jpeg",
    "is_png",
    "is_webp",
    "is_other_format",
    "log2_width",
    "log2_height",
    "log2_aspect",
    "jpeg_quality",
    "has_exif",
)
DEFAULT_MARGIN = 0.1
DEFAULT_MAX_IMAGES = 400
PIXEL_CHECKS = ("border", "text_strip", "content")

RING_WIDTHS = (2, 4, 8, 16)  # native pixels: the outermost rings the border check describes
_RING_FLATNESS = 5  # index in ring_features of the outermost (2 px) ring's flatness
STRIP_SIDE = 384  # the text-strip check works on a copy whose longer side is at most this
CONTENT_SIDE = 128  # the content model works on a copy whose longer side is at most this
CONTENT_FEATURES = (
    "saturation_mean",
    "saturation_p90",
    "saturated_fraction",  # saturation > 0.5
    "log_colour_count",  # distinct 5-bit-per-channel colours / pixels (capped at 32768), log
    "top8_colour_coverage",  # fraction of pixels in the 8 most common 5-bit colours
    "flat_fraction",  # gradient magnitude < 1.5 grey levels
    "log_gradient_p50",
    "log_gradient_p90",
    "edge_density",  # gradient magnitude > 40 grey levels
    "edge_spread",  # log(1 + p99) - log(1 + p50) of the gradient magnitude: sharp edges between flat areas
    "log_laplacian_median",  # fine texture and noise
)
CONTENT_MODEL_FILE = "content_model.json"


# -- file facts --------------------------------------------------------------------------------------------------
def metadata_features(records: Sequence[ImageRecord]) -> np.ndarray:
    """``(N, 9)`` float64 file facts, in :data:`FEATURES` order (missing values become 0).

    File size is left out on purpose: for lossless formats it follows the pixels (an up-sampled image compresses
    better), so it is a trace, not a delivery shortcut.
    """
    rows = []
    for r in records:
        fmt = (r.format or "").upper()
        w, h = max(r.width or 1, 1), max(r.height or 1, 1)
        rows.append(
            [
                fmt == "JPEG",
                fmt == "PNG",
                fmt == "WEBP",
                fmt not in ("JPEG", "PNG", "WEBP"),
                math.log2(w),
                math.log2(h),
                math.log2(w / h),
                r.jpeg_quality or 0,
                bool(r.has_exif),
            ]
        )
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(FEATURES))


def _cv_auc(X: np.ndarray, y: np.ndarray, seed: int, n_estimators: int = 100) -> float:
    """Out-of-fold ROC AUC of a small random forest on ``X`` against ``y`` (stratified folds)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from gendetect.evaluation.metrics import roc_auc

    n_min = int(min(np.bincount(y, minlength=2)))
    folds = StratifiedKFold(n_splits=min(5, n_min), shuffle=True, random_state=seed)
    clf = RandomForestClassifier(n_estimators=n_estimators, max_depth=4, random_state=seed, n_jobs=1)
    scores = cross_val_predict(clf, np.nan_to_num(X), y, cv=folds, method="predict_proba")[:, 1]
    return float(roc_auc(y, scores))


def _separation(y: np.ndarray, x: np.ndarray) -> float:
    """AUC of one feature against the label, whichever direction separates (0.5 for a constant)."""
    from gendetect.evaluation.metrics import roc_auc

    if not np.ptp(x) > 0:
        return 0.5
    a = roc_auc(y, x)
    return float(max(a, 1 - a))


def file_facts_audit(records: Sequence[ImageRecord], *, margin: float = DEFAULT_MARGIN, seed: int = 0) -> dict:
    """The file-facts check alone: ``{"auc", "margin", "flagged", "warn", "message", "per_feature", "n"}``."""
    recs = _usable(records)
    y = np.array([r.label == "fake" for r in recs], dtype=int)
    if _n_min(y) < 2:
        return {
            "auc": None,
            "margin": margin,
            "flagged": False,
            "warn": False,
            "n": len(recs),
            "message": "shortcut audit skipped: needs at least 2 real and 2 fake readable images",
            "per_feature": {},
        }
    X = metadata_features(recs)
    auc = _cv_auc(X, y, seed)
    per_feature = {name: _separation(y, X[:, j]) for j, name in enumerate(FEATURES)}
    flagged = bool(auc >= 0.5 + margin)
    top = sorted(per_feature.items(), key=lambda kv: -kv[1])[:3]
    hint = ", ".join(f"{k} (AUC {v:.2f})" for k, v in top if v > 0.5)
    if flagged:
        message = (
            f"SHORTCUT WARNING: file facts alone separate real from fake with AUC {auc:.2f} "
            f"(chance 0.50, margin {margin}); most telling: {hint}. A detector can score well here by "
            "learning the file, not the generator. Re-encode real and fake alike (same format, quality, "
            "size) before trusting results."
        )
    else:
        message = f"shortcut audit passed: file facts separate real from fake with AUC {auc:.2f} (< {0.5 + margin:.2f})"
    return {
        "auc": float(auc),
        "margin": margin,
        "flagged": flagged,
        "warn": flagged,
        "message": message,
        "per_feature": per_feature,
        "n": len(recs),
    }


def _usable(records: Sequence[ImageRecord]) -> list[ImageRecord]:
    return [r for r in records if r.label in ("real", "fake") and r.status == "ok"]


def _n_min(y: np.ndarray) -> int:
    return int(min(np.bincount(y, minlength=2))) if len(y) else 0


# -- pixel features ----------------------------------------------------------------------------------------------
def _luma(a: np.ndarray) -> np.ndarray:
    return a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114


def _as_array(image: Image.Image | np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    a = np.asarray(image)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    return a[..., :3].astype(np.uint8, copy=False)


def _shrink(image: Image.Image, side: int, min_factor: float = 1.0) -> np.ndarray:
    """``(h, w, 3)`` float32 copy whose longer side is at most ``side`` and that is at least ``min_factor`` times
    smaller (box filter: an average, no ringing)."""
    w, h = image.size
    f = max(max(w, h) / side, min_factor)
    if f > 1 and min(w, h) / f >= 4:
        image = image.resize((max(1, round(w / f)), max(1, round(h / f))), Image.Resampling.BOX)
    return np.asarray(image.convert("RGB"), dtype=np.float32)


def _region(image: Image.Image | np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """``(h, w, 3)`` uint8 pixels of ``box`` = (left, top, right, bottom); only that region is converted."""
    if isinstance(image, Image.Image):
        return np.asarray(image.crop(box).convert("RGB"))
    x0, y0, x1, y1 = box
    return image[y0:y1, x0:x1]


def _cat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([p.reshape(-1, 3) for p in parts]).astype(np.float32)


def ring_features(image: Image.Image | np.ndarray, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """``(len(RING_WIDTHS) * 8,)`` float64: per outer ring of 2, 4, 8 and 16 native pixels, its mean R, G, B
    (0-1), chroma (max - min of the mean colour), log spread of its grey levels, flatness (fraction within 3 grey
    levels of its median) and the grey-level and colour steps to the ring of the same width just inside it.

    ``box`` (left, top, right, bottom) restricts it to a region (default: the whole image). Only the strips along
    the edges are read, so a 12 MP photo costs no more than a thumbnail. Rings wider than a quarter of the shorter
    side are clipped to it.
    """
    if isinstance(image, Image.Image):
        size = image.size
    else:
        image = _as_array(image)
        size = (image.shape[1], image.shape[0])
    x0, y0, x1, y1 = box or (0, 0, *size)
    w, h = x1 - x0, y1 - y0
    d = min(2 * max(RING_WIDTHS), h, w)  # rings and the rings just inside them lie within d pixels of the edge
    top, bottom = _region(image, (x0, y0, x1, y0 + d)), _region(image, (x0, y1 - d, x1, y1))
    left, right = _region(image, (x0, y0, x0 + d, y1)), _region(image, (x1 - d, y0, x1, y1))
    out: list[float] = []
    for width in RING_WIDTHS:
        k = max(1, min(width, min(h, w) // 4))
        ring = _cat([top[:k], bottom[d - k :], left[k : h - k, :k], right[k : h - k, d - k :]])
        if min(h, w) > 4 * k:  # the ring of the same width just inside this one
            inner = _cat(
                [
                    top[k : 2 * k, k : w - k],
                    bottom[d - 2 * k : d - k, k : w - k],
                    left[2 * k : h - 2 * k, k : 2 * k],
                    right[2 * k : h - 2 * k, d - 2 * k : d - k],
                ]
            )
        else:
            inner = ring
        mean, inner_mean = ring.mean(0), inner.mean(0)
        lum = _luma(ring)
        out += [
            *(mean / 255.0),
            float(np.ptp(mean)) / 255.0,
            math.log1p(float(lum.std())),
            float(np.mean(np.abs(lum - np.median(lum)) <= 3)),
            math.log1p(abs(float(_luma(mean[None])[0] - _luma(inner_mean[None])[0]))),
            math.log1p(float(np.linalg.norm(mean - inner_mean))),
        ]
    return np.asarray(out, dtype=np.float64)


def border_features(image: Image.Image | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(ring features of the whole image, the same of its central half)``: :func:`ring_features` twice.

    The second is the baseline: what rings of the picture itself look like, away from any frame.
    """
    if not isinstance(image, Image.Image):
        image = _as_array(image)
    w, h = image.size if isinstance(image, Image.Image) else (image.shape[1], image.shape[0])
    centre = (w // 4, h // 4, w - w // 4, h - h // 4) if min(h, w) >= 8 else (0, 0, w, h)
    return ring_features(image), ring_features(image, centre)


def _strip_stats(L: np.ndarray) -> list[float]:
    """Text-panel statistics of a grey-level strip ``(rows, cols)`` float32 (0-255)."""
    if L.size == 0 or L.shape[0] < 2 or L.shape[1] < 3:
        return [0.0] * 11
    row_mean, row_std = L.mean(1), L.std(1)
    gx = np.abs(np.diff(L, axis=1))
    strong = gx > 64  # the stroke edges of printed text on a uniform panel
    background = np.median(L)
    on_panel = np.abs(np.median(L, axis=1) - background) < 24
    ink_rows = (strong.mean(1) > 0.02) & on_panel
    lines = int(np.count_nonzero(np.diff(ink_rows.astype(np.int8)) == 1) + int(ink_rows[0]))
    # the longest horizontal run of "ink" (far from the panel's grey level) in each row: underlines, rules, banners
    ink = (np.abs(L - background) > 96).astype(np.int32)
    count = np.cumsum(ink, axis=1)
    run = count - np.maximum.accumulate(np.where(ink == 0, count, 0), axis=1)
    longest = run.max(1) / L.shape[1]
    return [
        float(np.mean(row_mean < 24)),  # near-black rows
        float(np.mean(row_std < 4)),  # near-uniform rows
        float(np.mean(L < 32)),  # dark pixels
        float(np.mean(L > 200)),  # bright pixels
        float(strong.mean()),  # high-contrast edge density
        float(ink_rows.mean()),  # rows that look like a line of text on the panel
        min(lines, 20) / 10.0,  # text-like lines
        float(L.mean()) / 255.0,
        math.log1p(float(L.std())),
        float(longest.max()),  # the longest ink run, as a fraction of the width
        float(np.mean(longest > 0.05)),  # rows holding an ink run longer than 5% of the width
    ]


def strip_features(image: Image.Image | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(features of the bottom and top quarters (22,), the same of the centred quarter (11,))``, float64.

    Computed on a copy whose longer side is at most :data:`STRIP_SIDE`; see :func:`_strip_stats` for the eleven
    statistics per strip (near-black and near-uniform rows, dark and bright pixels, high-contrast edge density,
    text-like rows and lines, mean and spread, and long horizontal ink runs: underlines, rules, banners).
    """
    im = image if isinstance(image, Image.Image) else Image.fromarray(_as_array(image))
    L = _luma(_shrink(im, STRIP_SIDE))
    h = L.shape[0]
    q = max(1, h // 4)
    edge = _strip_stats(L[h - q :]) + _strip_stats(L[:q])
    middle = _strip_stats(L[(h - q) // 2 : (h - q) // 2 + q])
    return np.asarray(edge, dtype=np.float64), np.asarray(middle, dtype=np.float64)


def content_features(image: Image.Image | np.ndarray) -> np.ndarray:
    """``(11,)`` float64 colour and texture statistics, in :data:`CONTENT_FEATURES` order.

    Computed on the central 60% (away from frames and caption panels) of a copy whose longer side is at most
    :data:`CONTENT_SIDE` and at least 2x smaller than the image: at that size the fine traces of a generator or a
    camera (a 2x up-sampling's duplicated pixels) are averaged away and what remains is what the picture shows and
    how it is drawn.
    """
    im = image if isinstance(image, Image.Image) else Image.fromarray(_as_array(image))
    a = _shrink(im, CONTENT_SIDE, min_factor=2.0)
    h, w = a.shape[:2]
    ci, cj = int(h * 0.2), int(w * 0.2)
    a = a[ci : h - ci, cj : w - cj]
    if a.shape[0] < 3 or a.shape[1] < 3:
        a = _shrink(im, CONTENT_SIDE, min_factor=2.0)
    mx, mn = a.max(-1), a.min(-1)
    sat = np.where(mx > 0, (mx - mn) / np.maximum(mx, 1), 0)
    q = (a.astype(np.uint8) >> 3).astype(np.int32)
    codes = (q[..., 0] << 10) | (q[..., 1] << 5) | q[..., 2]
    counts = np.bincount(codes.ravel(), minlength=1 << 15)
    n = codes.size
    L = _luma(a)
    g = np.hypot(np.abs(np.diff(L, axis=1))[:-1], np.abs(np.diff(L, axis=0))[:, :-1])
    lap = np.abs(4 * L[1:-1, 1:-1] - L[:-2, 1:-1] - L[2:, 1:-1] - L[1:-1, :-2] - L[1:-1, 2:])
    p50, p90, p99 = np.percentile(g, [50, 90, 99]) if g.size else (0.0, 0.0, 0.0)
    return np.array(
        [
            sat.mean(),
            np.percentile(sat, 90),
            (sat > 0.5).mean(),
            math.log(np.count_nonzero(counts) / min(n, 1 << 15) + 1e-4),
            np.sort(counts)[-8:].sum() / n,
            (g < 1.5).mean() if g.size else 1.0,
            math.log1p(p50),
            math.log1p(p90),
            (g > 40).mean() if g.size else 0.0,
            math.log1p(p99) - math.log1p(p50),
            math.log1p(float(np.median(lap))) if lap.size else 0.0,
        ],
        dtype=np.float64,
    )


# -- the content model -------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _content_model() -> dict[str, Any]:
    text = (resources.files("gendetect.evaluation") / CONTENT_MODEL_FILE).read_text(encoding="utf-8")
    model = json.loads(text)
    if tuple(model["features"]) != CONTENT_FEATURES:
        from gendetect.errors import ModelFormatError

        raise ModelFormatError(
            f"{CONTENT_MODEL_FILE} was fitted on features {model['features']}, but this version computes "
            f"{list(CONTENT_FEATURES)}; refit it with `python scripts/fit_content_model.py`."
        )
    return model


def _content_logit(F: np.ndarray, model: dict[str, Any]) -> np.ndarray:
    z = (F - np.asarray(model["mean"])) / np.asarray(model["scale"])
    return z @ np.asarray(model["coef"]) + float(model["intercept"])


def illustration_score_features(F: np.ndarray) -> np.ndarray:
    """:func:`illustration_score` from precomputed ``(N, 11)`` :func:`content_features`."""
    F = np.asarray(F, dtype=np.float64).reshape(-1, len(CONTENT_FEATURES))
    return 1.0 / (1.0 + np.exp(-_content_logit(F, _content_model())))


def illustration_score(images: Iterable[Image.Image | np.ndarray | str | os.PathLike]) -> np.ndarray:
    """``(N,)`` float64 in [0, 1]: how much each image looks like an illustration, anime or flat art rather than a
    photograph (colour and texture only; the shipped logistic model in ``content_model.json``).

    Images are PIL images, ``(H, W, 3)`` uint8 arrays or paths (decoded with :mod:`gendetect.imageio`). Use
    ``score < 0.5`` (:func:`photoreal`) to select photoreal images; the model and its validation are described in
    ``content_model.json`` (refit with ``scripts/fit_content_model.py``).
    """
    from gendetect.imageio import load_image

    rows = []
    for im in images:
        if isinstance(im, str | os.PathLike):
            im = load_image(im)
        rows.append(content_features(im))
    return illustration_score_features(np.asarray(rows).reshape(-1, len(CONTENT_FEATURES)))


def photoreal(images: Iterable[Image.Image | np.ndarray | str | os.PathLike], threshold: float = 0.5) -> np.ndarray:
    """``(N,)`` bool: the images whose :func:`illustration_score` is below ``threshold`` (photograph-like)."""
    return illustration_score(images) < threshold


def fit_content_model(photos: np.ndarray, illustrations: np.ndarray, *, C: float = 1.0) -> dict[str, Any]:
    """Fit the content model: a balanced logistic regression on standardised :func:`content_features` rows.

    Returns the JSON-ready ``{"features", "mean", "scale", "coef", "intercept", "C"}`` (no pickle).
    """
    from sklearn.linear_model import LogisticRegression

    X = np.r_[np.asarray(photos, np.float64), np.asarray(illustrations, np.float64)]
    y = np.r_[np.zeros(len(photos)), np.ones(len(illustrations))]
    mean, scale = X.mean(0), X.std(0) + 1e-9
    clf = LogisticRegression(C=C, class_weight="balanced", max_iter=2000).fit((X - mean) / scale, y)
    return {
        "features": list(CONTENT_FEATURES),
        "mean": mean.tolist(),
        "scale": scale.tolist(),
        "coef": clf.coef_[0].tolist(),
        "intercept": float(clf.intercept_[0]),
        "C": C,
    }


def procedural_illustration(seed: int, size: int = 256) -> Image.Image:
    """A flat-art picture: a gradient sky and a few flat-coloured outlined shapes with cel shadows (RGB)."""
    rng = np.random.default_rng(seed)
    im = Image.new("RGB", (size, size))
    d = ImageDraw.Draw(im)
    top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    for y in range(size):
        t = y / size
        d.line([(0, y), (size, y)], fill=tuple(int(v) for v in (1 - t) * top + t * bottom))
    for _ in range(int(rng.integers(3, 9))):
        x0, y0 = rng.integers(-size // 4, size, 2)
        w, h = rng.integers(size // 8, size // 2, 2)
        fill = tuple(int(v) for v in rng.integers(0, 256, 3))
        outline = tuple(int(v) for v in rng.integers(0, 60, 3))
        box = [int(x0), int(y0), int(x0 + w), int(y0 + h)]
        kind, lw = int(rng.integers(0, 3)), int(rng.integers(1, 5))
        if kind == 0:
            d.ellipse(box, fill=fill, outline=outline, width=lw)
        elif kind == 1:
            d.rectangle(box, fill=fill, outline=outline, width=lw)
        else:
            pts = [tuple(int(v) for v in rng.integers(-size // 4, size + size // 4, 2)) for _ in range(4)]
            d.polygon(pts, fill=fill, outline=outline)
        if rng.random() < 0.5:
            shadow = tuple(max(0, c - 40) for c in fill)
            d.ellipse([box[0] + int(w) // 3, box[1] + int(h) // 3, box[2], box[3]], fill=shadow)
    if rng.random() < 0.5:
        im = im.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.2))))
    return im


# -- pixel checks ------------------------------------------------------------------------------------------------
def _sample(records: list[ImageRecord], max_images: int, seed: int) -> list[ImageRecord]:
    """At most ``max_images`` records, each class keeping its share (at least 2 where it has them)."""
    if len(records) <= max_images:
        return records
    rng = np.random.default_rng(seed)
    out: list[ImageRecord] = []
    for label in ("real", "fake"):
        idx = [i for i, r in enumerate(records) if r.label == label]
        k = min(len(idx), max(2, round(max_images * len(idx) / len(records))))
        out += [records[i] for i in sorted(rng.choice(idx, size=k, replace=False))] if idx else []
    return out


def _check_result(
    name: str, auc: float | None, baseline: float | None, margin: float, message: str, **extra: Any
) -> dict[str, Any]:
    return {"check": name, "auc": auc, "baseline_auc": baseline, "margin": margin, **extra, "message": message}


def _skipped(name: str, margin: float, why: str) -> dict[str, Any]:
    return {**_check_result(name, None, None, margin, f"{name} check skipped: {why}"), "warn": False}


def _leak_check(
    name: str,
    X: np.ndarray,
    B: np.ndarray,
    y: np.ndarray,
    margin: float,
    seed: int,
    what: str,
    fix: str,
    evident: str | None = None,
) -> dict[str, Any]:
    """Warn when ``X`` predicts ``y`` beyond chance + margin and either beats the baseline ``B`` by the margin or
    the leak is ``evident`` (a reason it is there whatever the baseline says, e.g. most images are framed)."""
    auc, base = _cv_auc(X, y, seed, 30), _cv_auc(B, y, seed, 30)
    warn = bool(auc >= 0.5 + margin and (auc - base >= margin or evident is not None))
    if warn:
        message = (
            f"SHORTCUT WARNING ({name}): {what} separate real from fake with AUC {auc:.2f}, against {base:.2f} for "
            f"the same features inside the picture (chance 0.50, margin {margin}"
            + (f"; {evident}" if evident else "")
            + f"). A detector can score well here by reading them, not the generator's traces. Fix: {fix}."
        )
    else:
        message = (
            f"{name} check passed: {what} separate real from fake with AUC {auc:.2f} (inside the picture {base:.2f})"
        )
    return {**_check_result(name, auc, base, margin, message), "warn": warn}


def pixel_audit(
    records: Sequence[ImageRecord],
    *,
    margin: float = DEFAULT_MARGIN,
    seed: int = 0,
    max_images: int = DEFAULT_MAX_IMAGES,
    checks: Sequence[str] = PIXEL_CHECKS,
) -> dict[str, dict[str, Any]]:
    """The pixel checks (``border``, ``text_strip``, ``content``) on a stratified sample of ``records``.

    Each result has ``auc`` (cross-validated; for ``content`` the illustration score's AUC, either direction;
    ``content`` warns only when the share of illustration-like images also differs by ``margin / 2`` or more),
    ``baseline_auc`` (the same features inside the picture; ``None`` for ``content``), ``margin``, ``warn`` and a
    ``message`` naming the leak and the fix; ``content`` adds ``illustration_fraction`` per class. Unreadable
    images are left out (``n`` says how many were used).
    """
    from gendetect.errors import GendetectError, UnknownNameError
    from gendetect.imageio import load_image

    unknown = set(checks) - set(PIXEL_CHECKS)
    if unknown:
        raise UnknownNameError(f"Unknown pixel checks {sorted(unknown)}; valid checks: {', '.join(PIXEL_CHECKS)}.")
    recs = _sample(_usable(records), max_images, seed)
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("ring", "ring_base", "strip", "strip_base", "content")}
    labels = []
    for r in recs:
        try:
            image = load_image(r.path)
        except (GendetectError, OSError) as e:
            logger.debug("pixel audit: skipping %s: %s", r.path, e)
            continue
        labels.append(r.label == "fake")
        if "border" in checks:
            ring, base = border_features(image)
            rows["ring"].append(ring)
            rows["ring_base"].append(base)
        if "text_strip" in checks:
            strip, base = strip_features(image)
            rows["strip"].append(strip)
            rows["strip_base"].append(base)
        if "content" in checks:
            rows["content"].append(content_features(image))
    y = np.asarray(labels, dtype=int)
    out: dict[str, dict[str, Any]] = {}
    if _n_min(y) < 2:
        for c in checks:
            out[c] = _skipped(c, margin, "needs at least 2 real and 2 fake readable images")
            out[c]["n"] = len(y)
        return out
    if "border" in checks:
        ring = np.asarray(rows["ring"])
        framed = ring[:, _RING_FLATNESS] >= 0.9  # the outer 2 px are flat on all four sides: a frame
        framed_fraction = {"real": float(framed[y == 0].mean()), "fake": float(framed[y == 1].mean())}
        out["border"] = _leak_check(
            "border",
            ring,
            np.asarray(rows["ring_base"]),
            y,
            margin,
            seed,
            "the outer 2-16 px of the image (frame colour, flatness, step to the picture)",
            "the images carry a frame or border that differs between the classes; use centre crops inside the "
            "frame (or crop the frame off) for real and fake alike",
            evident=f"{100 * framed.mean():.0f}% of the images have a flat frame" if framed.mean() >= 0.5 else None,
        )
        out["border"]["framed_fraction"] = framed_fraction
    if "text_strip" in checks:
        out["text_strip"] = _leak_check(
            "text_strip",
            np.asarray(rows["strip"]),
            np.asarray(rows["strip_base"]),
            y,
            margin,
            seed,
            "the bottom and top quarters (dark panels, uniform rows, text-like edges)",
            "a caption panel, watermark, printed text or frame edge differs between the classes; crop off the "
            "caption panel (keep only the picture region) for real and fake alike",
        )
    if "content" in checks:
        out["content"] = _content_check(np.asarray(rows["content"]), y, margin)
    for c in out.values():
        c["n"] = len(y)
    return out


def _content_check(F: np.ndarray, y: np.ndarray, margin: float) -> dict[str, Any]:
    score = illustration_score_features(F)
    auc = _separation(y, score)
    frac = {"real": float(np.mean(score[y == 0] >= 0.5)), "fake": float(np.mean(score[y == 1] >= 0.5))}
    # a shift of the score within "photo" is not a content leak: the classes must also differ in how many look drawn
    warn = bool(auc >= 0.5 + margin and abs(frac["fake"] - frac["real"]) >= margin / 2)
    summary = (
        f"{100 * frac['real']:.0f}% of reals and {100 * frac['fake']:.0f}% of fakes look like illustrations "
        "(illustration score >= 0.5)"
    )
    if warn:
        message = (
            f"SHORTCUT WARNING (content): what the images show (illustration vs photograph, by colour and texture "
            f"alone) separates real from fake with AUC {auc:.2f} (chance 0.50, margin {margin}); {summary}. A "
            "detector can score well here by telling art from photos. Fix: balance the content of the classes, "
            "and report photoreal-only numbers (rows with illustration_score < 0.5) beside the overall ones."
        )
    else:
        message = (
            f"content check passed: illustration-vs-photo content separates the classes with AUC {auc:.2f}; {summary}"
        )
    return {
        **_check_result("content", auc, None, margin, message),
        "warn": warn,
        "illustration_fraction": frac,
    }


def _has_readable_paths(records: Sequence[ImageRecord]) -> bool:
    return any(isinstance(r.path, str) and os.path.isfile(r.path) for r in records[:50])


def shortcut_audit(
    records: Sequence[ImageRecord],
    *,
    margin: float = DEFAULT_MARGIN,
    seed: int = 0,
    pixels: bool | None = None,
    max_images: int = DEFAULT_MAX_IMAGES,
) -> dict[str, Any]:
    """Run the file-facts check and (``pixels``, default: when the records' paths are readable files) the pixel
    checks.

    Returns the file-facts result at the top level, as it always was (``{"auc", "margin", "flagged", "message",
    "per_feature", "n"}``; ``flagged`` is the file-facts verdict), plus ``"border"``, ``"text_strip"`` and
    ``"content"`` (see :func:`pixel_audit`; absent when pixels are not read), ``"warnings"`` (the message of every
    check that warns, file facts first) and ``"flagged_checks"`` (their names).
    """
    result = file_facts_audit(records, margin=margin, seed=seed)
    usable = _usable(records)
    if pixels is None:
        pixels = _has_readable_paths(usable)
    if pixels:
        result.update(pixel_audit(usable, margin=margin, seed=seed, max_images=max_images))
    flagged = ["file_facts"] if result["flagged"] else []
    flagged += [c for c in PIXEL_CHECKS if result.get(c, {}).get("warn")]
    result["flagged_checks"] = flagged
    result["warnings"] = [result["message"] if c == "file_facts" else result[c]["message"] for c in flagged]
    if flagged:  # one line here; the messages (leak and fix) are in result["warnings"], which the CLI prints
        logger.warning("shortcut audit: %s warn; the audit's 'warnings' name the leak and the fix", ", ".join(flagged))
    return result


def audit_warnings(audit: dict[str, Any] | None) -> list[str]:
    """The warning messages of a stored audit (new or old format: old ones have only ``flagged``/``message``)."""
    if not audit:
        return []
    if "warnings" in audit:
        return list(audit["warnings"])
    return [audit["message"]] if audit.get("flagged") and audit.get("message") else []
