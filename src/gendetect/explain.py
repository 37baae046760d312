"""Why a verdict: a per-region score map, the residual spectrum with the up-sampling peaks marked, and the findings.

:func:`explain` scores one image with the model's tiles (``DetectionPipeline.score_tiles`` when the model has it,
else one tile covering the whole image), reads the file's evidence (:mod:`gendetect.evidence`) and fuses them as a
scan does. :meth:`Explanation.write` saves

* ``score_map.png``: the image with each tile tinted by its P(fake) (green 0 -> red 1) and labelled;
* ``spectrum.png``: the log-magnitude Fourier spectrum of the image's high-pass residual (a 3x3 Laplacian of the
  luma, Hann-windowed). Generators that up-sample by 2, 4 or 8 leave periodic traces that show as bright peaks at
  1/2, 1/4 and 1/8 cycles per pixel; those frequencies are circled and their peak-to-background ratios reported;
* ``findings.json``: the verdicts, the tile scores, the spectrum peaks and every finding;
* ``explanation.md``: the same in words, with the two pictures, readable without a terminal.

Drawing uses Pillow only (no matplotlib), so it works with the core install.

Example:
    >>> from gendetect.explain import explain
    >>> ex = explain("photo.jpg")                 # doctest: +SKIP
    >>> ex.write("photo.explained")               # doctest: +SKIP
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

if TYPE_CHECKING:
    from gendetect.imageio import Source

logger = logging.getLogger(__name__)

PEAK_FREQUENCIES = (0.5, 0.25, 0.125)  # cycles per pixel: the traces of 2x, 4x and 8x up-sampling
SPECTRUM_SIZE = 512  # the residual spectrum is taken on a centre crop of at most this many pixels a side
MAX_VIEW = 1024  # pictures are drawn at most this wide


@dataclass
class Explanation:
    """Everything :func:`explain` found about one image."""

    path: str
    model: str
    threshold: float
    p_fake: float | None  # the model's P(fake) of the whole image (None: no forensic signal)
    pixel_verdict: str | None
    verdict: str | None  # after fusing the evidence
    verdict_source: str
    rule: str  # the policy rule that decided, in one sentence
    boxes: np.ndarray  # (N, 4) int x0, y0, x1, y1
    tile_p_fake: np.ndarray  # (N,) float, NaN for a tile without signal
    peaks: dict[str, float]  # "1/2", "1/4", "1/8" -> peak-to-background ratio of the residual spectrum
    findings: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    score_map: Image.Image | None = None
    spectrum: Image.Image | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "model": self.model,
            "threshold": self.threshold,
            "p_fake": self.p_fake,
            "pixel_verdict": self.pixel_verdict,
            "verdict": self.verdict,
            "verdict_source": self.verdict_source,
            "rule": self.rule,
            "tiles": [
                {"box": [int(v) for v in b], "p_fake": None if not np.isfinite(p) else float(p)}
                for b, p in zip(self.boxes, self.tile_p_fake)
            ],
            "spectrum_peaks": self.peaks,
            "findings": self.findings,
            "evidence_skipped": self.skipped,
        }

    def images_as_data_urls(self) -> dict[str, str]:
        """``{"score_map": "data:image/png;base64,...", "spectrum": ...}`` for a web page."""
        out = {}
        for key, im in (("score_map", self.score_map), ("spectrum", self.spectrum)):
            if im is not None:
                buf = io.BytesIO()
                im.save(buf, "PNG", optimize=True)
                out[key] = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
        return out

    def write(self, out_dir: str | os.PathLike) -> list[Path]:
        """Write the pictures, ``findings.json`` and ``explanation.md`` into ``out_dir``; returns the paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name, im in (("score_map.png", self.score_map), ("spectrum.png", self.spectrum)):
            if im is not None:
                im.save(out / name)
                written.append(out / name)
        (out / "findings.json").write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        (out / "explanation.md").write_text(self.markdown())
        return [*written, out / "findings.json", out / "explanation.md"]

    def markdown(self) -> str:
        p = "no score (no forensic signal)" if self.p_fake is None else f"P(fake) = {self.p_fake:.3f}"
        lines = [
            f"# {Path(self.path).name}: {self.verdict}",
            "",
            f"**Verdict: {self.verdict}**, decided by **{self.verdict_source}** ({self.rule}).",
            "",
            (
                f"The pixel detector ({self.model}) gives {p} (fake above {self.threshold:.3g}): "
                f"pixel verdict {self.pixel_verdict}."
            ),
            "",
            "## What the file says",
            "",
        ]
        if self.findings:
            lines += ["| check | finding | strength | points to | why |", "|---|---|---|---|---|"]
            for f in self.findings:
                reason = f["reason"].replace("|", "\\|")
                lines.append(
                    f"| {f['check']} | {f['summary']} | {f['strength']} | {f['indicates'] or '-'} | {reason} |"
                )
        else:
            lines.append(
                "Nothing: no generator metadata, C2PA manifest or watermark. Metadata is easy to strip, so "
                "its absence proves nothing; the verdict rests on the pixels."
            )
        if self.skipped:
            lines += ["", "Not checked: " + "; ".join(f"{k} ({v})" for k, v in self.skipped.items()) + "."]
        finite = self.tile_p_fake[np.isfinite(self.tile_p_fake)]
        lines += [
            "",
            "## Where the pixels look generated",
            "",
            f"![score map](score_map.png)\n\n{len(self.boxes)} tile(s), each tinted by its P(fake) "
            "(green 0, red 1; grey: no forensic signal)."
            + (f" Tile scores range {finite.min():.2f} to {finite.max():.2f}." if len(finite) else ""),
            "",
            "## Up-sampling traces",
            "",
            "![residual spectrum](spectrum.png)\n\nThe Fourier spectrum of the high-pass residual. Images up-sampled "
            "by a generator's decoder often show bright peaks at the circled frequencies (1/2, 1/4, 1/8 cycles per "
            "pixel); a camera photo usually does not. Peak-to-background ratios (about 1 = no peak, above ~3 a clear peak): "
            + ", ".join(f"{k}: {v:.2f}" for k, v in self.peaks.items())
            + ". JPEG compression also leaves peaks at 1/8, so read these with the file's format in mind.",
            "",
        ]
        return "\n".join(lines)


