"""Read any image file into 8-bit RGB, safely, and describe the file it came from.

Every decoder path in gendetect goes through :func:`load_image_with_info`:

* the header is checked against ``max_pixels`` **before** decoding, so a 20,000 x 20,000 decompression bomb is
  refused in microseconds without allocating gigabytes;
* EXIF orientation is applied (``ImageOps.exif_transpose``), the first frame of an animation is used;
* any mode becomes ``RGB``: CMYK through its embedded ICC profile when there is one, 16-bit and float greyscale
  rescaled (not clipped) to 8 bits, palette and alpha images composited on white;
* the image is never resized: forensic traces live at native resolution.

Anything that goes wrong raises :class:`~gendetect.errors.ImageLoadError` with the file name and a clear reason.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from gendetect.errors import ImageLoadError

DEFAULT_MAX_PIXELS = 120_000_000  # lets a 10,000 x 12,000 photo through, refuses a 20,000 x 20,000 bomb

IMAGE_EXTENSIONS = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".jpe",
        ".jfif",
        ".png",
        ".webp",
        ".bmp",
        ".tif",
        ".tiff",
        ".gif",
        ".ppm",
        ".pgm",
        ".pbm",
        ".pnm",
        ".tga",
        ".jp2",
        ".j2k",
        ".ico",
        ".dib",
        ".avif",
        ".heic",
        ".heif",
    }
)

_EXIF_ORIENTATION = 0x0112


def is_image_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` has an image file extension (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


@dataclass
class ImageInfo:
    """Facts about an image file, as recorded in manifests and scan results."""

    format: str | None  # Pillow's name of the container: "JPEG", "PNG", "WEBP", ...
    width: int  # after EXIF orientation
    height: int  # after EXIF orientation
    mode: str  # Pillow mode of the file before conversion
    jpeg_quality: int | None  # IJG-equivalent quality estimated from the quantisation tables (JPEG only)
    has_exif: bool
    file_size: int  # bytes
    sha256: str | None  # hex digest of the bytes (None when not computed)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _describe(source: str | os.PathLike | bytes) -> str:
    return "<bytes>" if isinstance(source, bytes | bytearray) else str(source)


def read_bytes(source: str | os.PathLike | bytes) -> bytes:
    """The file's bytes; :class:`ImageLoadError` with a clear reason when the path cannot be read."""
    if isinstance(source, bytes | bytearray):
        return bytes(source)
    path = Path(source)
    try:
        return path.read_bytes()
    except FileNotFoundError as e:
        raise ImageLoadError(f"{path}: no such file") from e
    except IsADirectoryError as e:
        raise ImageLoadError(f"{path}: is a directory, not an image file") from e
    except PermissionError as e:
        raise ImageLoadError(f"{path}: cannot read file: permission denied") from e
    except OSError as e:
        raise ImageLoadError(f"{path}: cannot read file: {e.strerror or e}") from e


