"""Invisible DWT-DCT watermarks that Stable Diffusion's reference code embeds, decoded from the pixels.

The reference scripts and diffusers embed their mark with ``invisible-watermark`` (``imwatermark``), method
``dwtDct``: one bit per 4x4 block of the Haar approximation band of the U channel (YUV), written into the
largest AC coefficient modulo ``scale = 36``. The messages (constants below) are:

* Stable Diffusion v1: the bytes ``"StableDiffusionV1"`` (136 bits), embedded on a BGR array
  (CompVis/stable-diffusion ``scripts/txt2img.py``: ``wm = "StableDiffusionV1"``,
  ``wm_encoder.set_watermark('bytes', wm.encode('utf-8'))``, ``put_watermark`` converts RGB to BGR first);
* Stable Diffusion v2: the bytes ``"SDV2"`` (32 bits), same code path
  (Stability-AI/stablediffusion ``scripts/txt2img.py``: ``wm = "SDV2"``);
* SDXL: a fixed 48-bit message ``0b101100111110110010010000011110111011000110011110`` (``0xB3EC907BB19E``),
  embedded on a BGR array by Stability-AI/generative-models (``sgm/inference/helpers.py``, ``WatermarkEmbedder``:
  ``WATERMARK_MESSAGE``) and on the RGB array *as if it were BGR* by huggingface/diffusers
  (``src/diffusers/pipelines/stable_diffusion_xl/watermark.py``, ``StableDiffusionXLWatermarker``, which copies
  that constant but does not flip the channels). Both channel orders are tried.

Decoding: :func:`block_scores` computes, once per channel order, the bit that every block carries, exactly as
``imwatermark``'s ``EmbedMaxDct.decode_frame`` does block by block (a test checks that the bits equal
``WatermarkDecoder(...).decode(bgr, "dwtDct")``), but vectorised with numpy: one pass serves every message length,
in milliseconds rather than the library's per-block Python loop (the Haar step is PyWavelets' arithmetic
re-done in numpy, also bit for bit). A message's bits are the majority of its blocks
(``num % length``). The finding reports the bit-error rate (BER) against the expected message; a match needs
``BER <= MATCH_BER[message]``, thresholds chosen so that no real photo in the shared data matches
(``benchmarks/evidence_false_match.py`` measures the false-match rate and the survival under JPEG and resizing).

The mark is fragile: JPEG re-encoding and resizing erase it (see the survival table in the README), so a missing
watermark proves nothing. It runs in the core install (numpy); OpenCV, when installed (``gendetect[evidence]``
brings ``opencv-python-headless``), does the colour conversion faster, with the same bits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from gendetect.evidence.base import CHECKS, Check, EvidenceContext, Finding, Skip

logger = logging.getLogger(__name__)

SCALE = 36  # imwatermark EmbedMaxDct default scales=[0, 36, 36]: U channel only (its decode loops channels 0, 1)
BLOCK = 4  # imwatermark EmbedMaxDct default block=4
MIN_PIXELS = 256 * 256  # imwatermark refuses smaller images ("image too small, should be larger than 256x256")
MAX_DECODE_PIXELS = 16_000_000  # decode at most the top rows holding this many pixels (the block order is kept)


def bytes_to_bits(data: bytes) -> tuple[int, ...]:
    """Bits of ``data``, most significant first, as ``WatermarkEncoder.set_watermark('bytes', data)`` does."""
    return tuple(int(b) for b in np.unpackbits(np.frombuffer(data, dtype=np.uint8)))


def int_to_bits(value: int) -> tuple[int, ...]:
    """``[int(bit) for bit in bin(value)[2:]]``, as the SDXL watermarkers build ``WATERMARK_BITS``."""
    return tuple(int(b) for b in bin(value)[2:])


@dataclass(frozen=True)
class Watermark:
    """A known watermark message."""

    name: str  # registry-style key
    label: str  # who embeds it
    bits: tuple[int, ...]
    orders: tuple[str, ...]  # "bgr": embedded on a BGR array; "rgb": the RGB array passed as if BGR (diffusers)
    float_input: bool  # encoded on a float32 array (SDXL code paths) rather than uint8: OpenCV's YUV offsets differ
    source: str  # where the constant comes from


SDXL_MESSAGE = 0b101100111110110010010000011110111011000110011110
WATERMARKS: dict[str, Watermark] = {
    w.name: w
    for w in (
        Watermark(
            "sd1",
            "Stable Diffusion v1 reference scripts",
            bytes_to_bits(b"StableDiffusionV1"),
            ("bgr",),
            False,
            "CompVis/stable-diffusion scripts/txt2img.py",
        ),
        Watermark(
            "sd2",
            "Stable Diffusion v2 reference scripts",
            bytes_to_bits(b"SDV2"),
            ("bgr",),
            False,
            "Stability-AI/stablediffusion scripts/txt2img.py",
        ),
        Watermark(
            "sdxl",
            "SDXL (diffusers / Stability generative-models)",
            int_to_bits(SDXL_MESSAGE),
            ("rgb", "bgr"),
            True,
            "huggingface/diffusers pipelines/stable_diffusion_xl/watermark.py; "
            "Stability-AI/generative-models sgm/inference/helpers.py",
        ),
    )
}

MATCH_BER = {"sd1": 0.3, "sd2": 0.0625, "sdxl": 0.15}
"""Largest bit-error rate that counts as a match, per message: at most 40 of 136, 2 of 32 and 7 of 48 bits wrong.
For random bits (an unmarked image) the chance of a match is 8.7e-7, 1.2e-7 and 3.1e-7 per reading (binomial
tails; SDXL is read in two channel orders). On the 463 real photos of the shared data the lowest BER of any reading
is 0.375, 0.25 and 0.333, far above (``benchmarks/evidence_false_match.py``)."""


_HAAR = 0.7071067811865476  # PyWavelets' haar filter tap, sqrt(1/2)


def haar_approximation(x: np.ndarray) -> np.ndarray:
    """``pywt.dwt2(x, "haar")[0]`` for an even-sized 2-D array, bit for bit (same dtype, same operation order:
    pairs of rows first, then pairs of columns), in a tenth of the time."""
    dtype = np.float32 if x.dtype == np.float32 else np.float64
    x = np.asarray(x, dtype=dtype)
    h = dtype(_HAAR)
    rows = x[0::2] * h + x[1::2] * h
    return rows[:, 0::2] * h + rows[:, 1::2] * h


# OpenCV's BT.601 RGB -> YUV (imgproc ``color_yuv``): Y = 0.299 R + 0.587 G + 0.114 B, U = 0.492 (B - Y) + half
# (128 for uint8, 0.5 for float); for uint8 in fixed point, 14 fractional bits, rounded half up (``CV_DESCALE``)
_LUMA = {"r": 0.299, "g": 0.587, "b": 0.114}
_LUMA_FIXED = {"r": 4899, "g": 9617, "b": 1868}
_U_WEIGHT, _U_FIXED, _SHIFT = 0.492, 8061, 14


def u_plane(array: np.ndarray, order: str = "bgr") -> np.ndarray:
    """The U plane of OpenCV's ``cvtColor(array, COLOR_BGR2YUV)`` (``order="bgr"``: channel 0 is blue) or
    ``COLOR_RGB2YUV`` (``"rgb-image"``) in numpy, for ``(H, W, 3)`` uint8 or float32 arrays.

    uint8: OpenCV's fixed-point arithmetic, bit for bit (a test compares all 2^24 colours). float32: OpenCV's
    vectorised loop fuses multiply-adds (``Y = fma(c0, w0, fma(c1, w1, c2 * w2))``, ``U = fma(B - Y, 0.492, 0.5)``,
    the weights as float32); a float32 product is exact in float64, so a float64 multiply-add rounded once to
    float32 gives the fused result (bit for bit on every integer-valued input, which is what a decoded image is).
    """
    names = "bgr" if order == "bgr" else "rgb"
    blue = names.index("b")
    if array.dtype == np.uint8:
        x = array.astype(np.int32)
        w = [_LUMA_FIXED[c] for c in names]
        y = (x[..., 0] * w[0] + x[..., 1] * w[1] + x[..., 2] * w[2] + (1 << (_SHIFT - 1))) >> _SHIFT
        u = ((x[..., blue] - y) * _U_FIXED + (128 << _SHIFT) + (1 << (_SHIFT - 1))) >> _SHIFT
        return np.clip(u, 0, 255).astype(np.uint8)
    x = np.asarray(array, dtype=np.float32)
    w = [np.float32(_LUMA[c]) for c in names]
    y = (x[..., 2] * w[2]).astype(np.float64)
    y = (x[..., 1].astype(np.float64) * w[1] + y).astype(np.float32)
    y = (x[..., 0].astype(np.float64) * w[0] + y).astype(np.float32)
    return ((x[..., blue] - y).astype(np.float64) * np.float32(_U_WEIGHT) + 0.5).astype(np.float32)


def _u(array: np.ndarray, order: str) -> np.ndarray:
    """The U plane through OpenCV when it is installed (decoding 2-3x faster, ``benchmarks/watermark_decode.py``),
    else :func:`u_plane` (the same bits)."""
    try:
        import cv2
    except ImportError:
        return u_plane(array, order)
    code = cv2.COLOR_RGB2YUV if order == "rgb-image" else cv2.COLOR_BGR2YUV  # RGB2YUV(rgb) == BGR2YUV(bgr)
    return cv2.cvtColor(array, code)[..., 1]


def block_scores(array: np.ndarray, *, float_input: bool = False, order: str = "bgr") -> np.ndarray:
    """``(n_blocks,)`` int8: the bit each 4x4 block of the U band carries, in ``imwatermark``'s block order.

    ``array`` is ``(H, W, 3)`` uint8 as the encoder was given it (``imwatermark`` calls it BGR), or, with
    ``order="rgb-image"``, an RGB image whose BGR version was encoded (read without copying the flipped array).
    ``float_input``: read it as the float32 array the SDXL watermarkers encode (OpenCV offsets U and V by 0.5
    for float images and by 128 for uint8 ones, so a mark written on floats reads only as floats).
    Mirrors ``EmbedMaxDct.decode`` + ``infer_dct_matrix``: YUV conversion (OpenCV's when installed, else the
    same arithmetic in numpy, :func:`u_plane`), Haar ``dwt2`` of channel 1, then per block the largest-magnitude
    coefficient after the first, ``(|v| mod scale) > scale / 2``.
    """
    row, col = array.shape[:2]
    array = np.ascontiguousarray(array[: row // 4 * 4, : col // 4 * 4], dtype=np.float32 if float_input else np.uint8)
    ca1 = haar_approximation(_u(array, order))
    r, c = ca1.shape[0] // BLOCK, ca1.shape[1] // BLOCK
    blocks = ca1[: r * BLOCK, : c * BLOCK].reshape(r, BLOCK, c, BLOCK).transpose(0, 2, 1, 3).reshape(r * c, -1)
    pos = np.argmax(np.abs(blocks[:, 1:]), axis=1) + 1
    val = np.abs(blocks[np.arange(len(blocks)), pos])
    return ((val % SCALE) > 0.5 * SCALE).astype(np.int8)


def message_bits(scores: np.ndarray, n_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """``(bits, means)`` of an ``n_bits`` message: block ``num`` carries bit ``num % n_bits``; majority vote.

    ``means`` ``(n_bits,)`` float is the share of blocks voting 1 (the library thresholds ``mean * 255 > 127``).
    """
    if len(scores) == 0:
        return np.zeros(n_bits, dtype=np.int8), np.full(n_bits, 0.5)
    which = np.arange(len(scores)) % n_bits
    totals = np.bincount(which, minlength=n_bits)
    means = np.bincount(which, weights=scores, minlength=n_bits) / np.maximum(totals, 1)
    return (means * 255 > 127).astype(np.int8), means


@dataclass(frozen=True)
class Decoded:
    """The best reading of one message: its bit-error rate and the channel order it was read in."""

    watermark: str
    order: str
    ber: float
    n_bits: int
    confidence: float  # mean |2*mean - 1| over the bits: ~1 for a clean mark, ~0.1 for noise


def decode(image_rgb: np.ndarray, *, max_pixels: int = MAX_DECODE_PIXELS) -> list[Decoded]:
    """The lowest-BER reading of every known watermark in an ``(H, W, 3)`` uint8 RGB array."""
    h, w = image_rgb.shape[:2]
    if h * w < MIN_PIXELS:
        raise Skip(f"image smaller than 256×256 pixels ({w}×{h}): too few blocks to carry a watermark")
    if h * w > max_pixels:  # keep whole rows from the top: block numbering (row-major) is unchanged
        rows = max(8, max_pixels // w // 8 * 8)
        image_rgb = image_rgb[:rows]
    scores = {
        (order, f): block_scores(image_rgb, float_input=f, order="bgr" if order == "rgb" else "rgb-image")
        for order, f in {(o, w.float_input) for w in WATERMARKS.values() for o in w.orders}
    }
    out = []
    for wm in WATERMARKS.values():
        expected = np.asarray(wm.bits, dtype=np.int8)
        readings = []
        for order in wm.orders:
            bits, means = message_bits(scores[order, wm.float_input], len(expected))
            ber = float(np.mean(bits != expected))
            readings.append(Decoded(wm.name, order, ber, len(expected), float(np.mean(np.abs(2 * means - 1)))))
        out.append(min(readings, key=lambda d: d.ber))
    return out


@CHECKS.register("watermark")
class WatermarkCheck(Check):
    """The DWT-DCT watermark of Stable Diffusion v1/v2 and SDXL (``invisible-watermark``'s ``dwtDct``)."""

    name = "watermark"
    needs_pixels = True

    def run(self, ctx: EvidenceContext) -> list[Finding]:
        rgb = np.asarray(ctx.image().convert("RGB"), dtype=np.uint8)
        out = []
        for d in decode(rgb):
            if d.ber > MATCH_BER[d.watermark]:
                continue
            wm = WATERMARKS[d.watermark]
            errors = round(d.ber * d.n_bits)
            out.append(
                Finding(
                    self.name,
                    "watermark",
                    "conclusive",
                    "fake",
                    f"{d.watermark} watermark (BER {d.ber:.2f})",
                    f"The pixels carry the invisible watermark of {wm.label} ({errors} of {d.n_bits} bits wrong, "
                    f"BER {d.ber:.3f}; a match needs BER ≤ {MATCH_BER[d.watermark]}). Only that code embeds it; "
                    "re-encoding or resizing usually erases it, so its absence proves nothing.",
                    details={
                        "watermark": d.watermark,
                        "bit_error_rate": d.ber,
                        "bits": d.n_bits,
                        "channel_order": d.order,
                        "confidence": round(d.confidence, 4),
                        "match_ber": MATCH_BER[d.watermark],
                        "source": wm.source,
                    },
                )
            )
        return out