# -- scoring --------------------------------------------------------------------------------------------------
def tile_scores(pipeline: Any, image: Image.Image) -> tuple[np.ndarray, np.ndarray, float | None]:
    """``(boxes (N, 4) int, p_fake (N,), p_image)`` from ``pipeline.score_tiles`` or one whole-image tile."""
    if hasattr(pipeline, "score_tiles"):
        t = pipeline.score_tiles(image)
        p_image = None if t.p_image is None or not np.isfinite(t.p_image) else float(t.p_image)
        return np.asarray(t.boxes, dtype=int).reshape(-1, 4), np.asarray(t.p_fake, dtype=float), p_image
    p = float(pipeline.predict_proba([image])[0])
    return np.asarray([[0, 0, image.width, image.height]]), np.asarray([p]), p if np.isfinite(p) else None


# -- drawing --------------------------------------------------------------------------------------------------
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _colour(p: float) -> tuple[int, int, int]:
    """Green (0) -> yellow (0.5) -> red (1)."""
    p = float(np.clip(p, 0, 1))
    return (int(255 * min(1, 2 * p)), int(255 * min(1, 2 * (1 - p))), 40)


def draw_score_map(image: Image.Image, boxes: np.ndarray, p_fake: np.ndarray, threshold: float) -> Image.Image:
    """The image with each tile tinted by its P(fake), its score written in, and a legend strip below."""
    scale = min(1.0, MAX_VIEW / max(image.size))
    base = image.convert("RGB")
    if scale < 1:
        base = base.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    font = _font(max(10, min(18, base.width // 30)))
    for box, p in zip(boxes, p_fake):
        x0, y0, x1, y1 = (round(v * scale) for v in box)
        fill = (128, 128, 128, 90) if not np.isfinite(p) else (*_colour(p), 110)
        draw.rectangle([x0, y0, x1 - 1, y1 - 1], fill=fill, outline=(255, 255, 255, 160))
        if x1 - x0 >= 36 and y1 - y0 >= 18:
            label = "-" if not np.isfinite(p) else f"{p:.2f}"
            draw.text(
                (x0 + 3, y0 + 2),
                label,
                fill=(255, 255, 255, 255),
                font=font,
                stroke_width=2,
                stroke_fill=(0, 0, 0, 255),
            )
    shown = Image.alpha_composite(base.convert("RGBA"), overlay).convert("RGB")
    legend_h = 34
    canvas = Image.new("RGB", (shown.width, shown.height + legend_h), (255, 255, 255))
    canvas.paste(shown, (0, 0))
    d = ImageDraw.Draw(canvas)
    x_left, x_right = 60, max(61, shown.width - 60)
    for x in range(x_left, x_right):
        d.line([(x, shown.height + 6), (x, shown.height + 16)], fill=_colour((x - x_left) / (x_right - x_left)))
    tx = x_left + threshold * (x_right - x_left)
    d.line([(tx, shown.height + 2), (tx, shown.height + 20)], fill=(0, 0, 0), width=2)
    small = _font(11)
    d.text((4, shown.height + 5), "P(fake) 0", fill=(0, 0, 0), font=small)
    d.text((x_right + 4, shown.height + 5), "1", fill=(0, 0, 0), font=small)
    d.text((max(0, tx - 30), shown.height + 20), f"threshold {threshold:.2f}", fill=(0, 0, 0), font=small)
    return canvas


def residual_spectrum(
    image: Image.Image, size: int = SPECTRUM_SIZE, tile: int = 128
) -> tuple[np.ndarray, dict[str, float]]:
    """``(log-magnitude spectrum (tile, tile) float, peaks)`` of the Laplacian residual of the luma.

    The magnitude is averaged over Hann-windowed ``tile`` x ``tile`` patches of a centre crop of at most ``size``
    pixels a side, overlapping by half (Welch's method), so that periodic traces stand out of the noise.
    ``peaks`` maps ``"1/2"``, ``"1/4"``, ``"1/8"`` to the largest ratio, over both axes and the diagonals, of the
    magnitude at that frequency to the median magnitude at the same distance from the centre: about 1 (up to ~2
    by chance) without a peak.
    """
    grey = np.asarray(image.convert("L"), dtype=np.float64)
    h, w = grey.shape
    crop_h, crop_w = min(size, h), min(size, w)
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    g = grey[top : top + crop_h, left : left + crop_w]
    if min(g.shape) < 18:
        return np.zeros((16, 16)), {f"1/{round(1 / f)}": float("nan") for f in PEAK_FREQUENCIES}
    residual = 4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
    m = min(tile, min(residual.shape) // 8 * 8)
    window = np.outer(np.hanning(m), np.hanning(m))
    step = max(1, m // 2)
    mag = np.zeros((m, m))
    count = 0
    for y in range(0, residual.shape[0] - m + 1, step):
        for x in range(0, residual.shape[1] - m + 1, step):
            patch = residual[y : y + m, x : x + m]
            mag += np.abs(np.fft.fftshift(np.fft.fft2((patch - patch.mean()) * window)))
            count += 1
    mag /= max(count, 1)
    yy, xx = np.indices(mag.shape)
    radius = np.hypot(yy - m // 2, xx - m // 2)
    peaks = {}
    for f in PEAK_FREQUENCIES:
        ratios = []
        for y, x in _peak_points(f, m):  # against the median at the same distance from the centre (same band)
            ring = mag[np.abs(radius - radius[y, x]) < 1.5]
            ratios.append(mag[y, x] / (float(np.median(ring)) or 1.0))
        peaks[f"1/{round(1 / f)}"] = float(max(ratios))
    return np.log1p(mag), peaks


def _peak_points(f: float, m: int) -> list[tuple[int, int]]:
    """Indices of frequency ``f`` (cycles/pixel) on both axes and diagonals of an fftshifted ``m`` x ``m`` array."""
    c, k = m // 2, round(f * m)
    pts = [
        (c, c + k),
        (c, c - k),
        (c + k, c),
        (c - k, c),
        (c + k, c + k),
        (c - k, c - k),
        (c + k, c - k),
        (c - k, c + k),
    ]
    return list(dict.fromkeys((min(max(y, 0), m - 1), min(max(x, 0), m - 1)) for y, x in pts))


def draw_spectrum(log_mag: np.ndarray, peaks: dict[str, float], view: int = 512) -> Image.Image:
    """The log spectrum as a grey picture with the up-sampling frequencies circled and labelled."""
    lo, hi = np.percentile(log_mag, [1, 99.9])
    norm = np.clip((log_mag - lo) / max(hi - lo, 1e-9), 0, 1)
    rgb = np.stack([norm * 255, norm * 235, norm * 180], axis=-1).astype(np.uint8)  # warm grey
    m = log_mag.shape[0]
    im = Image.fromarray(rgb).resize((view, view), Image.Resampling.BILINEAR)
    canvas = Image.new("RGB", (view, view + 26), (255, 255, 255))
    canvas.paste(im, (0, 0))
    d = ImageDraw.Draw(canvas)
    s = view / m
    font = _font(12)
    colours = {"1/2": (255, 60, 60), "1/4": (60, 200, 255), "1/8": (120, 255, 120)}
    for f in PEAK_FREQUENCIES:
        label = f"1/{round(1 / f)}"
        for y, x in _peak_points(f, m):
            cx, cy = (x + 0.5) * s, (y + 0.5) * s
            d.ellipse([cx - 8, cy - 8, cx + 8, cy + 8], outline=colours[label], width=2)
        x, y = _peak_points(f, m)[0][1], m // 2
        d.text((min((x + 0.5) * s - 8, view - 24), (y + 0.5) * s + 10), label, fill=colours[label], font=font)
    text = "residual spectrum; peaks/background: " + ", ".join(f"{k} {v:.2f}" for k, v in peaks.items())
    d.text((4, view + 6), text, fill=(0, 0, 0), font=font)
    return canvas


# -- the entry point ------------------------------------------------------------------------------------------------
def explain(
    source: Source,
    model: Any = None,
    *,
    evidence: bool = True,
    max_pixels: int | None = None,
    name: str | None = None,
) -> Explanation:
    """Score map, residual spectrum and findings of one image (a path or its bytes).

    Args:
        source: the image file or its bytes.
        model: a :class:`~gendetect.pipeline.DetectionPipeline` (or any object with ``predict_proba``, ``verdict``,
            ``threshold`` and ``name``), a model directory, or ``None`` for the default.
        evidence: read the file's evidence and fuse it (as ``gendetect scan`` does).
        max_pixels: decompression-bomb guard (default: gendetect's).
        name: the name to report for bytes.
    """
    from gendetect.imageio import DEFAULT_MAX_PIXELS, load_image, source_name
    from gendetect.pipeline import load_model

    limit = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    pipeline = model if hasattr(model, "predict_proba") else load_model(model)
    image = load_image(source, max_pixels=limit)
    boxes, p_tiles, p_image = tile_scores(pipeline, image)
    pixel_verdict = "uncertain" if p_image is None else pipeline.verdict(p_image)
    findings: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    verdict, verdict_source, rule = pixel_verdict, "pixels", "the pixel detector's verdict (evidence not read)"
    if evidence:
        from gendetect.evidence import collect

        report = collect(source, max_pixels=limit)
        fused = report.fused(pixel_verdict)
        verdict, verdict_source, rule = fused.verdict, fused.source, fused.rule
        findings, skipped = [f.to_dict() for f in report.findings], report.skipped
    log_mag, peaks = residual_spectrum(image)
    label = name or source_name(source)
    return Explanation(
        path=label,
        model=pipeline.name,
        threshold=pipeline.threshold,
        p_fake=p_image,
        pixel_verdict=pixel_verdict,
        verdict=verdict,
        verdict_source=verdict_source,
        rule=rule,
        boxes=boxes,
        tile_p_fake=p_tiles,
        peaks=peaks,
        findings=findings,
        skipped=skipped,
        score_map=draw_score_map(image, boxes, p_tiles, pipeline.threshold),
        spectrum=draw_spectrum(log_mag, peaks),
    )


__all__ = ["Explanation", "draw_score_map", "draw_spectrum", "explain", "residual_spectrum", "tile_scores"]