def _open(data: bytes, name: str, max_pixels: int) -> Image.Image:
    if not data:
        raise ImageLoadError(f"{name}: empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as e:
        raise ImageLoadError(f"{name}: not an image, or a format Pillow cannot read") from e
    except Image.DecompressionBombError as e:
        raise ImageLoadError(f"{name}: image too large (decompression bomb guard): {e}") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageLoadError(f"{name}: corrupt image header: {e}") from e
    w, h = im.size
    if w <= 0 or h <= 0:
        raise ImageLoadError(f"{name}: invalid image size {w}x{h}")
    if w * h > max_pixels:
        raise ImageLoadError(
            f"{name}: image is {w}x{h} = {w * h / 1e6:.1f} Mpx, above the limit of {max_pixels / 1e6:.0f} Mpx "
            "(a possible decompression bomb); raise --max-pixels to scan it anyway"
        )
    return im


def _exif_info(im: Image.Image) -> tuple[bool, int]:
    try:
        exif = im.getexif()
    except Exception:  # noqa: BLE001 - a broken EXIF block must not make the image unreadable
        return False, 1
    return len(exif) > 0, int(exif.get(_EXIF_ORIENTATION, 1) or 1)


def _oriented_size(w: int, h: int, orientation: int) -> tuple[int, int]:
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def load_image_with_info(
    source: str | os.PathLike | bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, hash: bool = True
) -> tuple[Image.Image, ImageInfo]:
    """Decode ``source`` (path or bytes) to an 8-bit ``RGB`` image at native resolution, plus its :class:`ImageInfo`."""
    name = _describe(source)
    data = read_bytes(source)
    im = _open(data, name, max_pixels)
    fmt, mode = im.format, im.mode
    quality = estimate_jpeg_quality(im)
    has_exif, orientation = _exif_info(im)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im.seek(0)
            im.load()
            rgb = to_rgb(ImageOps.exif_transpose(im) if orientation != 1 else im)
    except ImageLoadError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
        raise ImageLoadError(f"{name}: truncated or corrupt image data ({e})") from e
    info = ImageInfo(
        format=fmt,
        width=rgb.width,
        height=rgb.height,
        mode=mode,
        jpeg_quality=quality,
        has_exif=has_exif,
        file_size=len(data),
        sha256=hashlib.sha256(data).hexdigest() if hash else None,
    )
    return rgb, info


def load_image(source: str | os.PathLike | bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode ``source`` to an 8-bit ``RGB`` PIL image (see the module docstring for the conversions)."""
    return load_image_with_info(source, max_pixels=max_pixels, hash=False)[0]


def probe_image(
    source: str | os.PathLike | bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, hash: bool = True
) -> ImageInfo:
    """:class:`ImageInfo` from the header alone (no pixel decoding): fast enough to index large collections."""
    name = _describe(source)
    data = read_bytes(source)
    im = _open(data, name, max_pixels)
    has_exif, orientation = _exif_info(im)
    w, h = _oriented_size(*im.size, orientation)
    return ImageInfo(
        format=im.format,
        width=w,
        height=h,
        mode=im.mode,
        jpeg_quality=estimate_jpeg_quality(im),
        has_exif=has_exif,
        file_size=len(data),
        sha256=hashlib.sha256(data).hexdigest() if hash else None,
    )


# -- mode conversion -------------------------------------------------------------------------------------------
_SRGB = None


def _srgb_profile() -> Any:
    global _SRGB
    if _SRGB is None:
        _SRGB = ImageCms.createProfile("sRGB")
    return _SRGB


def _on_white(im: Image.Image) -> Image.Image:
    rgba = im.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def to_rgb(im: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit ``RGB`` (alpha composited on white, high bit depths rescaled)."""
    mode = im.mode
    if mode == "RGB":
        return im
    if mode == "CMYK":
        icc = im.info.get("icc_profile")
        if icc:
            try:
                src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
                return ImageCms.profileToProfile(im, src, _srgb_profile(), outputMode="RGB")
            except (ImageCms.PyCMSError, OSError, ValueError):
                pass  # a broken profile: fall back to Pillow's naive conversion below
        return im.convert("RGB")
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        if mode.startswith("I;16"):
            scale = 65535.0
        else:
            lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
            if mode == "I" and lo >= 0 and hi <= 255:
                scale = 255.0
            elif mode == "I" and lo >= 0 and hi <= 65535:
                scale = 65535.0
            else:
                arr, scale = arr - lo, max(hi - lo, 1e-12)
        arr8 = np.clip(np.round(np.nan_to_num(arr) / scale * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, "L").convert("RGB")
    if mode == "P":
        return _on_white(im) if "transparency" in im.info else im.convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return _on_white(im)
    if mode in ("L", "1"):
        return im.convert("RGB")
    if mode in ("LAB", "HSV"):
        return (
            ImageCms.applyTransform(
                im,
                ImageCms.buildTransformFromOpenProfiles(ImageCms.createProfile("LAB"), _srgb_profile(), "LAB", "RGB"),
            )
            if mode == "LAB"
            else im.convert("RGB")
        )
    return im.convert("RGB")


# -- JPEG quality ----------------------------------------------------------------------------------------------
# IJG (libjpeg) base tables, in natural (row-major) order, Annex K of ITU-T T.81.
_IJG_LUMA = np.array(
    [
        16,
        11,
        10,
        16,
        24,
        40,
        51,
        61,
        12,
        12,
        14,
        19,
        26,
        58,
        60,
        55,
        14,
        13,
        16,
        24,
        40,
        57,
        69,
        56,
        14,
        17,
        22,
        29,
        51,
        87,
        80,
        62,
        18,
        22,
        37,
        56,
        68,
        109,
        103,
        77,
        24,
        35,
        55,
        64,
        81,
        104,
        113,
        92,
        49,
        64,
        78,
        87,
        103,
        121,
        120,
        101,
        72,
        92,
        95,
        98,
        112,
        100,
        103,
        99,
    ],
    dtype=np.float64,
)
_IJG_CHROMA = np.array(
    [
        17,
        18,
        24,
        47,
        99,
        99,
        99,
        99,
        18,
        21,
        26,
        66,
        99,
        99,
        99,
        99,
        24,
        26,
        56,
        99,
        99,
        99,
        99,
        99,
        47,
        66,
        99,
        99,
        99,
        99,
        99,
        99,
        99,
        99,
        99,
        99,
        99,
        99,
        99,
        99,
        99,
        99,
        99,
        99,
        99,
        99,
        99,
        99,
        99,
        99,
        99,
        99,
        99,
        99,
        99,
        99,
        99,
        99,
        99,
        99,
        99,
        99,
        99,
        99,
    ],
    dtype=np.float64,
)


def _ijg_table(base: np.ndarray, quality: int) -> np.ndarray:
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    return np.clip(np.floor((base * scale + 50) / 100), 1, 255)


_IJG_TABLES = {q: (_ijg_table(_IJG_LUMA, q), _ijg_table(_IJG_CHROMA, q)) for q in range(1, 101)}


def estimate_jpeg_quality(im: Image.Image) -> int | None:
    """IJG-equivalent quality (1-100) of a JPEG from its quantisation tables; ``None`` for other formats.

    Compares the file's tables with libjpeg's standard tables scaled for every quality and returns the closest.
    Table order does not matter (sums of entries are compared), so zigzag- and natural-order storage agree.
    Files made with non-IJG tables (some cameras, Photoshop) get the nearest IJG equivalent.
    """
    tables = getattr(im, "quantization", None)
    if im.format != "JPEG" or not tables:
        return None
    keys = sorted(tables)
    luma = np.sort(np.asarray(tables[keys[0]], dtype=np.float64))
    chroma = np.sort(np.asarray(tables[keys[1]], dtype=np.float64)) if len(keys) > 1 else None
    best_q, best_err = None, np.inf
    for q, (ref_l, ref_c) in _IJG_TABLES.items():
        err = np.abs(luma - np.sort(ref_l)).sum()
        if chroma is not None:
            err += np.abs(chroma - np.sort(ref_c)).sum()
        if err < best_err:
            best_q, best_err = q, err
    return best_q
